"""Every Python block of the README runs on its own, as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize(
    "source",
    [pytest.param(block, marks=[pytest.mark.slow] if "dask" in block else [])
     for block in BLOCKS],
    ids=[f"block{number}" for number in range(len(BLOCKS))],
)
def test_block_runs_on_its_own(source, capsys):
    # A fresh namespace: nothing defined by another block is visible.
    namespace = {"__name__": "__readme__"}
    exec(compile(source, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip()
    if "LocalCluster" in source:
        # The search the dask workers ran is the one a single process runs.
        from sklearn.model_selection import GridSearchCV

        search = namespace["search"]
        local = GridSearchCV(namespace["pipe"], search.param_grid).fit(
            namespace["X"] / 16, namespace["y"])
        assert search.best_params_ == local.best_params_
        assert search.cv_results_["mean_test_score"] == pytest.approx(
            local.cv_results_["mean_test_score"])
