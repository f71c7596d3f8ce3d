"""Where MetriQ measures recall: hold-outs, folds, given sets and given predictions."""

import numbers

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit, check_cv

from ..cache import Schema
from ..utils._torch_data import take_rows


def _splits(validation, context):
    """``(train_rows or None, X_val, y_val, groups_val)`` for every training needed."""
    X, y = context.X, context.y
    groups = y if context.groups is None else context.groups
    if isinstance(validation, tuple):
        yield None, validation[0], validation[1], validation[-1]
        return
    # Stratified by group, so that every group has validation samples (the
    # groups are the classes unless the pruner was given groups).
    kind = "classes" if context.groups is None else "groups"
    if isinstance(validation, numbers.Real) and not isinstance(validation, numbers.Integral):
        yield _hold_out(validation, context, X, y, groups, kind)
        return
    if isinstance(validation, numbers.Integral):
        folds = check_cv(validation, groups, classifier=True).split(np.zeros(len(y)), groups)
    else:
        folds = check_cv(validation, y, classifier=True).split(
            np.zeros(len(y)), y, context.groups)
    for train, test in folds:
        yield train, take_rows(X, test), y[test], groups[test]


def _hold_out(fraction, context, X, y, groups, kind):
    """A hold-out stratified by group; a group of one row trains and is not validated.

    A stratified split needs two rows of every group it splits. A group with
    a single row (a rare class, a small subpopulation) cannot give one to
    each side: it stays in the training rows, and MetriQ treats it as a
    group without validation samples (it gets the pooled rate).
    """
    labels, index, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    splittable = np.flatnonzero(sizes[index] >= 2)
    n_groups = np.count_nonzero(sizes >= 2)
    if n_groups == 0:
        raise ValueError(
            f"MetriQ(validation={fraction}) cannot hold out validation rows: every one of "
            f"the {labels.size} {kind} has a single row. Give MetriQ an explicit "
            "(X_val, y_val), or its predictions (MetriQ.from_predictions)."
        )
    n_held_out = max(int(np.ceil(fraction * splittable.size)), n_groups)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_held_out,
                                      random_state=context.seed)
    try:
        train, test = next(splitter.split(np.zeros(splittable.size), groups[splittable]))
    except ValueError as exc:
        raise ValueError(
            f"MetriQ(validation={fraction}) cannot hold out a stratified validation set "
            f"from {len(y)} samples of {labels.size} {kind} ({exc}). Use a larger "
            "fraction, an int number of folds, or an explicit (X_val, y_val)."
        ) from None
    # The splitter's (shuffled) order, as the rows train; single rows last.
    train = np.concatenate([splittable[train], np.flatnonzero(sizes[index] < 2)])
    test = splittable[test]
    return train, take_rows(X, test), y[test], groups[test]


def _random_splitter(validation):
    """Whether a CV splitter draws its folds from unseeded randomness (never cached)."""
    if isinstance(validation, (numbers.Real, tuple)):
        return False
    random_state = getattr(validation, "random_state", 0)
    shuffles = getattr(validation, "shuffle", True)
    return shuffles and not isinstance(random_state, numbers.Integral)


def _check_recall(result, n_groups):
    for name in ("recall", "n_validation"):
        value = result.get(name)
        if value is None or value.shape != (n_groups,) or not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be {n_groups} finite numbers")
    if np.any((result["recall"] < 0) | (result["recall"] > 1)) or np.any(
        result["n_validation"] < 0
    ):
        raise ValueError("recalls must lie in [0, 1] and counts be non-negative")
    counts = result.get("error_counts")
    if (counts is None or counts.ndim != 2 or counts.shape[0] != n_groups
            or counts.shape[1] < 2 or not np.all(np.isfinite(counts)) or np.any(counts < 0)
            or not np.allclose(counts.sum(axis=1), result["n_validation"])):
        raise ValueError("error_counts must count every group's validation rows by level")


def group_positions(groups_val, labels):
    """Position of every validation row's group in ``labels``, and which rows have one.

    A validation row of a group absent from the pruned data counts for none.

    Parameters
    ----------
    groups_val : ndarray of shape (n_val,)
    labels : ndarray of shape (n_groups,)
        The sorted groups (classes) of the data being pruned.

    Returns
    -------
    positions : ndarray of int, shape (n_val,)
    known : ndarray of bool, shape (n_val,)
    """
    position = np.searchsorted(labels, groups_val)
    known = (position < labels.shape[0]) & (
        labels[np.minimum(position, labels.size - 1)] == groups_val
    )
    return np.where(known, position, 0), known


def evidence_schema(n_groups, n_runs):
    """The arrays of ``validation_evidence`` over ``n_runs`` trainings, as cached."""
    return Schema(recall=("float64", (n_groups,)), n_validation=("float64", (n_groups,)),
                  error_counts=("float64", (n_groups, n_runs + 1)))


