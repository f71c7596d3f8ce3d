"""DataPruner's guarantees, quotas and pipeline use, shown with RandomPruner."""

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_net, small_imbalanced
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from skprune import (
    CLASS_RECALL_SCORING,
    ClassRecallScorer,
    MetriQ,
    RandomPruner,
    make_pipeline,
)


@pytest.mark.parametrize("density", [0.05, 0.3, 0.5, 0.77, 1.0])
@pytest.mark.parametrize("quota", [None, "proportional", "balanced", {0: 1.0, 1: 2.0, 2: 0.0}])
def test_keeps_exact_count_every_class_in_order(density, quota):
    X, y = small_imbalanced()
    pruner = RandomPruner(density=density, quota=quota, random_state=0)
    X_kept, y_kept = pruner.fit_resample(X, y)
    n_keep = round(density * y.size)
    assert X_kept.shape == (n_keep, X.shape[1]) and y_kept.shape == (n_keep,)
    assert set(np.unique(y_kept)) == {0, 1, 2}
    assert np.all(np.diff(pruner.sample_indices_) > 0)
    np.testing.assert_array_equal(X_kept, X[pruner.sample_indices_])
    assert pruner.scores_.shape == (y.size,)
    assert sum(pruner.class_counts_.values()) == n_keep
    assert pruner.sampling_strategy_ == pruner.class_counts_
    assert pruner.class_densities_[2] == pruner.class_counts_[2] / 10


def test_same_random_state_same_rows_different_state_different_rows():
    X, y = small_imbalanced()
    first = RandomPruner(density=0.4, random_state=3).fit(X, y).sample_indices_
    again = RandomPruner(density=0.4, random_state=3).fit(X, y).sample_indices_
    other = RandomPruner(density=0.4, random_state=4).fit(X, y).sample_indices_
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_within_class_selection_keeps_highest_scores():
    X, y = small_imbalanced()
    pruner = RandomPruner(density=0.3, quota="proportional", random_state=0).fit(X, y)
    for label in range(3):
        in_class = np.flatnonzero(y == label)
        kept = np.intersect1d(in_class, pruner.sample_indices_)
        dropped = np.setdiff1d(in_class, kept)
        assert pruner.scores_[kept].min() > pruner.scores_[dropped].max()


def test_input_types_round_trip():
    X, y = small_imbalanced()
    pruner = RandomPruner(density=0.5, random_state=0)
    X_list, y_list = pruner.fit_resample(X.tolist(), y.tolist())
    assert isinstance(X_list, list) and isinstance(y_list, list) and len(X_list) == 50
    frame = pd.DataFrame(X, columns=list("abcd"), index=np.arange(100, 200))
    series = pd.Series(y, index=frame.index, name="label")
    X_df, y_s = pruner.fit_resample(frame, series)
    assert isinstance(X_df, pd.DataFrame) and list(X_df.columns) == list("abcd")
    np.testing.assert_array_equal(X_df.index, 100 + pruner.sample_indices_)
    np.testing.assert_array_equal(y_s.index, X_df.index)
    images = np.random.RandomState(0).randint(0, 255, size=(100, 3, 8, 8), dtype=np.uint8)
    X_img, _ = pruner.fit_resample(images, y)
    assert X_img.shape == (50, 3, 8, 8) and X_img.dtype == np.uint8
    labels = np.array(["cat", "dog", "eel"])[y]
    _, y_str = pruner.fit_resample(X, labels)
    assert set(y_str) == {"cat", "dog", "eel"}


