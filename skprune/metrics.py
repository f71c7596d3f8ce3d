"""Class-wise fairness metrics: recall statistics and scikit-learn scorers."""

import numpy as np
from sklearn.metrics import accuracy_score, recall_score

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
    return dict(zip(labels.tolist(), np.asarray(recall, dtype=float).tolist()))


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
    recall = np.fromiter(per_class.values(), dtype=float)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "worst": float(recall.min()),
        "mean": float(recall.mean()),
        "gap": float(recall.max() - recall.min()),
        "std": float(recall.std()),
        "class_recall": per_class,
    }


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
        if statistic not in STATISTICS:
            raise ValueError(
                f"Unknown statistic {statistic!r} for ClassRecallScorer; use one of "
                f"{list(STATISTICS)}."
            )
        self.statistic = statistic

    def __call__(self, estimator, X, y_true, sample_weight=None):
        """Score ``estimator`` on ``(X, y_true)``; greater is better."""
        y_pred = estimator.predict(X)
        value = class_recall_report(y_true, y_pred)[self.statistic]
        return value if STATISTICS[self.statistic] else -value

    def __repr__(self):
        return f"ClassRecallScorer({self.statistic!r})"


#: Scorers for multi-metric search: ``GridSearchCV(..., scoring=CLASS_RECALL_SCORING,
#: refit="worst_class_recall")``.
CLASS_RECALL_SCORING = {
    "accuracy": "accuracy",
    "worst_class_recall": ClassRecallScorer("worst"),
    "mean_class_recall": ClassRecallScorer("mean"),
    "neg_class_recall_gap": ClassRecallScorer("gap"),
    "neg_class_recall_std": ClassRecallScorer("std"),
}