def validation_evidence(hits, row_groups, n_groups):
    """What MetriQ keeps of its validation: recalls, row counts and error levels.

    Parameters
    ----------
    hits : ndarray of shape (n_runs, n_rows)
        Whether each training classified each validation row correctly.
    row_groups : ndarray of int, shape (n_rows,)
        Position of every row's group.
    n_groups : int

    Returns
    -------
    dict
        ``recall`` (averaged over runs) and ``n_validation``, of shape
        ``(n_groups,)``, and ``error_counts`` of shape
        ``(n_groups, n_runs + 1)``: rows misclassified by 0, 1, ...,
        ``n_runs`` of the trainings (see
        :class:`~skprune.quotas._error_rates.ErrorEvidence`).
    """
    hits = np.asarray(hits, dtype=float).reshape(-1, np.shape(row_groups)[0])
    n_runs = hits.shape[0]
    row_errors = 1.0 - hits.mean(axis=0)
    n_validation = np.bincount(row_groups, minlength=n_groups).astype(float)
    correct = np.bincount(row_groups, weights=1.0 - row_errors, minlength=n_groups)
    recall = np.divide(correct, n_validation, out=np.zeros(n_groups), where=n_validation > 0)
    level = np.rint(row_errors * n_runs).astype(np.int64)
    error_counts = np.zeros((n_groups, n_runs + 1))
    np.add.at(error_counts, (row_groups, level), 1.0)
    return {"recall": recall, "n_validation": n_validation, "error_counts": error_counts}


class ValidationPredictions:
    """Predictions a model of yours made on validation data, for :class:`MetriQ`.

    MetriQ needs only which validation rows a model trained on the data
    classifies correctly. When you train with your own loop (plain PyTorch,
    Lightning, anything), give it those predictions instead of an estimator
    to train: ``MetriQ.from_predictions(y_val, y_pred)``. The weights then
    follow from the same statistics as MetriQ's own trainings.

    Parameters
    ----------
    y_true : array-like of shape (n_val,)
        True labels of the validation rows, in the labels of the data being
        pruned.
    y_pred : array-like of shape (n_val,) or (n_runs, n_val)
        Predicted labels; several rows are several independent trainings,
        whose recalls are averaged.
    groups : array-like of shape (n_val,), default=None
        Group of every validation row, when the pruner is given ``groups``.

    See Also
    --------
    MetriQ.from_predictions : the quota built on these predictions.

    Examples
    --------
    >>> from skprune.quotas import ValidationPredictions
    >>> ValidationPredictions([0, 0, 1, 1], [0, 1, 1, 1]).recall([0, 1])
    (array([0.5, 1. ]), array([2., 2.]))
    """

    def __init__(self, y_true, y_pred, groups=None):
        self.y_true = y_true
        self.y_pred = y_pred
        self.groups = groups

    def __repr__(self):
        n_val = np.shape(self.y_true)[0] if np.ndim(self.y_true) else 0
        return f"{type(self).__name__}(<{n_val} validation predictions>)"

    def _checked(self):
        y_true = np.asarray(self.y_true)
        y_pred = np.asarray(self.y_pred)
        if y_true.ndim != 1 or y_true.shape[0] == 0:
            raise ValueError(
                "ValidationPredictions needs y_true as one label per validation row (1-D, "
                f"non-empty); got shape {y_true.shape}."
            )
        if y_pred.ndim == 1:
            y_pred = y_pred[np.newaxis]
        if y_pred.ndim != 2 or y_pred.shape[1] != y_true.shape[0]:
            raise ValueError(
                f"ValidationPredictions: y_pred must have shape ({y_true.shape[0]},) or "
                f"(n_runs, {y_true.shape[0]}), one predicted label per validation row (and "
                f"per run); got shape {np.shape(self.y_pred)}."
            )
        groups = y_true if self.groups is None else np.asarray(self.groups)
        if groups.shape != y_true.shape:
            raise ValueError(
                f"ValidationPredictions: groups must have one entry per validation row "
                f"({y_true.shape[0]}); got shape {groups.shape}."
            )
        return y_true, y_pred, groups

    def evidence(self, labels):
        """Recalls, validation rows and error levels of every group in ``labels``.

        See ``validation_evidence``.
        """
        labels = np.asarray(labels)
        y_true, y_pred, groups = self._checked()
        positions, known = group_positions(groups, labels)
        return validation_evidence((y_pred == y_true)[:, known], positions[known],
                                   labels.shape[0])

    def recall(self, labels):
        """Recall of every group in ``labels``, averaged over runs, and validation rows.

        Parameters
        ----------
        labels : array-like of shape (n_groups,)
            The sorted groups (classes) of the data being pruned.

        Returns
        -------
        recall, n_validation : ndarray of shape (n_groups,)
        """
        evidence = self.evidence(labels)
        return evidence["recall"], evidence["n_validation"]
