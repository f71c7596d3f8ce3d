"""MetriQ's statistics: the spread of true error rates and the test of one common rate."""

import numpy as np
import pytest

from skprune.quotas import equal_rates_pvalue, error_rate_spread
from skprune.quotas._error_rates import ErrorEvidence, equal_rates_test, spread_moments


@pytest.mark.parametrize("n_groups", [2, 10])
def test_spread_is_unbiased_on_beta_binomial_data(n_groups):
    # True class error rates drawn from a beta with mean 0.2 and variance
    # tau2; errors binomial around them, with unequal validation sizes.
    rng = np.random.RandomState(n_groups)
    mean, strength = 0.2, 15.0
    tau2 = mean * (1 - mean) / (strength + 1)
    n = rng.randint(30, 120, size=n_groups)
    estimates = []
    for _ in range(4000):
        rates = rng.beta(mean * strength, (1 - mean) * strength, size=n_groups)
        errors = rng.binomial(n, rates)
        estimates.append(error_rate_spread(1 - errors / n, n))
    assert np.mean(estimates) == pytest.approx(tau2, rel=0.1)


def test_spread_of_several_trainings_uses_the_rows_own_variance():
    # Rows erring in 0..3 of 3 trainings: averaged errors are not binomial
    # draws, so the noise of a class rate is the rows' variance over n_k.
    rng = np.random.RandomState(0)
    n_groups, n_rows, tau2 = 10, 80, 0.004
    estimates = []
    for _ in range(2000):
        rates = np.clip(0.25 + rng.normal(0, np.sqrt(tau2), n_groups), 0.01, 0.99)
        # Each row is hard with probability 2 * rate, and a hard row errs in
        # half the trainings on average: row errors spread less than 0/1.
        hard = rng.uniform(size=(n_groups, n_rows)) < 2 * rates[:, None]
        row_errors = rng.binomial(3, np.where(hard, 0.5, 0.0)) / 3
        groups = np.repeat(np.arange(n_groups), n_rows)
        evidence = ErrorEvidence.from_rows(row_errors.ravel(), groups, n_groups, 3)
        estimates.append(spread_moments(evidence)[1])
    assert np.mean(estimates) == pytest.approx(np.var(np.clip(
        0.25 + np.random.RandomState(1).normal(0, np.sqrt(tau2), 200000), 0.01, 0.99)),
        rel=0.1)


def null_size(n, rate, n_tables, seed=0, n_draws=199):
    rng = np.random.RandomState(seed)
    pvalues = [
        equal_rates_pvalue(1 - rng.binomial(n, rate) / n, n, seed=table, n_draws=n_draws)
        for table in range(n_tables)
    ]
    return np.mean(np.array(pvalues) < 0.05)


@pytest.mark.parametrize("n, rate", [
    (np.full(8, 20), 0.025),           # about 4 errors in all
    (np.full(3, 13), 0.1),             # three classes of 13
    (np.array([5, 40, 200]), 0.05),    # unequal sizes
    (np.full(10, 50), 0.2),
])
def test_size_is_at_most_the_level_on_small_tables(n, rate):
    assert null_size(n, rate, 1000) <= 0.06


def test_size_is_close_to_the_level_on_a_large_table():
    size = null_size(np.full(10, 500), 0.1, 2000)
    assert 0.03 <= size <= 0.06


def test_size_with_several_trainings():
    rng = np.random.RandomState(3)
    n_groups, n_rows = 10, 300
    groups = np.repeat(np.arange(n_groups), n_rows)
    rejected = 0
    for table in range(1000):
        hard = rng.uniform(size=n_groups * n_rows) < 0.3
        row_errors = rng.binomial(3, np.where(hard, 0.6, 0.02)) / 3
        evidence = ErrorEvidence.from_rows(row_errors, groups, n_groups, 3)
        rejected += equal_rates_test(evidence, seed=table, n_draws=199) < 0.05
    assert 0.03 <= rejected / 1000 <= 0.06


def test_pvalue_is_never_zero_and_is_reproducible():
    n = np.full(3, 500)
    recall = 1 - np.array([0, 25, 150]) / n
    assert equal_rates_pvalue(recall, n, n_draws=99) == 0.01
    assert equal_rates_pvalue(recall, n, seed=4) == equal_rates_pvalue(recall, n, seed=4)
