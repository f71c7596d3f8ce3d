"""Choosing which rows to keep from per-sample scores."""

import numpy as np


def rank_by_score(scores, random_state):
    """Row positions from hardest to easiest, ties broken at random.

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
        Higher means harder, i.e. kept first.
    random_state : numpy.random.RandomState
        Source of the tie-breaking permutation.

    Returns
    -------
    order : ndarray of int, shape (n_samples,)
    """
    tie_break = random_state.permutation(scores.shape[0])
    # lexsort sorts by its last key first: descending score, then tie_break.
    return np.lexsort((tie_break, -scores))


def select_per_class(order, y_encoded, class_counts):
    """Keep the ``class_counts[k]`` best-ranked rows of each class ``k``.

    Parameters
    ----------
    order : ndarray of int
        Rows ranked from most to least worth keeping (see :func:`rank_by_score`).
    y_encoded : ndarray of int, shape (n_samples,)
        Class index of every row, in ``range(n_classes)``.
    class_counts : ndarray of int, shape (n_classes,)

    Returns
    -------
    sample_indices : ndarray of int
        Kept rows, sorted in their original order.
    """
    ranked_classes = y_encoded[order]
    # Position of each ranked row within its own class, by stable grouping.
    by_class = np.argsort(ranked_classes, kind="stable")
    class_starts = np.searchsorted(ranked_classes[by_class], np.arange(len(class_counts)))
    rank_in_class = np.empty_like(order)
    rank_in_class[by_class] = np.arange(order.size) - np.repeat(
        class_starts, np.bincount(ranked_classes, minlength=len(class_counts))
    )
    keep = rank_in_class < class_counts[ranked_classes]
    return np.sort(order[keep])


def select_global(order, y_encoded, n_classes, n_keep):
    """Keep the ``n_keep`` best-ranked rows overall, at least one per class.

    Parameters
    ----------
    order : ndarray of int
        Rows ranked from most to least worth keeping.
    y_encoded : ndarray of int, shape (n_samples,)
    n_classes : int
    n_keep : int
        ``n_classes <= n_keep <= n_samples``.

    Returns
    -------
    sample_indices : ndarray of int
        Kept rows, sorted in their original order.
    """
    ranked_classes = y_encoded[order]
    # The best row of each class is guaranteed; the rest of the budget goes to
    # the best remaining rows regardless of class.
    _, first_of_class = np.unique(ranked_classes, return_index=True)
    guaranteed = np.zeros(order.size, dtype=bool)
    guaranteed[first_of_class] = True
    n_rest = n_keep - n_classes
    rest = np.flatnonzero(~guaranteed)[:n_rest]
    kept_positions = np.concatenate([first_of_class, rest])
    return np.sort(order[kept_positions])
