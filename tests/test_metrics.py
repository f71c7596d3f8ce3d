"""Class-recall statistics and scorers."""

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import balanced_accuracy_score

from skprune import CLASS_RECALL_SCORING, ClassRecallScorer, class_recall_report


def test_report_statistics():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 0, 0])
    report = class_recall_report(y_true, y_pred)
    assert report["class_recall"] == {0: 0.75, 1: 1.0, 2: 0.0}
    assert report["worst"] == 0.0
    assert report["mean"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert report["gap"] == 1.0
    assert report["std"] == pytest.approx(np.std([0.75, 1.0, 0.0]))
    assert report["accuracy"] == pytest.approx(5 / 8)


def test_scorer_signs_and_never_predicted_classes():
    X = np.zeros((6, 1))
    y = np.array([0, 0, 0, 1, 1, 2])
    # Always predicts class 0: classes 1 and 2 are never predicted, recall 0.
    model = DummyClassifier(strategy="most_frequent").fit(X, y)
    assert ClassRecallScorer("worst")(model, X, y) == 0.0
    assert ClassRecallScorer("mean")(model, X, y) == pytest.approx(1 / 3)
    assert ClassRecallScorer("gap")(model, X, y) == -1.0
    assert ClassRecallScorer("std")(model, X, y) == pytest.approx(-np.std([1, 0, 0]))
    assert set(CLASS_RECALL_SCORING) >= {"worst_class_recall", "neg_class_recall_gap"}


def test_unknown_statistic():
    with pytest.raises(ValueError, match="Unknown statistic 'median'"):
        ClassRecallScorer("median")
