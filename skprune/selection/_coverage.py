"""Coverage-centric coreset selection (CCS, Zheng et al. 2023)."""

import math
import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import BaseSelection, rank_by_score


class CoverageCentric(BaseSelection):
    """Drop the hardest rows, then sample evenly across the score range (CCS).

    Within a group of ``n`` rows asked to keep ``count``:

    1. the hardest ``floor(beta * n)`` rows are dropped as likely
       mislabelled (ties at the cut broken at random), but never so many
       that fewer than ``count`` rows remain (then ``n - count`` are
       dropped);
    2. the score range ``[min, max]`` of the remaining rows is split into
       ``n_strata`` strata of equal width (the maximum belongs to the last
       stratum; a constant score is one stratum);
    3. the budget is allocated from the smallest non-empty stratum up:
       visiting the strata by increasing size, each gets
       ``min(size, remaining // strata_left)``, where ``remaining`` is the
       budget not yet allocated and ``strata_left`` the number of non-empty
       strata not yet visited, this one included;
    4. each stratum's rows are sampled uniformly at random, without
       replacement.

    Sparse strata are kept whole and the rest of the budget is spread
    evenly over the dense ones, so the kept rows cover easy, medium and
    hard examples alike. At low densities (high pruning rates) this beats
    keeping the hardest rows, which then leaves whole regions of the data
    uncovered (Zheng et al., 2023).

    Parameters
    ----------
    beta : float in [0, 1), default=0.1
        Fraction of each group's rows, counted from the hardest, dropped
        before stratifying. The authors use 0 at low pruning rates and up
        to 0.4 at the highest.
    n_strata : int >= 1, default=50
        Number of equal-width strata of the score range (the authors' 50).

    See Also
    --------
    OffsetWindow : a window of ranks above the easiest rows (data_diet).
    EasiestFirst : keep the easiest rows, for very small budgets.

    Notes
    -----
    Rounding: ``floor(beta * n)`` rows are dropped, with a product within
    floating-point error of an integer taken as that integer, so
    ``beta=0.29`` drops 29 of 100 rows although ``0.29 * 100`` is
    ``28.999999999999996`` in floating point.

    Strata of equal size are visited in increasing order of score, so when
    the budget does not divide evenly the extra rows go to the harder
    strata. Visiting by increasing size always allocates exactly ``count``
    rows (the last stratum, the largest, can absorb whatever is left); the
    implementation still checks, and would give any unallocated rows to
    the strata with the most spare rows, largest first.

    With ``quota=None`` the rule is applied to all rows at once; the
    pruner then keeps at least one row of every class. Strata are taken
    over each group's own score range: scores need not be comparable
    across groups.

    Differences from the authors' code: there the mislabel cut may use a
    different score (the area under the margin) than the strata; here both
    use the pruner's score. Their upper edge is ``1.0001 * max``; here the
    maximum is placed in the last stratum exactly.

    References: H. Zheng, R. Liu, F. Lai and A. Prakash, "Coverage-centric
    Coreset Selection for High Pruning Rates", ICLR 2023 (arXiv
    2210.15809), Algorithm 1; code at
    https://github.com/haizhongzheng/Coverage-centric-coreset-selection.

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.selection import CoverageCentric
    >>> scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 5.0, 9.0])
    >>> rule = CoverageCentric(beta=0.1, n_strata=2)
    >>> kept = rule.select_group(scores, 4, np.random.RandomState(0))
    >>> len(kept), 9 in kept  # the hardest 10% (row 9) is dropped
    (4, False)
    >>> 8 in kept  # alone in the upper stratum [2.55, 5.0]: always kept
    True
    """

    _parameter_constraints = {
        "beta": [Interval(numbers.Real, 0, 1, closed="left")],
        "n_strata": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, beta=0.1, n_strata=50):
        self.beta = beta
        self.n_strata = n_strata

    def select_group(self, scores, count, random_state):
        """Positions of the ``count`` rows kept, stratum by stratum.

        Parameters
        ----------
        scores : ndarray of shape (n,)
        count : int
            ``1 <= count <= n``.
        random_state : numpy.random.RandomState
            Source of the tie breaks at the ``beta`` cut and of the sampling.

        Returns
        -------
        positions : ndarray of int, shape (count,)
            In the order picked: stratum by stratum, from the smallest
            allocation to the largest (ties by score), so that the
            last-picked row, the one :meth:`select_global` may trade for a
            row of an empty group, comes from the best-covered stratum.
        """
        self._validate_params()
        scores = np.asarray(scores, dtype=float)
        n = scores.shape[0]
        if not 0 <= count <= n:
            raise ValueError(f"count must be in [0, {n}] for {n} rows; got {count}")
        n_drop = min(floor_fraction(self.beta, n), n - count)
        eligible = rank_by_score(scores, random_state)[n_drop:]
        strata = stratum_index(scores[eligible], self.n_strata)
        occupied, members = np.unique(strata, return_inverse=True)
        sizes = np.bincount(members, minlength=occupied.size)
        budgets = allocate_strata(sizes, count)
        picked = []
        for stratum in np.lexsort((np.arange(sizes.size), budgets)):
            rows = eligible[members == stratum]
            picked.append(random_state.choice(rows, size=budgets[stratum], replace=False))
        return np.concatenate(picked).astype(np.int64) if picked else np.zeros(0, np.int64)


