"""Error rates from validation evidence: MetriQ's weights and their statistics.

The evidence is a table: for every group (class), how many validation rows
were misclassified by each fraction of the trainings (0 or 1 with one
training; 0, 1/3, 2/3 or 1 with three). Counts of errors among validation
samples are the one-training case. The statistics are exact where they can
be: the spread of the true error rates is estimated without bias (a one-way
random-effects analysis of the rows), and the test of one common error rate
is a Monte Carlo test conditional on the table's margins.
"""

import dataclasses

import numpy as np

from .._docstrings import Substitution


@dataclasses.dataclass(frozen=True)
class ErrorEvidence:
    """Validation rows of every group, counted by the fraction of trainings that erred.

    Parameters
    ----------
    levels : ndarray of shape (n_levels,)
        The error fractions a row can have, increasing, in [0, 1].
    counts : ndarray of shape (n_groups, n_levels)
        Validation rows of every group at every level.
    smoothing : float, default=0.0
        Pseudo-rows added to every group at levels 0 and 1 (half each, as
        ``a`` errors and ``a`` correct predictions).
    """

    levels: np.ndarray
    counts: np.ndarray
    smoothing: float = 0.0

    @classmethod
    def from_counts(cls, recall, n_validation, smoothing=0.0):
        """Evidence of one training: ``n (1 - recall)`` errors among ``n`` rows.

        Averaged recalls (several trainings) give fractional errors; they are
        rounded here. Pass the rows' own error fractions
        (:meth:`from_rows`) to keep them.
        """
        n_validation = np.asarray(n_validation, dtype=float)
        errors = np.rint(n_validation * (1.0 - np.asarray(recall, dtype=float)))
        n_validation = np.rint(n_validation)
        counts = np.stack([n_validation - errors, errors], axis=1)
        return cls(np.array([0.0, 1.0]), counts, float(smoothing))

    @classmethod
    def from_rows(cls, row_errors, row_groups, n_groups, n_runs, smoothing=0.0):
        """Evidence from every validation row's error fraction over ``n_runs`` trainings.

        Parameters
        ----------
        row_errors : ndarray of shape (n_rows,)
            Fraction of the trainings that misclassified each row.
        row_groups : ndarray of int, shape (n_rows,)
            Position of each row's group.
        n_groups, n_runs : int
        smoothing : float, default=0.0
        """
        levels = np.arange(n_runs + 1) / n_runs
        level = np.rint(np.asarray(row_errors, dtype=float) * n_runs).astype(np.int64)
        counts = np.zeros((n_groups, n_runs + 1))
        np.add.at(counts, (np.asarray(row_groups, dtype=np.int64), level), 1.0)
        return cls(levels, counts, float(smoothing))

    @property
    def n_rows(self):
        """Validation rows of every group (without the pseudo-rows)."""
        return self.counts.sum(axis=1)

    def smoothed(self):
        """Errors and rows of every group with the pseudo-rows added."""
        errors = self.counts @ self.levels + self.smoothing
        return errors, self.n_rows + 2.0 * self.smoothing

    def observed_rates(self):
        """Smoothed error rate of every group; ``nan`` where a group has no rows."""
        errors, rows = self.smoothed()
        return np.divide(errors, rows, out=np.full(errors.shape, np.nan), where=rows > 0)

    def pooled_rate(self):
        """The error rate of all rows together (smoothed), or 0 without rows."""
        errors, rows = self.smoothed()
        return float(errors.sum() / rows.sum()) if rows.sum() > 0 else 0.0


#: The inputs of the functions that take validation recalls and their sizes.
_with_validation_counts = Substitution(validation_counts="""\
recall : ndarray of shape (n_groups,)
n_validation : ndarray of shape (n_groups,)
    Validation samples behind each recall, each predicted once.""")


