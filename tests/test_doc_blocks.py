"""Every ``.. code-block:: python`` of the docs runs as written, saved as a file and run.

The blocks of one page run in order, each as its own script in one fresh
directory, so a block may use a file an earlier block of its page wrote (the
own-data guide's ``make_data.py`` and ``my_models.py``), never a name it
defined. A block whose first line is a comment naming a file (``# my_models.py``)
is saved under that name. The README's blocks run in ``test_readme.py``; the
contributing guide's module sketch (``# skprune/strategies/_loss.py``) is a
file of the package, which ``test_contributing.py`` installs and tests.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.rst")) + sorted((ROOT / "docs").glob("*/*.rst"))
PACKAGE_FILE = re.compile(r"#\s*skprune/")
FILE_NAME = re.compile(r"#\s*([\w./-]+\.py)\s*$")


def python_blocks(text):
    """The dedented bodies of the page's ``.. code-block:: python`` directives."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        match = re.match(r"(\s*)\.\. code-block:: python\s*$", lines[i])
        i += 1
        if not match:
            continue
        indent, body = len(match.group(1)), []
        while i < len(lines) and re.match(r"\s+:\w+:", lines[i]):  # options
            i += 1
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return blocks


PAGE_BLOCKS = {page: python_blocks(page.read_text()) for page in PAGES}
RUN = [page for page, blocks in PAGE_BLOCKS.items()
       if any(not PACKAGE_FILE.match(block) for block in blocks)]
#: Pages whose blocks are not yet complete programs, with the reason.
PENDING = {}


def page_param(page):
    reason = PENDING.get(page.name)
    marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
    return pytest.param(page, id=str(page.relative_to(ROOT / "docs")), marks=marks)


def test_blocks_are_found():
    index = PAGE_BLOCKS[ROOT / "docs" / "index.rst"]
    assert index and "GridSearchCV" in index[0]
    assert sum(map(len, PAGE_BLOCKS.values())) >= 15


@pytest.mark.slow
@pytest.mark.parametrize("page", [page_param(page) for page in RUN])
def test_every_block_of_the_page_runs_as_a_script(page, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for number, block in enumerate(PAGE_BLOCKS[page], 1):
        if PACKAGE_FILE.match(block):
            continue
        named = FILE_NAME.match(block.splitlines()[0])
        script = tmp_path / (named.group(1) if named else f"block_{number}.py")
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(block)
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, (
            f"{page.name}, block {number} ({script.name}):\n{done.stderr[-3000:]}")
