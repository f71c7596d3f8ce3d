"""The interface of selection rules, and the rules that keep rows in score order."""

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator


class BaseSelection(BaseEstimator, metaclass=ABCMeta):
    """Which rows a pruner keeps, given their scores and how many to keep.

    A pruner scores every row (higher = harder) and its quota decides how
    many rows each group keeps; the selection rule decides *which* ones. It
    never changes the scores, so a search over selection parameters reuses
    the cached scores.

    Subclasses implement :meth:`select_group`; rules that keep rows in some
    order of their scores implement ``rank`` instead (see
    :class:`RankingSelection`).
    """

    _parameter_constraints = {}

    def select(self, scores, group_index, counts, random_state):
        """Keep ``counts[g]`` rows of every group ``g``.

        Parameters
        ----------
        scores : ndarray of shape (n_samples,)
            Higher means harder.
        group_index : ndarray of int, shape (n_samples,)
            Group of every row, in ``range(n_groups)``.
        counts : ndarray of int, shape (n_groups,)
            Rows to keep per group, ``1 <= counts[g] <=`` the group's size.
        random_state : numpy.random.RandomState
            Source of any randomness (tie breaks, sampling).

        Returns
        -------
        sample_indices : ndarray of int
            Kept rows, sorted in their original order.
        """
        kept = []
        for group, count in enumerate(counts):
            rows = np.flatnonzero(group_index == group)
            kept.append(rows[self.select_group(scores[rows], int(count), random_state)])
        return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)

    def select_global(self, scores, group_index, n_keep, random_state):
        """Keep ``n_keep`` rows regardless of group, and at least one of every group.

        The rule picks ``n_keep`` rows from all the data; then every group
        it left empty gets the row it ranks first there, in exchange for the
        last-picked row of the largest kept group.

        Parameters
        ----------
        scores : ndarray of shape (n_samples,)
        group_index : ndarray of int, shape (n_samples,)
        n_keep : int
            ``n_groups <= n_keep <= n_samples``.
        random_state : numpy.random.RandomState

        Returns
        -------
        sample_indices : ndarray of int
            Kept rows, sorted in their original order.
        """
        picked = list(self.select_group(scores, n_keep, random_state))
        n_groups = int(group_index.max()) + 1
        kept_per_group = np.bincount(group_index[picked], minlength=n_groups)
        for group in np.flatnonzero(kept_per_group == 0):
            rows = np.flatnonzero(group_index == group)
            best = rows[self.select_group(scores[rows], 1, random_state)[0]]
            donor = int(np.argmax(kept_per_group))
            last = max(i for i, row in enumerate(picked) if group_index[row] == donor)
            picked.pop(last)
            picked.append(best)
            kept_per_group[donor] -= 1
            kept_per_group[group] += 1
        return np.sort(np.asarray(picked, dtype=np.int64))

    @abstractmethod
    def select_group(self, scores, count, random_state):
        """Positions of the ``count`` rows kept among ``scores``, in the order picked.

        Parameters
        ----------
        scores : ndarray of shape (n,)
        count : int
            ``1 <= count <= n``.
        random_state : numpy.random.RandomState

        Returns
        -------
        positions : ndarray of int, shape (count,)
        """


class RankingSelection(BaseSelection):
    """A rule that ranks rows once and keeps every group's best-ranked rows.

    Subclasses implement ``rank``; keeping per group and overall then
    follows from the ranking (vectorized, so that it costs microseconds on
    millions of rows).
    """

    @abstractmethod
    def rank(self, scores, random_state):
        """Row positions from most to least worth keeping.

        Parameters
        ----------
        scores : ndarray of shape (n_samples,)
        random_state : numpy.random.RandomState

        Returns
        -------
        order : ndarray of int, shape (n_samples,)
        """

    def select_group(self, scores, count, random_state):
        return self.rank(scores, random_state)[:count]

    def select(self, scores, group_index, counts, random_state):
        order = self.rank(scores, random_state)
        ranked_groups = group_index[order]
        n_groups = len(counts)
        # Position of each ranked row within its own group, by stable grouping.
        by_group = np.argsort(ranked_groups, kind="stable")
        group_starts = np.searchsorted(ranked_groups[by_group], np.arange(n_groups))
        rank_in_group = np.empty_like(order)
        rank_in_group[by_group] = np.arange(order.size) - np.repeat(
            group_starts, np.bincount(ranked_groups, minlength=n_groups)
        )
        keep = rank_in_group < np.asarray(counts)[ranked_groups]
        return np.sort(order[keep])

    def select_global(self, scores, group_index, n_keep, random_state):
        order = self.rank(scores, random_state)
        ranked_groups = group_index[order]
        # The best row of each group is guaranteed; the rest of the budget
        # goes to the best remaining rows regardless of group.
        _, first_of_group = np.unique(ranked_groups, return_index=True)
        guaranteed = np.zeros(order.size, dtype=bool)
        guaranteed[first_of_group] = True
        rest = np.flatnonzero(~guaranteed)[: n_keep - first_of_group.size]
        return np.sort(order[np.concatenate([first_of_group, rest])])


def rank_by_score(scores, random_state, descending=True):
    """Row positions by score, ties broken by a random permutation.

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
    random_state : numpy.random.RandomState
        Source of the tie-breaking permutation.
    descending : bool, default=True
        Highest scores first.

    Returns
    -------
    order : ndarray of int, shape (n_samples,)
    """
    # As floats: negating unsigned integers would wrap around, booleans fail.
    scores = np.asarray(scores, dtype=float)
    tie_break = random_state.permutation(scores.shape[0])
    # By score, ties in increasing tie_break: a stable sort of the rows taken
    # in tie_break order (the order np.lexsort((tie_break, -scores)) gives,
    # at half its cost).
    by_tie_break = np.empty_like(tie_break)
    by_tie_break[tie_break] = np.arange(tie_break.size)
    keys = -scores[by_tie_break] if descending else scores[by_tie_break]
    return by_tie_break[np.argsort(keys, kind="stable")]


class HardestFirst(RankingSelection):
    """Keep the highest-scoring (hardest) rows first; ties are broken at random.

    The default rule of every pruner: what GraNd, EL2N, Forgetting and
    Dynamic Uncertainty were designed for, with enough data to keep.

    See Also
    --------
    EasiestFirst : the opposite order, for very small budgets.

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.selection import HardestFirst
    >>> scores = np.array([0.1, 0.9, 0.5, 0.7])
    >>> HardestFirst().select(scores, np.array([0, 0, 1, 1]), np.array([1, 1]),
    ...                       np.random.RandomState(0))
    array([1, 3])
    """

    def rank(self, scores, random_state):
        return rank_by_score(scores, random_state)


class EasiestFirst(RankingSelection):
    """Keep the lowest-scoring (easiest) rows first; ties are broken at random.

    With little data to keep, the easiest (most prototypical) samples train
    better models than the hardest ones (Sorscher et al., "Beyond neural
    scaling laws", arXiv 2206.14486): the small-data regime.

    See Also
    --------
    HardestFirst : the default order.

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.selection import EasiestFirst
    >>> scores = np.array([0.1, 0.9, 0.5, 0.7])
    >>> EasiestFirst().select(scores, np.array([0, 0, 1, 1]), np.array([1, 1]),
    ...                       np.random.RandomState(0))
    array([0, 2])
    """

    def rank(self, scores, random_state):
        return rank_by_score(scores, random_state, descending=False)
