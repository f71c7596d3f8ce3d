"""The quota suite and the paired differences behind its table."""

import numpy as np
import pytest
from scipy import stats

from benchmarks import quota_suite
from benchmarks._paired import display_differences, paired_differences


def row(protocol, strategy, seed, worst, density=0.3):
    method = protocol.replace("Strategy", strategy.upper()) if strategy != "-" else protocol
    return {"protocol": protocol, "strategy": strategy, "method": method, "density": density,
            "seed": seed, "worst_class_recall": worst}


def test_paired_differences_pair_cells_by_seed_and_density():
    rows = [row("Random", "-", 0, 0.50), row("Random", "-", 1, 0.40), row("Random", "-", 2, 0.45),
            row("Random+MetriQ", "-", 0, 0.60), row("Random+MetriQ", "-", 1, 0.45),
            row("Random+MetriQ", "-", 2, 0.50),
            row("Strategy", "el2n", 0, 0.10), row("Strategy", "el2n", 1, 0.20),
            row("Strategy+MetriQ", "el2n", 0, 0.30), row("Strategy+MetriQ", "el2n", 1, 0.25),
            row("Strategy+MetriQ", "el2n", 2, 0.90),  # no EL2N cell of seed 2: unpaired
            row("Full", "-", 0, 0.99, density=1.0)]
    against_random = paired_differences(rows, against="Random").set_index("method")
    metriq = against_random.loc["Random+MetriQ"]
    differences = np.array([0.10, 0.05, 0.05])
    half = stats.t.ppf(0.975, 2) * differences.std(ddof=1) / np.sqrt(3)
    assert metriq["n_seeds"] == 3
    assert metriq["mean"] == pytest.approx(differences.mean())
    assert metriq["ci_high"] - metriq["mean"] == pytest.approx(half)
    assert "Full" not in against_random.index
    against_strategy = paired_differences(rows, against="Strategy").set_index("method")
    assert list(against_strategy.index) == ["EL2N+MetriQ"]
    assert against_strategy.loc["EL2N+MetriQ", "n_seeds"] == 2
    assert against_strategy.loc["EL2N+MetriQ", "mean"] == pytest.approx(0.125)
    half = stats.t.ppf(0.975, 1) * np.std([0.20, 0.05], ddof=1) / np.sqrt(2)
    table = display_differences(paired_differences(rows, against="Strategy"))
    assert table.loc["EL2N+MetriQ", "0.3"] == f"+0.125 [{0.125 - half:+.3f}, {0.125 + half:+.3f}]"


def test_suite_summary_checks_the_targets():
    import pandas as pd

    table = pd.DataFrame([
        # Random+MetriQ 0.03 below Random with a tight interval: misses the target.
        {"config": "a", "density": 0.3, "comparison": "Random+MetriQ - Random",
         "rule": "default", "n_seeds": 5, "mean": -0.03, "std": 0.01},
        # 0.03 below, but with a wide interval (2 SE = 0.045): noise, within target.
        {"config": "b", "density": 0.3, "comparison": "Random+MetriQ - Random",
         "rule": "default", "n_seeds": 5, "mean": -0.03, "std": 0.05},
        # Above 0.5 the Random target does not apply.
        {"config": "a", "density": 0.7, "comparison": "Random+MetriQ - Random",
         "rule": "default", "n_seeds": 5, "mean": -0.2, "std": 0.01},
        {"config": "a", "density": 0.7, "comparison": "EL2N+MetriQ - EL2N",
         "rule": "default", "n_seeds": 5, "mean": -0.06, "std": 0.01},
    ])
    summary = quota_suite.summary(table).set_index("comparison")
    assert summary.loc["Random+MetriQ - Random", "cells_missing_target"] == 1
    assert summary.loc["Random+MetriQ - Random", "worst"] == pytest.approx(-0.2)
    assert summary.loc["EL2N+MetriQ - EL2N", "cells_missing_target"] == 1


@pytest.mark.slow
def test_quick_suite_writes_its_table_and_resumes(tmp_path, capsys):
    out = tmp_path / "suite"
    args = ["--quick", "--out", str(out), "--rules", "default", "paper", "--n-jobs", "1",
            "--no-progress"]
    assert quota_suite.main(args) == 0
    assert "19 cells, 0 already done" in capsys.readouterr().out
    text = (out / "suite.md").read_text()
    assert "Random+MetriQ - Random [default]" in text
    assert "EL2N+MetriQ - EL2N [paper]" in text
    assert "Forgetting+MetriQ - Forgetting [default]" in text
    first = (out / "digits-mlp" / "results.jsonl").read_text()
    # Two densities x (Random, 2 strategies, 2 rules x 3 protocols) + Full.
    assert len(first.splitlines()) == 2 * (3 + 2 * 3) + 1
    assert quota_suite.main(args) == 0
    assert "19 cells, 19 already done" in capsys.readouterr().out
    assert (out / "digits-mlp" / "results.jsonl").read_text() == first
