"""Error rates from validation counts: MetriQ's weights and their statistics."""

import numpy as np


def error_weights(recall, n_validation, error_rate="shrunk", smoothing=0.0):
    """Density weights from validation recalls: shrunk or observed error rates.

    Parameters
    ----------
    recall : ndarray of shape (n_groups,)
    n_validation : ndarray of shape (n_groups,)
        Validation samples behind each recall.
    error_rate : {"shrunk", "observed"}, default="shrunk"
        Empirical-Bayes posterior means, or the observed rates (see
        :class:`MetriQ`).
    smoothing : float, default=0.0
        Pseudo-count added to errors and to correct predictions.

    Returns
    -------
    weights : ndarray of shape (n_groups,)

    Examples
    --------
    Errors 0, 1 and 2 among 13 validation samples each are consistent with
    one error rate: the shrunk weights are equal, the observed ones are
    not.

    >>> import numpy as np
    >>> from skprune.quotas import error_weights
    >>> recall, n = 1 - np.array([0, 1, 2]) / 13, np.array([13, 13, 13])
    >>> error_weights(recall, n, "observed").round(3)
    array([0.   , 0.077, 0.154])
    >>> error_weights(recall, n).round(3)
    array([0.077, 0.077, 0.077])

    Errors 0, 25 and 150 among 500 are not: shrinkage hardly moves them.

    >>> error_weights(1 - np.array([0, 25, 150]) / 500, np.array([500] * 3)).round(3)
    array([0.001, 0.051, 0.298])
    """
    recall = np.asarray(recall, dtype=float)
    errors, trials = _smoothed_counts(recall, n_validation, smoothing)
    seen = trials > 0
    if error_rate == "observed":
        return np.divide(errors, trials, out=1.0 - recall, where=seen)
    pooled = errors[seen].sum() / trials[seen].sum() if seen.any() else 0.0
    if pooled <= 0.0 or pooled >= 1.0:
        return _common_weights(errors, trials)
    rates = errors[seen] / trials[seen]
    share = trials[seen] / trials[seen].sum()
    spread = np.sum(share * (rates - pooled) ** 2)
    # What the spread would be if every class had the pooled rate.
    noise = pooled * (1.0 - pooled) * np.count_nonzero(seen) / trials[seen].sum()
    excess = spread - noise
    if excess <= 0.0:
        return _common_weights(errors, trials)
    strength = max(pooled * (1.0 - pooled) / excess - 1.0, 0.0)
    return (errors + strength * pooled) / (trials + strength)


def _smoothed_counts(recall, n_validation, smoothing):
    """Errors and trials of every group, each with the pseudo-counts added."""
    n_validation = np.asarray(n_validation, dtype=float)
    errors = n_validation * (1.0 - np.asarray(recall, dtype=float)) + smoothing
    return errors, n_validation + 2.0 * smoothing


def _common_weights(errors, trials):
    """One weight for every group: the pooled error rate, or 1 where it is 0 or 1."""
    seen = trials > 0
    pooled = errors[seen].sum() / trials[seen].sum() if seen.any() else 0.0
    return np.full(errors.shape, pooled if 0.0 < pooled < 1.0 else 1.0)


def equal_rates_pvalue(recall, n_validation, smoothing=0.0, seed=0, n_draws=10_000):
    """p-value of the hypothesis that every class has the same error rate.

    The statistic is the spread of the observed error rates around the
    pooled one, weighted by validation samples (the quantity whose excess
    over binomial noise sets :func:`error_weights`' shrinkage). Its null
    distribution is simulated exactly: every class's errors drawn from a
    binomial with the pooled rate. Valid with a handful of errors, where a
    chi-squared approximation is not.

    Parameters
    ----------
    recall : ndarray of shape (n_groups,)
    n_validation : ndarray of shape (n_groups,)
        Validation samples behind each recall.
    smoothing : float, default=0.0
        Pseudo-count added to errors and to correct predictions.
    seed : int, default=0
        Seed of the simulation; the same inputs and seed give the same value.
    n_draws : int, default=10000
        Simulated validation sets (standard error of the p-value at most
        0.005).

    Returns
    -------
    pvalue : float
        1.0 where the rates cannot differ (fewer than two classes, no error
        or no correct prediction at all).

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.quotas import equal_rates_pvalue
    >>> n = np.array([13, 13, 13])
    >>> bool(equal_rates_pvalue(1 - np.array([0, 1, 2]) / n, n) > 0.05)
    True
    >>> n = np.array([500, 500, 500])
    >>> bool(equal_rates_pvalue(1 - np.array([0, 25, 150]) / n, n) < 0.001)
    True
    """
    n_validation = np.asarray(n_validation, dtype=float)
    seen = n_validation > 0
    n_validation = n_validation[seen]
    errors = n_validation * (1.0 - np.asarray(recall, dtype=float)[seen])
    trials = n_validation + 2.0 * smoothing
    pooled = errors.sum() / n_validation.sum() if errors.size else 0.0
    if errors.size < 2 or pooled <= 0.0 or pooled >= 1.0:
        return 1.0

    def spread(errors):
        # Around each set's own pooled rate, as for the observed set.
        smoothed = errors + smoothing
        pooled = smoothed.sum(axis=-1, keepdims=True) / trials.sum()
        return np.sum(trials * (smoothed / trials - pooled) ** 2, axis=-1)

    # Averaged recalls (several runs) give fractional errors; the simulation
    # draws whole ones from the rounded validation sizes.
    simulated = np.random.RandomState(seed).binomial(
        np.rint(n_validation).astype(int), pooled, size=(n_draws, errors.size)
    ).astype(float)
    observed = spread(errors)
    # A tolerance, so that the observed set counts among its equals.
    return float(np.mean(spread(simulated) >= observed * (1 - 1e-9)))