def spread_moments(evidence):
    """Pooled rate, between-group variance and within-group variance of the error rates.

    A one-way random-effects model: group ``k`` has a true error rate
    ``p_k`` drawn with variance ``tau2`` around a common mean, and each of
    its validation rows errs around ``p_k`` with the within-group variance
    ``sigma2`` (``p_k (1 - p_k)`` on average for one training). With
    ``w_k = n_k / n`` and ``S = sum_k w_k (x_k - x)^2`` the spread of the
    group rates ``x_k`` around the pooled rate ``x``::

        E[S] = tau2 (1 - sum_k w_k^2) + sigma2 (K - 1) / n

    so that ``tau2 = (S - s2 (K - 1) / n) / (1 - sum_k w_k^2)``, with ``s2``
    the pooled within-group sample variance, is unbiased; it is negative when
    the rates spread less than their noise.

    Parameters
    ----------
    evidence : ErrorEvidence

    Returns
    -------
    pooled : float
    tau2 : float
        Unbiased estimate, not clipped at 0.
    sigma2 : float
        Pooled within-group variance of a row's error.
    """
    _, rows = evidence.smoothed()
    seen = rows > 0
    pooled = evidence.pooled_rate()
    if np.count_nonzero(seen) < 2:
        return pooled, 0.0, 0.0
    levels = np.concatenate([evidence.levels, [0.0, 1.0]])
    counts = np.concatenate(
        [evidence.counts, np.full((evidence.counts.shape[0], 2), evidence.smoothing)], axis=1
    )[seen]
    rows = rows[seen]
    means = counts @ levels / rows
    within_ss = np.sum(counts * (levels[None, :] - means[:, None]) ** 2)
    within_df = rows.sum() - rows.size
    sigma2 = within_ss / within_df if within_df > 0 else pooled * (1.0 - pooled)
    total = rows.sum()
    share = rows / total
    spread = np.sum(share * (means - pooled) ** 2)
    tau2 = (spread - sigma2 * (rows.size - 1) / total) / (1.0 - np.sum(share**2))
    return pooled, float(tau2), float(sigma2)


def shrunk_rates(evidence):
    """Posterior mean error rate of every group under the random-effects model.

    ``(e_k + s p) / (n_k + s)`` with ``p`` the pooled rate and ``s = sigma2 /
    tau2`` the prior's strength (for one training, the beta-binomial's
    ``p (1 - p) / tau2 - 1``); no excess spread (``tau2 <= 0``) gives every
    group ``p``. A group without validation rows gets ``p``.
    """
    pooled, tau2, sigma2 = spread_moments(evidence)
    errors, rows = evidence.smoothed()
    if tau2 <= 0.0:
        return np.full(errors.shape, pooled)
    strength = sigma2 / tau2
    return (errors + strength * pooled) / (rows + strength)


def equal_rates_test(evidence, seed=0, n_draws=9999):
    """p-value of one common error rate, conditional on the table's margins.

    Under the hypothesis, which group a validation row belongs to says
    nothing about its error, so every table with the same group sizes and
    the same number of rows at each error level is equally likely. Tables
    are drawn from that conditional distribution (sequential hypergeometric
    draws), and the statistic is the spread of the group rates around the
    pooled rate. The p-value counts the observed table among the draws
    (``(1 + #{T_draw >= T_obs}) / (1 + n_draws)``), so it is never 0 and the
    test's size is at most its level.
    """
    counts = np.rint(evidence.counts).astype(np.int64)
    rows = counts.sum(axis=1)
    seen = rows > 0
    counts, rows = counts[seen], rows[seen]
    column = counts.sum(axis=0)
    if rows.size < 2 or np.count_nonzero(column) < 2:
        return 1.0
    weights = rows + 2.0 * evidence.smoothing

    def statistic(errors):
        # errors: (..., n_groups) error sums; the pooled rate is fixed by the margins.
        rates = (errors + evidence.smoothing) / weights
        pooled = (errors.sum(axis=-1, keepdims=True) + evidence.smoothing * rows.size) / (
            weights.sum())
        return np.sum(weights * (rates - pooled) ** 2, axis=-1)

    observed = statistic(counts @ evidence.levels)
    simulated = _draw_tables(rows, column, n_draws, np.random.default_rng(seed))
    draws = statistic(simulated @ evidence.levels)
    # A tolerance, so that the observed table counts among its equals.
    exceed = np.count_nonzero(draws >= observed - 1e-12 * max(1.0, abs(observed)))
    return float((1 + exceed) / (1 + n_draws))


