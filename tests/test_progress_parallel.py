"""Progress you can see (verbose) and query runs in parallel (n_jobs)."""

import numpy as np
import pytest
from conftest import make_tiny_net

from skprune import EL2NPruner, ForgettingPruner, MetriQ, RandomPruner
from skprune.cache import clear_process_cache

pytestmark = pytest.mark.usefixtures("fresh_cache")




@pytest.fixture(scope="module")
def small(digits):
    X, y = digits
    return X[:300], y[:300]


def test_verbose_zero_prints_nothing(small, capsys):
    EL2NPruner(make_tiny_net(max_epochs=2), n_runs=2, random_state=0).fit(*small)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_one_shows_a_bar_over_runs_with_the_loss(small, capsys):
    EL2NPruner(make_tiny_net(max_epochs=2), n_runs=2, verbose=1, random_state=0).fit(*small)
    err = capsys.readouterr().err
    assert "EL2NPruner query runs" in err and "2/2" in err and "loss" in err
    # The query networks' own log stays as their estimator says (verbose=0).
    assert "train_loss" not in err


def test_verbose_two_also_prints_every_epoch(small, capsys):
    ForgettingPruner(make_tiny_net(max_epochs=2), verbose=2, random_state=0).fit(*small)
    captured = capsys.readouterr()
    assert "train_loss" in captured.out and "ForgettingPruner query runs" in captured.err


def test_the_estimators_own_verbose_is_honoured(small, capsys):
    ForgettingPruner(make_tiny_net(max_epochs=2, verbose=1), random_state=0).fit(*small)
    assert "train_loss" in capsys.readouterr().out


def test_metriq_shows_its_runs_too(small, capsys):
    RandomPruner(make_tiny_net(max_epochs=2), quota=MetriQ(validation=3), verbose=1,
                 random_state=0).fit(*small)
    assert "MetriQ query runs" in capsys.readouterr().err


@pytest.mark.slow
def test_parallel_runs_give_the_sequential_scores(small):
    sequential = EL2NPruner(make_tiny_net(max_epochs=2), n_runs=3, random_state=0).fit(*small)
    clear_process_cache()
    parallel = EL2NPruner(make_tiny_net(max_epochs=2), n_runs=3, n_jobs=2,
                          random_state=0).fit(*small)
    np.testing.assert_array_equal(parallel.run_scores_, sequential.run_scores_)
    np.testing.assert_array_equal(parallel.sample_indices_, sequential.sample_indices_)
    # The parallel runs were stored in this process's cache like sequential ones.
    again = EL2NPruner(make_tiny_net(max_epochs=2), n_runs=3, n_jobs=2, random_state=0)
    np.testing.assert_array_equal(again.fit(*small).scores_, sequential.scores_)