def floor_fraction(fraction, n):
    """``floor(fraction * n)``, with a product within rounding error of an integer taken as it.

    Parameters
    ----------
    fraction : float
    n : int

    Returns
    -------
    int
    """
    product = fraction * n
    nearest = round(product)
    if abs(product - nearest) <= 1e-9 * max(1.0, abs(product)):
        return int(nearest)
    return math.floor(product)


def stratum_index(scores, n_strata):
    """Equal-width stratum of every score, in ``range(n_strata)``.

    The range ``[min, max]`` is split into ``n_strata`` intervals
    ``[lo + k * w, lo + (k + 1) * w)``, ``w = (max - min) / n_strata``;
    the maximum belongs to the last one. A constant score is stratum 0.

    Parameters
    ----------
    scores : ndarray of shape (n,)
        Finite.
    n_strata : int >= 1

    Returns
    -------
    strata : ndarray of int, shape (n,)
    """
    if scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    # Halved so that the span cannot overflow for scores near the float limits.
    low, high = scores.min() / 2, scores.max() / 2
    if high <= low:
        return np.zeros(scores.shape[0], dtype=np.int64)
    position = (scores / 2 - low) / (high - low) * n_strata
    return np.clip(np.floor(position), 0, n_strata - 1).astype(np.int64)


def allocate_strata(sizes, budget, order=None):
    """Rows sampled per stratum: smallest strata first, the budget spread evenly.

    Visiting the strata in ``order`` (by default by increasing size, ties
    by position), each gets ``min(size, remaining // strata_left)``. Budget
    left unallocated at the end (impossible in the default order) goes to
    the strata with the most spare rows, largest spare first.

    Parameters
    ----------
    sizes : ndarray of int, shape (n_strata,)
        Rows in every stratum, all positive.
    budget : int
        ``0 <= budget <= sizes.sum()``.
    order : ndarray of int, default=None
        Visiting order; exposed for testing the fallback.

    Returns
    -------
    budgets : ndarray of int, shape (n_strata,)
        ``0 <= budgets <= sizes``, summing to ``budget``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if order is None:
        order = np.lexsort((np.arange(sizes.size), sizes))
    budgets = np.zeros(sizes.size, dtype=np.int64)
    remaining = int(budget)
    for visited, stratum in enumerate(order):
        budgets[stratum] = min(int(sizes[stratum]), remaining // (sizes.size - visited))
        remaining -= int(budgets[stratum])
    if remaining:
        spare = sizes - budgets
        for stratum in np.argsort(-spare, kind="stable"):
            extra = min(int(spare[stratum]), remaining)
            budgets[stratum] += extra
            remaining -= extra
    return budgets
