"""Every Python block of the README runs on its own, as written, as a script."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


def starts_processes(block):
    return "dask" in block


@pytest.mark.parametrize(
    "source",
    [block for block in BLOCKS if not starts_processes(block)],
)
def test_block_runs_on_its_own(source, capsys):
    # A fresh namespace, named as a script's: nothing defined by another block
    # is visible, and a `__main__` guard runs.
    namespace = {"__name__": "__main__"}
    exec(compile(source, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip()


@pytest.mark.slow
@pytest.mark.parametrize("source", [block for block in BLOCKS if starts_processes(block)])
def test_block_that_starts_processes_runs_as_a_script(source, tmp_path):
    # Saved as a file and run: dask's worker processes import the script
    # again, which a block without a `__main__` guard does not survive (an
    # in-process exec would not show it).
    script = tmp_path / "readme_block.py"
    script.write_text(source)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(README.parent),
                                                       os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.strip().splitlines()
    assert printed
    if "LocalCluster" in source:
        # The search the dask workers ran is the one a single process runs.
        namespace = {"__name__": "readme_block"}  # imported: its guard does not run
        exec(compile(source, str(README), "exec"), namespace)
        X, y = namespace["load_digits"](return_X_y=True)
        local = namespace["density_search"](None).fit(X / 16, y)
        assert ast.literal_eval(printed[-1]) == local.best_params_
