"""Water-filling allocation of a kept-sample budget across classes."""

import numpy as np


def allocate_class_counts(class_sizes, weights, n_keep):
    """Split ``n_keep`` kept samples across classes by density weights.

    Class densities are proportional to ``weights`` (so kept counts are
    proportional to ``class_sizes * weights``); a class whose density would
    exceed 1 keeps all of its samples and its excess is redistributed over the
    unsaturated classes in proportion to ``class_sizes * weights``, until no
    excess is left (Algorithm 1 of Vysogorets et al., arXiv 2404.05579).
    Every class keeps at least one sample, and the real-valued counts are
    rounded by largest remainder so that they add up to ``n_keep`` exactly.

    Parameters
    ----------
    class_sizes : array-like of int, shape (n_classes,)
        Number of available samples ``N_k`` in each class, all >= 1.
    weights : array-like of float, shape (n_classes,)
        Non-negative density weights ``w_k``. If all are zero, every class
        gets the same density.
    n_keep : int
        Total number of samples to keep, ``n_classes <= n_keep <= sum(N_k)``.

    Returns
    -------
    counts : ndarray of int, shape (n_classes,)
        Kept samples per class, ``1 <= counts[k] <= class_sizes[k]`` and
        ``counts.sum() == n_keep``.

    Examples
    --------
    The imbalanced example of the paper: recalls 0.8 and 0.6 give weights 0.2
    and 0.4, so the smaller, harder class keeps a higher fraction.

    >>> from skprune.quotas import allocate_class_counts
    >>> allocate_class_counts([5000, 2000], [0.2, 0.4], 2100)
    array([1167,  933])
    """
    class_sizes = np.asarray(class_sizes, dtype=np.int64)
    weights = np.asarray(weights, dtype=float)
    n_keep = int(n_keep)
    if class_sizes.ndim != 1 or class_sizes.shape != weights.shape:
        raise ValueError(
            "class_sizes and weights must be 1-D arrays of the same length; got "
            f"shapes {class_sizes.shape} and {weights.shape}."
        )
    if np.any(class_sizes < 1):
        raise ValueError("Every class must have at least one sample.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"Class weights must be finite and non-negative; got {weights}.")
    if not class_sizes.size <= n_keep <= class_sizes.sum():
        raise ValueError(
            f"Cannot keep {n_keep} samples from {class_sizes.size} classes with "
            f"{class_sizes.sum()} samples: need n_classes <= n_keep <= n_samples."
        )
    if not np.any(weights > 0):
        weights = np.ones_like(weights)
    # Only ratios matter. A weight below 1e-15 of the largest changes no count
    # before a class holds 10^15 samples, yet would overflow the solver's
    # 1 / (N_k * w_k) breakpoints: treat it as the zero it is in the limit.
    weights = weights / weights.max()
    weights[weights < 1e-15] = 0.0

    exact = _water_fill(class_sizes.astype(float), weights, float(n_keep))
    return _round_largest_remainder(exact, class_sizes, n_keep)


def _water_fill(class_sizes, weights, n_keep):
    """Real-valued counts ``clip(lam * N_k * w_k, 1, N_k)`` summing to ``n_keep``."""
    mass = class_sizes * weights
    positive = mass > 0
    # Zero-weight classes only get their one guaranteed sample, unless the
    # weighted classes cannot absorb the budget; then the rest is spread
    # over the zero-weight classes at a uniform density.
    capacity = class_sizes[positive].sum() + np.count_nonzero(~positive)
    if capacity < n_keep:
        counts = np.where(positive, class_sizes, 0.0)
        rest = _water_fill(class_sizes[~positive], np.ones(np.count_nonzero(~positive)),
                           n_keep - counts.sum())
        counts[~positive] = rest
        return counts

    # kept(lam) = sum_k clip(lam * mass_k, 1, N_k) is piecewise linear and
    # non-decreasing in lam; its kinks are where a class leaves the floor
    # (lam = 1 / mass_k) or saturates (lam = N_k / mass_k). Find the piece
    # that crosses n_keep and solve it exactly.
    def kept(lam):
        return np.where(positive, np.clip(lam * mass, 1.0, class_sizes), 1.0).sum()

    kinks = np.unique(np.concatenate([1.0 / mass[positive],
                                      class_sizes[positive] / mass[positive]]))
    totals = np.array([kept(lam) for lam in kinks])
    upper = np.searchsorted(totals, n_keep)  # first kink with kept >= n_keep
    if upper < kinks.size and totals[upper] == n_keep:
        return np.where(positive, np.clip(kinks[upper] * mass, 1.0, class_sizes), 1.0)
    low = kinks[upper - 1] if upper > 0 else 0.0
    high = kinks[min(upper, kinks.size - 1)]
    # On (low, high) the active (unclipped) classes are fixed.
    probe = 0.5 * (low + high) if upper < kinks.size else high * 2.0
    active = positive & (probe * mass > 1.0) & (probe * mass < class_sizes)
    fixed = np.where(positive, np.clip(probe * mass, 1.0, class_sizes), 1.0)
    fixed_total = fixed[~active].sum()
    lam = (n_keep - fixed_total) / mass[active].sum()
    return np.where(active, lam * mass, fixed)


def _round_largest_remainder(exact, class_sizes, n_keep):
    exact = np.clip(exact, 1.0, class_sizes)
    # A tiny tolerance keeps counts that are whole in exact arithmetic from
    # being floored one below by float error.
    counts = np.floor(exact + 1e-9).astype(np.int64)
    counts = np.clip(counts, 1, class_sizes)
    shortfall = n_keep - counts.sum()
    remainders = exact - counts
    if shortfall > 0:
        eligible = np.flatnonzero(counts < class_sizes)
        order = eligible[np.argsort(-remainders[eligible], kind="stable")]
        counts[order[:shortfall]] += 1
    elif shortfall < 0:
        eligible = np.flatnonzero(counts > 1)
        order = eligible[np.argsort(remainders[eligible], kind="stable")]
        counts[order[:-shortfall]] -= 1
    return counts
