"""The contributor guide's steps for a new strategy are all it takes.

On a copy of the package, the guide's sketch (``LossPruner``) is added by
its steps 1 and 2 alone: a new module and one import in
``skprune/strategies/__init__.py``. The strategy is then public, in the API
reference's "Pruners" section, and passes the common checks of
``tests/test_common.py`` and the docstring checks, none of them edited.
"""

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "contributing.rst"

CHECK = """
import sys
import skprune
assert skprune.__file__.startswith(sys.argv[1]), skprune.__file__
assert "LossPruner" in skprune.__all__ and skprune.LossPruner.__module__ == \\
    "skprune.strategies._loss"
namespace = {"__file__": sys.argv[2]}
exec(compile(open(sys.argv[2]).read(), sys.argv[2], "exec"), namespace)
sections = {title: names for title, _, names in namespace["skprune_api_sections"]}
assert "LossPruner" in sections["Pruners"], sections["Pruners"]
print("public and documented")
"""


def sketch():
    """The code block of the guide's "Adding a strategy" that is the new module."""
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", GUIDE.read_text())
    modules = [textwrap.dedent(block) for block in blocks
               if block.lstrip().startswith("# skprune/strategies/_loss.py")]
    assert len(modules) == 1
    return modules[0]


@pytest.mark.slow
def test_a_new_strategy_is_two_source_files(tmp_path):
    package = tmp_path / "skprune"
    shutil.copytree(ROOT / "skprune", package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # Step 1: the module.
    (package / "strategies" / "_loss.py").write_text(sketch())
    # Step 2: its import and its name in __all__.
    init = package / "strategies" / "__init__.py"
    text = init.read_text()
    text = text.replace("\n__all__ = [", "\nfrom ._loss import LossPruner\n__all__ = [", 1)
    text = text.replace('    "ScorePruner",\n', '    "ScorePruner",\n    "LossPruner",\n', 1)
    init.write_text(text)

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)

    checked = run("-c", CHECK, str(package), str(ROOT / "docs" / "conf.py"))
    assert checked.returncode == 0, checked.stderr
    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "LossPruner",
                str(ROOT / "tests" / "test_common.py"), str(ROOT / "tests" / "test_docstrings.py"))
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", tests.stdout).group(1))
    assert passed > 40, tests.stdout[-500:]
    assert "failed" not in tests.stdout
