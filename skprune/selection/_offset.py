"""The "offset" rule of Paul et al. (2021): a window of ranks above the easiest rows."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import BaseSelection, rank_by_score


class OffsetWindow(BaseSelection):
    """Pass over the easiest ``offset`` fraction of a group, then keep the next rows up.

    The convention of Paul et al.'s ``data_diet`` code, which keeps
    ``scores.argsort()[offset:offset + size]``: rows are ranked from
    easiest (lowest score) to hardest, and the offset counts from the easy
    end. Within a group of ``n`` rows asked to keep ``count``, rows are
    ranked easiest first (ties broken at random), the first
    ``skip = min(round(offset * n), n - count)`` are passed over, and the
    next ``count`` are kept: a window of ``count`` consecutive ranks that
    starts ``round(offset * n)`` ranks above the easiest row. If fewer than
    ``count`` rows lie above the skip, the window slides back towards the
    easy end so that exactly ``count`` are kept; it then ends at the hardest
    row.

    Sliding the window trades the hardest rows, often mislabelled or
    ambiguous, against the easiest, often redundant: at high densities a
    window that stops short of the hardest rows trains better models than
    keeping them (Paul et al., 2021, Section 5 and Figure 4). To leave out
    the hardest fraction ``h`` of every group at a proportional quota of
    density ``d``, use ``offset = 1 - d - h``.

    Parameters
    ----------
    offset : float in [0, 1), default=0.1
        Fraction of each group's rows, counted from the easiest, to pass
        over. ``0`` is :class:`EasiestFirst`; ``offset >= 1 - count / n``
        keeps a group's ``count`` hardest rows, as :class:`HardestFirst`.

    See Also
    --------
    EasiestFirst : the same rule with ``offset=0``.
    HardestFirst : the window at the hard end.
    CoverageCentric : drop the hardest rows, then cover the whole score range.

    Notes
    -----
    ``round`` rounds half to even, as Python's ``round`` and the
    pruners' ``round(density * n_samples)`` do: ``offset=0.25`` skips 2 of
    10 rows and 4 of 18 (``round(2.5) == 2``, ``round(4.5) == 4``).

    ``data_diet``'s ``offset`` is a number of rows of the whole dataset;
    here it is a fraction of each group, so that the same value means the
    same thing for groups of every size. With ``quota=None`` the rule is
    applied to all rows at once, with ``round(offset * n_samples)`` skipped:
    ``OffsetWindow(offset=k / n_samples)`` then keeps ``data_diet``'s window
    of ``k`` (see the example), up to ties and the row every class keeps.

    References: M. Paul, S. Ganguli and G. K. Dziugaite, "Deep Learning on
    a Data Diet: Finding Important Examples Early in Training", NeurIPS
    2021 (arXiv 2107.07075); code at https://github.com/mansheej/data_diet
    (``subset_train_idxs_by_offset`` in ``data_diet/data.py``).

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.selection import OffsetWindow
    >>> scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    >>> rule = OffsetWindow(offset=0.2)
    >>> rule.select_group(scores, 3, np.random.RandomState(0))  # skips rows 9, 8
    array([7, 6, 5])
    >>> rule.select_group(scores, 9, np.random.RandomState(0))  # slides back by 1
    array([8, 7, 6, 5, 4, 3, 2, 1, 0])

    ``data_diet``'s window, ``scores.argsort()[offset:offset + size]``, from
    a pruner without a quota:

    >>> from skprune import ScorePruner
    >>> rng = np.random.RandomState(0)
    >>> scores, y = rng.uniform(size=1000), rng.randint(0, 10, size=1000)
    >>> n_skip, size = 150, 400                    # data_diet's offset and size
    >>> pruner = ScorePruner(scores, density=size / 1000,
    ...                      selection=OffsetWindow(offset=n_skip / 1000), random_state=0)
    >>> kept = pruner.fit(np.zeros((1000, 1)), y).sample_indices_
    >>> bool(np.array_equal(kept, np.sort(scores.argsort()[n_skip:n_skip + size])))
    True
    """

    _parameter_constraints = {
        "offset": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(self, offset=0.1):
        self.offset = offset

    def select_group(self, scores, count, random_state):
        """Positions of the ``count`` rows kept, from easiest to hardest.

        Parameters
        ----------
        scores : ndarray of shape (n,)
        count : int
            ``1 <= count <= n``.
        random_state : numpy.random.RandomState
            Source of the tie-breaking permutation.

        Returns
        -------
        positions : ndarray of int, shape (count,)
        """
        self._validate_params()
        n = scores.shape[0]
        skip = min(round(self.offset * n), n - count)
        return rank_by_score(scores, random_state, descending=False)[skip:skip + count]

    def select(self, scores, group_index, counts, random_state):
        """Keep ``counts[g]`` rows of every group ``g``: its window above the offset.

        Vectorized: one ranking of all rows (ties broken by one random
        permutation), so that it costs the same for one group or thousands.

        Parameters
        ----------
        scores : ndarray of shape (n_samples,)
            Higher means harder.
        group_index : ndarray of int, shape (n_samples,)
            Group of every row, in ``range(n_groups)``.
        counts : ndarray of int, shape (n_groups,)
            Rows to keep per group, ``1 <= counts[g] <=`` the group's size.
        random_state : numpy.random.RandomState
            Source of the tie-breaking permutation.

        Returns
        -------
        sample_indices : ndarray of int
            Kept rows, sorted in their original order.
        """
        self._validate_params()
        counts = np.asarray(counts, dtype=np.int64)
        order = rank_by_score(scores, random_state, descending=False)
        # Rows grouped by group, each group's rows still easiest first.
        grouped = order[np.argsort(group_index[order], kind="stable")]
        sizes = np.bincount(group_index, minlength=counts.size)
        starts = np.cumsum(sizes) - sizes
        # np.rint rounds half to even, as round() in select_group does.
        skips = np.minimum(np.rint(self.offset * sizes).astype(np.int64), sizes - counts)
        rank_in_group = np.arange(order.size) - np.repeat(starts, sizes)
        group_of = np.repeat(np.arange(counts.size), sizes)
        keep = (rank_in_group >= skips[group_of]) & (
            rank_in_group < skips[group_of] + counts[group_of]
        )
        return np.sort(grouped[keep])
