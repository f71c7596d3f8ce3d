"""Class- and group-wise fairness metrics: recall statistics and scikit-learn scorers."""

import numpy as np
from sklearn.metrics import accuracy_score, make_scorer, recall_score

#: Statistics of the per-class recall; ``True`` marks those where higher is better.
STATISTICS = {"worst": True, "mean": True, "gap": False, "std": False}


def class_recall(y_true, y_pred, labels=None):
    """Recall of every class, as a dict ``{class: recall}``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    labels : array-like, default=None
        Classes to report; default: the classes present in ``y_true``. A
        class that is never predicted has recall 0.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    return dict(zip(labels.tolist(), np.asarray(recall, dtype=float).tolist(), strict=True))


def class_recall_report(y_true, y_pred, labels=None):
    """Accuracy and every class-recall statistic of one set of predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    labels : array-like, default=None
        Classes to include; default: those present in ``y_true``.

    Returns
    -------
    report : dict
        ``accuracy``; ``worst`` (lowest class recall, the paper's worst-class
        accuracy); ``mean`` (balanced accuracy); ``gap`` (highest minus
        lowest class recall); ``std`` (standard deviation of class recall);
        ``class_recall`` (dict class -> recall).

    Examples
    --------
    >>> from skprune import class_recall_report
    >>> report = class_recall_report([0, 0, 1, 1, 2, 2], [0, 0, 1, 0, 0, 0])
    >>> report["worst"], report["mean"], report["gap"]
    (0.0, 0.5, 1.0)
    >>> report["class_recall"]
    {0: 1.0, 1: 0.5, 2: 0.0}
    """
    per_class = class_recall(y_true, y_pred, labels)
    return {**_statistics(y_true, y_pred, per_class), "class_recall": per_class}


def _statistics(y_true, y_pred, per_part):
    recall = np.fromiter(per_part.values(), dtype=float)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "worst": float(recall.min()),
        "mean": float(recall.mean()),
        "gap": float(recall.max() - recall.min()),
        "std": float(recall.std()),
    }


def group_recall(y_true, y_pred, groups, labels=None):
    """Accuracy on every group's samples, as a dict ``{group: accuracy}``.

    With the classes as groups this is the recall of every class; for groups
    such as class x attribute it is the "group accuracy" of the
    group-robustness literature.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    groups : array-like of shape (n_samples,)
        The group of every sample.
    labels : array-like, default=None
        Groups to report; default: those present in ``groups``. A listed
        group without samples is left out.

    Examples
    --------
    >>> from skprune.metrics import group_recall
    >>> group_recall([0, 0, 1, 1], [0, 1, 1, 1], groups=["a", "b", "a", "b"])
    {'a': 1.0, 'b': 0.5}
    """
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    if not y_true.shape == y_pred.shape == groups.shape:
        raise ValueError(
            f"y_true, y_pred and groups must have one entry per sample; got shapes "
            f"{y_true.shape}, {y_pred.shape} and {groups.shape}."
        )
    labels = np.unique(groups) if labels is None else np.asarray(labels)
    correct = y_true == y_pred
    return {group: float(correct[groups == group].mean())
            for group in labels.tolist() if np.any(groups == group)}


def group_recall_report(y_true, y_pred, groups, labels=None):
    """Accuracy and every group-accuracy statistic of one set of predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    groups : array-like of shape (n_samples,)
    labels : array-like, default=None
        Groups to include; default: those present in ``groups``.

    Returns
    -------
    report : dict
        ``accuracy``; ``worst`` (worst-group accuracy); ``mean`` (mean
        group accuracy); ``gap``; ``std``; ``group_recall`` (dict group ->
        accuracy).

    Examples
    --------
    >>> from skprune.metrics import group_recall_report
    >>> report = group_recall_report([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b", "a", "b"])
    >>> report["worst"], report["accuracy"]
    (0.5, 0.75)
    """
    per_group = group_recall(y_true, y_pred, groups, labels)
    return {**_statistics(y_true, y_pred, per_group), "group_recall": per_group}


def worst_group_accuracy(y_true, y_pred, groups):
    """The lowest accuracy over groups (worst-group accuracy).

    Parameters
    ----------
    y_true, y_pred, groups : array-like of shape (n_samples,)

    Returns
    -------
    float

    Examples
    --------
    >>> from skprune.metrics import worst_group_accuracy
    >>> worst_group_accuracy([1, 1, 1, 1], [1, 1, 1, 0], groups=[0, 0, 1, 1])
    0.5
    """
    return group_recall_report(y_true, y_pred, groups)["worst"]


def _checked_statistic(statistic, owner):
    if statistic not in STATISTICS:
        raise ValueError(
            f"Unknown statistic {statistic!r} for {owner}; use one of {list(STATISTICS)}."
        )
    return statistic


def _group_statistic(y_true, y_pred, groups=None, statistic="worst"):
    if groups is None:
        raise ValueError(
            "GroupRecallScorer needs the groups of the scored samples: enable metadata "
            "routing (sklearn.set_config(enable_metadata_routing=True)) and call "
            "scorer.set_score_request(groups=True), then pass groups= to fit (see the "
            "user guide's 'Groups')."
        )
    value = group_recall_report(y_true, y_pred, groups)[statistic]
    return value if STATISTICS[statistic] else -value


class ClassRecallScorer:
    """A scikit-learn scorer for a statistic of per-class recall.

    Use it as ``scoring=`` in ``GridSearchCV`` or ``cross_validate`` to
    select on class-wise fairness instead of accuracy. Statistics where
    lower is better (``"gap"``, ``"std"``) are negated, as scikit-learn's
    ``neg_*`` scorers are, so that greater is always better.

    Parameters
    ----------
    statistic : {"worst", "mean", "gap", "std"}, default="worst"
        ``"worst"``: lowest class recall (the paper's worst-class accuracy);
        ``"mean"``: mean class recall (balanced accuracy); ``"gap"``: best
        minus worst class recall; ``"std"``: standard deviation of class
        recall.

    See Also
    --------
    class_recall_report : every statistic for one set of predictions.
    CLASS_RECALL_SCORING : a dict of these scorers for multi-metric search.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from skprune import ClassRecallScorer
    >>> X, y = load_digits(return_X_y=True)
    >>> scores = cross_val_score(LogisticRegression(max_iter=500), X / 16, y, cv=3,
    ...                          scoring=ClassRecallScorer("worst"))
    >>> bool(0.7 < scores.mean() <= 1.0)
    True
    """

    def __init__(self, statistic="worst"):
        self.statistic = _checked_statistic(statistic, type(self).__name__)

    def __call__(self, estimator, X, y_true, sample_weight=None):
        """Score ``estimator`` on ``(X, y_true)``; greater is better."""
        y_pred = estimator.predict(X)
        value = class_recall_report(y_true, y_pred)[self.statistic]
        return value if STATISTICS[self.statistic] else -value

    def __repr__(self):
        return f"ClassRecallScorer({self.statistic!r})"


class GroupRecallScorer:
    """A scikit-learn scorer for a statistic of per-group accuracy.

    Like :class:`ClassRecallScorer`, over groups given as metadata (the
    ``groups`` of ``GridSearchCV(...).fit(X, y, groups=groups)`` or
    ``cross_validate(..., params={"groups": groups})``): ``"worst"`` is the
    worst-group accuracy. The groups reach the scorer through scikit-learn's
    metadata routing: enable it with
    ``sklearn.set_config(enable_metadata_routing=True)`` and call
    ``set_score_request(groups=True)`` on the scorer. Lower-is-better
    statistics are negated.

    Parameters
    ----------
    statistic : {"worst", "mean", "gap", "std"}, default="worst"

    See Also
    --------
    group_recall_report : every statistic for one set of predictions.
    worst_group_accuracy : the ``"worst"`` statistic as a function.

    Examples
    --------
    >>> import numpy as np
    >>> import sklearn
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_validate
    >>> from skprune import GroupRecallScorer
    >>> X, y = load_digits(return_X_y=True)
    >>> groups = y * 2 + (X[:, 20] > 8)        # class x an attribute
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scorer = GroupRecallScorer("worst").set_score_request(groups=True)
    ...     result = cross_validate(LogisticRegression(max_iter=500), X / 16, y, cv=3,
    ...                             scoring=scorer, params={"groups": groups})
    >>> bool(0 < result["test_score"].mean() <= 1)
    True
    """

    def __init__(self, statistic="worst"):
        self.statistic = _checked_statistic(statistic, type(self).__name__)
        self._scorer = make_scorer(_group_statistic, statistic=statistic)

    def __call__(self, estimator, X, y_true, **params):
        """Score ``estimator`` on ``(X, y_true)`` with ``groups=``; greater is better."""
        return self._scorer(estimator, X, y_true, **params)

    def set_score_request(self, **requests):
        """Request metadata (``groups=True``) for scoring; returns ``self``."""
        self._scorer.set_score_request(**requests)
        return self

    def get_metadata_routing(self):
        """The scorer's metadata requests (scikit-learn's routing protocol)."""
        return self._scorer.get_metadata_routing()

    def __repr__(self):
        return f"GroupRecallScorer({self.statistic!r})"


#: Scorers for multi-metric search: ``GridSearchCV(..., scoring=CLASS_RECALL_SCORING,
#: refit="worst_class_recall")``.
CLASS_RECALL_SCORING = {
    "accuracy": "accuracy",
    "worst_class_recall": ClassRecallScorer("worst"),
    "mean_class_recall": ClassRecallScorer("mean"),
    "neg_class_recall_gap": ClassRecallScorer("gap"),
    "neg_class_recall_std": ClassRecallScorer("std"),
}