def _draw_tables(rows, column, n_draws, random_state):
    """Tables with row sums ``rows`` and column sums ``column``, uniformly among the
    arrangements of the rows: shape ``(n_draws, n_groups, n_levels)``."""
    n_groups, n_levels = rows.size, column.size
    tables = np.zeros((n_draws, n_groups, n_levels), dtype=np.int64)
    remaining = np.broadcast_to(column, (n_draws, n_levels)).copy()
    for group in range(n_groups - 1):
        need = np.full(n_draws, rows[group])
        for level in range(n_levels - 1):
            others = remaining[:, level + 1:].sum(axis=1)
            taken = random_state.hypergeometric(remaining[:, level], others, need)
            tables[:, group, level] = taken
            remaining[:, level] -= taken
            need -= taken
        tables[:, group, -1] = need
        remaining[:, -1] -= need
    tables[:, -1] = remaining
    return tables


@_with_validation_counts
def error_weights(recall, n_validation, error_rate="shrunk", smoothing=0.0):
    """Density weights from validation recalls: shrunk or observed error rates.

    Parameters
    ----------
    {validation_counts}
    error_rate : {"shrunk", "observed"}, default="shrunk"
        Empirical-Bayes posterior means (``spread_moments``), or the
        observed rates (see :class:`MetriQ`).
    smoothing : float, default=0.0
        Pseudo-count added to errors and to correct predictions.

    Returns
    -------
    weights : ndarray of shape (n_groups,)

    Examples
    --------
    Errors 0, 1 and 2 among 13 validation samples each are mostly noise: the
    shrunk weights are pulled nearly all the way to the pooled rate, the
    observed ones give the first class nothing.

    >>> import numpy as np
    >>> from skprune.quotas import error_weights
    >>> recall, n = 1 - np.array([0, 1, 2]) / 13, np.array([13, 13, 13])
    >>> error_weights(recall, n, "observed").round(3)
    array([0.   , 0.077, 0.154])
    >>> error_weights(recall, n).round(3)
    array([0.073, 0.077, 0.081])

    Errors 0, 25 and 150 among 500 are not: shrinkage hardly moves them.

    >>> error_weights(1 - np.array([0, 25, 150]) / 500, np.array([500] * 3)).round(3)
    array([0.001, 0.05 , 0.299])
    """
    evidence = ErrorEvidence.from_counts(recall, n_validation, smoothing)
    return weights_from_evidence(evidence, error_rate, fallback=1.0 - np.asarray(recall, float))


def weights_from_evidence(evidence, error_rate, fallback=None):
    """Observed or shrunk error rates as weights; a group without rows gets ``fallback``
    (observed) or the pooled rate (shrunk); a pooled rate of 0 or 1 gives equal weights."""
    if error_rate == "observed":
        rates = evidence.observed_rates()
        missing = np.isnan(rates)
        if missing.any():
            rates[missing] = (np.asarray(fallback)[missing] if fallback is not None
                              else np.nanmean(rates) if (~missing).any() else 1.0)
        return rates
    pooled = evidence.pooled_rate()
    if pooled <= 0.0 or pooled >= 1.0:
        return common_weights(evidence)
    return shrunk_rates(evidence)


