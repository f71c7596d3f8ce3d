"""DataPruner's guarantees, quotas and pipeline use, shown with RandomPruner."""

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_net
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.tree import DecisionTreeClassifier

from skprune import (
    CLASS_RECALL_SCORING,
    ClassRecallScorer,
    MetriQ,
    RandomPruner,
    StrategyQ,
    make_pipeline,
)


def small_imbalanced(n=(60, 30, 10), n_features=4, seed=0):
    rng = np.random.RandomState(seed)
    y = np.repeat(np.arange(len(n)), n)
    X = rng.normal(size=(y.size, n_features)) + y[:, None]
    return X, y


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


def test_quotas_split_the_budget_as_specified():
    X, y = small_imbalanced()
    prop = RandomPruner(density=0.5, quota="proportional", random_state=0).fit(X, y)
    assert prop.class_counts_ == {0: 30, 1: 15, 2: 5}
    balanced = RandomPruner(density=0.3, quota="balanced", random_state=0).fit(X, y)
    assert balanced.class_counts_ == {0: 10, 1: 10, 2: 10}
    # Density weights: class 2 twice as dense as class 1; class 0 keeps one.
    given = RandomPruner(density=0.2, quota={0: 0.0, 1: 1.0, 2: 2.0}, random_state=0).fit(X, y)
    assert given.class_counts_[0] == 1
    assert given.class_densities_[2] == pytest.approx(2 * given.class_densities_[1], abs=0.1)


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


def test_metriq_recall_drives_counts():
    X, y = small_imbalanced(n=(100, 100, 100), seed=1)
    # Class 2 is shifted far away (easy); classes 0 and 1 overlap (hard).
    X[y == 2] += 10
    pruner = RandomPruner(
        LogisticRegression(), density=0.4, quota=MetriQ(validation=0.3), random_state=0
    ).fit(X, y)
    assert set(pruner.class_recall_) == {0, 1, 2}
    assert pruner.class_recall_[2] == 1.0
    assert pruner.class_counts_[2] == 1
    assert pruner.class_counts_[0] + pruner.class_counts_[1] == 119


@pytest.mark.parametrize("validation", [0.2, 3, StratifiedKFold(2), "pair"])
def test_metriq_validation_modes(validation):
    X, y = small_imbalanced(n=(80, 80, 80), seed=2)
    if validation == "pair":
        validation = small_imbalanced(n=(20, 20, 20), seed=3)
    pruner = RandomPruner(
        DecisionTreeClassifier(max_depth=2), density=0.5,
        quota=MetriQ(validation=validation), random_state=0,
    ).fit(X, y)
    recalls = np.array(list(pruner.class_recall_.values()))
    assert np.all((0 <= recalls) & (recalls <= 1))
    weights = np.array(list(pruner.class_weights_.values()))
    np.testing.assert_allclose(weights, 1 - recalls)


def test_metriq_with_skorch_net_never_fits_the_given_net(digits):
    X, y = digits
    net = make_tiny_net(max_epochs=3)
    pruner = RandomPruner(net, density=0.3, quota="metriq", random_state=0).fit(X, y)
    assert len(pruner.class_recall_) == 10
    assert not hasattr(net, "module_")
    assert sum(pruner.class_counts_.values()) == round(0.3 * len(y))


def test_random_strategyq_copies_class_ratios():
    X, y = small_imbalanced()
    inner = RandomPruner(quota={0: 1.0, 1: 3.0, 2: 3.0}, random_state=5)
    pruner = RandomPruner(density=0.4, quota=StrategyQ(inner), random_state=0).fit(X, y)
    # The inner pruner runs with quota=None: its class ratios are those of
    # global random pruning at the same density.
    reference = RandomPruner(density=0.4, random_state=5).fit(X, y)
    assert pruner.strategy_class_counts_ == reference.class_counts_
    assert pruner.class_counts_ == reference.class_counts_


def test_pipeline_with_logistic_regression_and_skorch(digits):
    X, y = digits
    pipe = make_pipeline(RandomPruner(density=0.3, random_state=0), LogisticRegression(max_iter=300))
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
    assert search.cv_results_["mean_test_score"].shape == (8,)
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
        (dict(quota={0: 1.0, 1: 1.0, 2: 1.0, 7: 1.0}), r"classes \[7\] that are not in y"),
        (dict(quota={0: 1.0, 1: -1.0, 2: 1.0}), "non-negative"),
        (dict(quota={0: 1.0, 1: 1.0}), r"no weight for classes \[2\]"),
        (dict(density=0.02), "fewer than the 3 classes"),
        (dict(quota="metriq"), "needs a classifier"),
        (dict(estimator=object(), quota="metriq"), "'estimator' parameter"),
        (dict(quota=MetriQ(estimator=object())), "'estimator' parameter"),
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


def test_metriq_smoothing_keeps_perfect_classes_alive():
    X, y = small_imbalanced(n=(100, 100, 100), seed=1)
    X[y == 2] += 10
    plain = RandomPruner(LogisticRegression(), density=0.4, quota=MetriQ(validation=0.3),
                         random_state=0).fit(X, y)
    smoothed = RandomPruner(LogisticRegression(), density=0.4,
                            quota=MetriQ(validation=0.3, smoothing=1.0), random_state=0).fit(X, y)
    # Same recalls (computed once), different weights: class 2 (recall 1 on
    # 30 validation samples) gets weight (0 + 1) / (30 + 2) instead of 0.
    assert smoothed.class_recall_ == plain.class_recall_
    assert smoothed.class_weights_[2] == pytest.approx(1 / 32)
    assert smoothed.class_counts_[2] > plain.class_counts_[2] == 1


def test_metriq_hold_out_on_a_torch_dataset(digits):
    import torch

    X, y = digits
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    pruner = RandomPruner(make_tiny_net(max_epochs=2), density=0.3, quota="metriq",
                          random_state=0)
    subset, _ = pruner.fit_resample(dataset, y)
    assert len(pruner.class_recall_) == 10 and len(subset) == round(0.3 * len(y))


def test_metriq_casts_float64_for_plain_skorch_nets(digits):
    import torch
    from skorch import NeuralNetClassifier

    X, y = digits
    net = NeuralNetClassifier(torch.nn.Linear, module__in_features=64, module__out_features=10,
                              criterion=torch.nn.CrossEntropyLoss, max_epochs=2, lr=0.5,
                              train_split=None, verbose=0)
    for validation in (0.2, 3):
        pruner = RandomPruner(net, density=0.3, quota=MetriQ(validation=validation),
                              random_state=0).fit(X.astype(np.float64), y)
        assert len(pruner.class_recall_) == 10


def test_strategyq_is_reproducible_with_a_random_state_instance():
    X, y = small_imbalanced()

    def kept():
        pruner = RandomPruner(density=0.3, quota=StrategyQ(RandomPruner()),
                              random_state=np.random.RandomState(0))
        return pruner.fit(X, y).sample_indices_

    np.testing.assert_array_equal(kept(), kept())


def test_density_hint_is_a_density_that_works():
    X, y = small_imbalanced(n=(4, 3, 3))
    with pytest.raises(ValueError, match="at least 0.3") as error:
        RandomPruner(density=0.2).fit(X, y)
    assert "at least 0.3" in str(error.value)
    assert len(RandomPruner(density=0.3).fit_resample(X, y)[1]) == 3
