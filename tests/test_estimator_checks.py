"""skprune.utils.estimator_checks: a strategy written outside skprune, checked, benchmarked.

``FarFromMeanPruner`` below is what a user writes for a strategy of their own:
a subclass that declares only its scores and its tags. It passes the pruner
checks, and runs in the fairness benchmark as
``--strategies test_estimator_checks:FarFromMeanPruner`` with no edit to skprune.
"""

import json

import numpy as np
import pytest
from sklearn.utils import get_tags

from benchmarks import fairness
from benchmarks._registry import strategy as registered_strategy
from skprune import DataPruner
from skprune.utils.estimator_checks import (
    check_pruner,
    check_random_states_untouched,
    parametrize_with_checks,
)

TOY = f"{__name__}:FarFromMeanPruner"


class FarFromMeanPruner(DataPruner):
    """Keep the samples farthest from their class's mean input (a toy strategy).

    Parameters
    ----------
    estimator, density, quota, selection, random_state, memory, n_jobs, verbose
        As in :class:`skprune.DataPruner`.

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        Distances to the class mean.
    """

    def _score_run(self, X, y, seed):
        X = np.asarray(X, dtype=float).reshape(len(y), -1)
        scores = np.empty(len(y))
        for label in np.unique(y):
            rows = y == label
            scores[rows] = np.linalg.norm(X[rows] - X[rows].mean(axis=0), axis=1)
        return scores

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.query_fraction = None
        tags.pruner_tags.continuous_scores = True
        return tags


@parametrize_with_checks([FarFromMeanPruner(), FarFromMeanPruner(quota="proportional")])
def test_a_strategy_of_ones_own_passes_the_checks(pruner, check):
    check(pruner)


def test_the_tags_are_the_declared_ones():
    tags = get_tags(FarFromMeanPruner()).pruner_tags
    assert (tags.query_fraction, tags.query_runs, tags.continuous_scores) == (None, 1, True)
    entry = registered_strategy(TOY)
    assert (entry.query, entry.query_runs) == ("none", 1)


def test_the_fairness_benchmark_runs_it_by_name(tmp_path):
    out = tmp_path / "toy"
    status = fairness.main([
        "--preset", "smoke", "--strategies", TOY, "--protocols", "Strategy",
        "--densities", "0.5", "--no-full-reference", "--out", str(out), "--no-progress",
        "--figure-formats", "png",
    ])
    assert status == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(row["strategy"], row["method"]) for row in rows] == [(TOY, "FarFromMeanPruner")]
    assert rows[0]["n_kept"] == round(0.5 * rows[0]["n_train"])


class DrawsBeforeScoring(FarFromMeanPruner):
    """Draws from numpy's global generator outside the scoring runs (which are protected)."""

    def _check_before_scoring(self):
        np.random.uniform()


def test_the_checks_catch_a_broken_pruner():
    with pytest.raises(AssertionError, match="changed the global numpy random state"):
        check_random_states_untouched("DrawsBeforeScoring", DrawsBeforeScoring())


def test_check_pruner_runs_every_check():
    check_pruner(FarFromMeanPruner(quota="balanced"))
    with pytest.raises(AssertionError, match="random state"):
        check_pruner(DrawsBeforeScoring())