def test_pipeline_with_logistic_regression_and_skorch(digits):
    X, y = digits
    pipe = make_pipeline(RandomPruner(density=0.3, random_state=0),
                         LogisticRegression(max_iter=300))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.9
    assert pipe.named_steps["randompruner"].sample_indices_.size == round(0.3 * len(y))
    net_pipe = make_pipeline(RandomPruner(density=0.5, random_state=0), make_tiny_net(max_epochs=8))
    net_pipe.fit(X, y)
    # Prediction is never pruned: one prediction per input row.
    assert net_pipe.predict(X).shape == y.shape
    assert net_pipe.score(X, y) > 0.8


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_density_and_quota(digits, n_jobs):
    X, y = digits
    pipe = make_pipeline(
        RandomPruner(LogisticRegression(max_iter=200), random_state=0),
        LogisticRegression(max_iter=200),
    )
    grid = {
        "randompruner__density": [0.1, 0.3],
        "randompruner__quota": [None, "proportional", "balanced", "metriq"],
    }
    search = GridSearchCV(pipe, grid, scoring=ClassRecallScorer("worst"), cv=2, n_jobs=n_jobs)
    search.fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_params_["randompruner__density"] == 0.3

    multi = GridSearchCV(pipe, grid, scoring=CLASS_RECALL_SCORING, refit="worst_class_recall",
                         cv=2, n_jobs=n_jobs).fit(X, y)
    for name in CLASS_RECALL_SCORING:
        assert f"mean_test_{name}" in multi.cv_results_
    assert np.all(multi.cv_results_["mean_test_neg_class_recall_gap"] <= 0)
    assert multi.best_index_ == np.argmax(multi.cv_results_["mean_test_worst_class_recall"])


def test_fitted_pipeline_survives_pickle(digits):
    X, y = digits
    pipe = make_pipeline(RandomPruner(make_tiny_net(max_epochs=2), density=0.5, quota="metriq",
                                      random_state=0), make_tiny_net(max_epochs=2))
    pipe.fit(X, y)
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(restored[0].sample_indices_, pipe[0].sample_indices_)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(density=0), "'density' parameter"),
        (dict(density=1.5), "'density' parameter"),
        (dict(density=float("nan")), "'density' parameter"),
        (dict(density="half"), "'density' parameter"),
        (dict(quota="fair"), "'quota' parameter"),
        (dict(quota={0: 1.0, 1: 1.0, 2: 1.0, 7: 1.0}), r"weights for \[7\], which are not in"),
        (dict(quota={0: 1.0, 1: -1.0, 2: 1.0}), "non-negative"),
        (dict(quota={0: 1.0, 1: 1.0}), r"no weight for \[2\]"),
        (dict(density=0.02), "fewer than the 3 classes"),
        (dict(quota="metriq"), "needs a classifier"),
        (dict(estimator=object(), quota="metriq"), "'estimator' parameter"),
        (dict(quota=MetriQ(estimator=object())), "'estimator' parameter"),
        (dict(n_jobs=0), "'n_jobs' parameter"),
    ],
)
def test_bad_parameters_name_the_parameter(params, match):
    X, y = small_imbalanced()
    with pytest.raises((ValueError, TypeError), match=match):
        RandomPruner(**{"random_state": 0, **params}).fit_resample(X, y)


def test_bad_targets_and_shapes():
    X, y = small_imbalanced()
    with pytest.raises(ValueError, match="Unknown label type 'continuous'"):
        RandomPruner().fit_resample(X, y + 0.5)
    with pytest.raises(ValueError, match="single class"):
        RandomPruner().fit_resample(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="X has 100 samples and y has 99 labels"):
        RandomPruner().fit_resample(X, y[:-1])


def test_never_mutates_parameters():
    X, y = small_imbalanced()
    quota = MetriQ(LogisticRegression(), validation=0.3)
    pruner = RandomPruner(density=0.5, quota=quota, random_state=0)
    before = clone(pruner).get_params()
    pruner.fit(X, y)
    assert not hasattr(quota.estimator, "coef_")
    assert set(pruner.get_params()) == set(before)


def test_density_hint_is_a_density_that_works():
    X, y = small_imbalanced(n=(4, 3, 3))
    with pytest.raises(ValueError, match="at least 0.251") as error:
        RandomPruner(density=0.2).fit(X, y)
    hint = float(str(error.value).rsplit("at least ", 1)[1].rstrip("."))
    assert len(RandomPruner(density=hint).fit_resample(X, y)[1]) == 3