def with_floor(rates, group_sizes, floor):
    """Density weights that spread ``floor`` of the budget evenly and the rest by ``rates``.

    ``floor * q + (1 - floor) * rates``, with ``q`` the mean rate over the
    rows being pruned (``sum_k N_k rates_k / N``): before any class is kept
    whole, class ``k`` keeps the density ``d (floor + (1 - floor) rates_k /
    q)``, so no class falls below ``floor`` times the overall density ``d``.
    ``floor=0`` gives the rates themselves, ``floor=1`` proportional quotas.

    Parameters
    ----------
    rates : ndarray of shape (n_groups,)
    group_sizes : ndarray of shape (n_groups,)
        Rows of every group in the data being pruned.
    floor : float in [0, 1]

    Returns
    -------
    weights : ndarray of shape (n_groups,)

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.quotas._error_rates import with_floor
    >>> with_floor(np.array([0.0, 0.1, 0.5]), np.array([100, 100, 100]), 0.5)
    array([0.1 , 0.15, 0.35])
    """
    rates = np.asarray(rates, dtype=float)
    sizes = np.asarray(group_sizes, dtype=float)
    mean = float(np.sum(sizes * rates) / sizes.sum())
    return floor * mean + (1.0 - floor) * rates


def common_weights(evidence):
    """One weight for every group: the pooled error rate, or 1 where it is 0 or 1."""
    pooled = evidence.pooled_rate()
    return np.full(evidence.counts.shape[0], pooled if 0.0 < pooled < 1.0 else 1.0)


@_with_validation_counts
def error_rate_spread(recall, n_validation, smoothing=0.0):
    """Unbiased estimate of the variance of the groups' true error rates.

    The spread of the observed rates minus what binomial noise explains
    (see ``spread_moments``); negative when the observed rates agree
    better than noise alone would let them.

    Parameters
    ----------
    {validation_counts}
    smoothing : float, default=0.0

    Returns
    -------
    tau2 : float

    Examples
    --------
    Rates 0.1, 0.2, 0.3 and 0.4 have a sample variance of 0.0167; binomial
    noise among 1,000 samples each explains a little of it:

    >>> import numpy as np
    >>> from skprune.quotas import error_rate_spread
    >>> n = np.full(4, 1000)
    >>> round(error_rate_spread(1 - np.array([100, 200, 300, 400]) / n, n), 4)
    0.0165
    """
    evidence = ErrorEvidence.from_counts(recall, n_validation, smoothing)
    return spread_moments(evidence)[1]


@_with_validation_counts
def equal_rates_pvalue(recall, n_validation, smoothing=0.0, seed=0, n_draws=9999):
    """p-value of the hypothesis that every class has the same error rate.

    A Monte Carlo test conditional on the total number of errors: under the
    hypothesis, the errors are spread over the classes as draws without
    replacement from all validation samples (a multivariate hypergeometric
    law), whatever the common rate. The statistic is the spread of the
    observed error rates around the pooled one, weighted by validation
    samples (the quantity whose excess over noise sets
    :func:`error_weights`' shrinkage). Exact at any number of errors, where a
    chi-squared approximation is not; its size never exceeds the level.

    Parameters
    ----------
    {validation_counts}
    smoothing : float, default=0.0
        Pseudo-count added to errors and to correct predictions (in the
        statistic).
    seed : int, default=0
        Seed of the simulation; the same inputs and seed give the same value.
    n_draws : int, default=9999
        Simulated tables; the p-value is a multiple of ``1 / (n_draws + 1)``.

    Returns
    -------
    pvalue : float
        In ``(0, 1]``; 1.0 where the rates cannot differ (fewer than two
        classes, no error or no correct prediction at all).

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.quotas import equal_rates_pvalue
    >>> n = np.array([13, 13, 13])
    >>> bool(equal_rates_pvalue(1 - np.array([0, 1, 2]) / n, n) > 0.05)
    True
    >>> n = np.array([500, 500, 500])
    >>> equal_rates_pvalue(1 - np.array([0, 25, 150]) / n, n)
    0.0001
    """
    evidence = ErrorEvidence.from_counts(recall, n_validation, smoothing)
    return equal_rates_test(evidence, seed, n_draws)
