"""Group-robust pruning: quotas, selection and metrics over groups, and their routing."""

import numpy as np
import pytest
import sklearn
from conftest import small_imbalanced
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate

from skprune import (
    GroupRecallScorer,
    MetriQ,
    RandomPruner,
    StrategyQ,
    make_pipeline,
    worst_group_accuracy,
)
from skprune.exceptions import StarvedGroupWarning
from skprune.metrics import group_recall, group_recall_report

pytestmark = [pytest.mark.filterwarnings("ignore::skprune.exceptions.StarvedGroupWarning"),
              pytest.mark.usefixtures("fresh_cache")]




def grouped(seed=0):
    """Three classes of 100; an attribute splits each class 80/20 (a minority group)."""
    X, y = small_imbalanced(n=(100, 100, 100), seed=seed)
    attribute = np.tile(np.r_[np.zeros(80, int), np.ones(20, int)], 3)
    X[:, 3] += 3 * attribute
    order = np.random.RandomState(seed).permutation(len(y))
    return X[order], y[order], (y * 2 + attribute)[order]


@pytest.mark.parametrize("quota", [
    "proportional", "balanced", "subg",
    {g: w for g, w in zip(range(6), (1, 2, 1, 2, 1, 3), strict=True)},
    MetriQ(LogisticRegression(max_iter=300)),
    StrategyQ(RandomPruner(quota="balanced", random_state=1)),
], ids=["proportional", "balanced", "subg", "dict", "metriq", "strategyq"])
@pytest.mark.parametrize("density", [0.05, 0.3, 0.8])
def test_group_counts_add_up_and_every_group_keeps_one(quota, density):
    X, y, groups = grouped()
    pruner = RandomPruner(density=density, quota=quota, random_state=0)
    X_kept, y_kept = pruner.fit_resample(X, y, groups=groups)
    counts = pruner.group_counts_
    assert sum(counts.values()) == round(density * 300) == len(y_kept)
    assert set(counts) == set(range(6)) and min(counts.values()) >= 1
    assert sum(pruner.class_counts_.values()) == len(y_kept)
    assert pruner.quota_.group_labels_.tolist() == list(range(6))


def test_group_densities_follow_the_weights():
    X, y, groups = grouped()
    weights = {0: 1.0, 1: 2.0, 2: 1.0, 3: 2.0, 4: 1.0, 5: 2.0}
    pruner = RandomPruner(density=0.3, quota=weights, random_state=0).fit(X, y, groups=groups)
    densities = pruner.group_densities_
    for small, large in ((0, 1), (2, 3), (4, 5)):
        assert densities[large] == pytest.approx(2 * densities[small], abs=0.05)
    assert pruner.group_weights_ == weights
    with pytest.raises(ValueError, match=r"no weight for \[1, 3, 5\]"):
        RandomPruner(quota={0: 1, 2: 1, 4: 1}, random_state=0).fit(X, y, groups=groups)


def test_selection_applies_within_every_group():
    X, y, groups = grouped()
    pruner = RandomPruner(density=0.4, quota="proportional", selection="easiest",
                          random_state=0).fit(X, y, groups=groups)
    kept = np.zeros(len(y), bool)
    kept[pruner.sample_indices_] = True
    for group in range(6):
        rows = groups == group
        assert pruner.scores_[rows & kept].max() < pruner.scores_[rows & ~kept].min()


def test_subg_subsamples_every_group_to_the_smallest_at_random():
    X, y, groups = grouped()  # six groups: 80, 20, 80, 20, 80, 20 rows
    # At SUBG's own density (6 * 20 / 300) every group keeps all of the smallest's 20.
    pruner = RandomPruner(density=0.4, quota="subg", random_state=0)
    pruner.fit_resample(X, y, groups=groups)
    assert pruner.quota_.subg_size_ == 20 and pruner.quota_.subg_density_ == 0.4
    assert pruner.quota_.balanced_ and set(pruner.group_counts_.values()) == {20}
    # Below it, equal counts on a smaller budget, drawn at random within groups.
    for seed in (0, 1):
        pruner.set_params(density=0.2, random_state=seed).fit_resample(X, y, groups=groups)
        assert set(pruner.group_counts_.values()) == {10}
    other = RandomPruner(density=0.2, quota="subg", random_state=2).fit(X, y, groups=groups)
    assert not np.array_equal(other.sample_indices_, pruner.sample_indices_)
    # Above it no balanced subset exists: the small groups are kept whole and
    # the large ones share the rest equally (quota="balanced"'s counts).
    pruner.set_params(density=0.7).fit_resample(X, y, groups=groups)
    assert not pruner.quota_.balanced_
    assert pruner.group_counts_ == {0: 50, 1: 20, 2: 50, 3: 20, 4: 50, 5: 20}
    balanced = RandomPruner(density=0.7, quota="balanced", random_state=0)
    assert balanced.fit(X, y, groups=groups).group_counts_ == pruner.group_counts_
    # Without groups, the classes are subsampled (Idrissi et al.'s SUBY).
    _, y_small = small_imbalanced(n=(60, 30, 10))
    plain = RandomPruner(density=0.3, quota="subg", random_state=0)
    plain.fit(np.zeros((100, 1)), y_small)
    assert plain.class_counts_ == {0: 10, 1: 10, 2: 10} and plain.quota_.balanced_


def test_metriq_measures_the_accuracy_of_every_group():
    X, y, groups = grouped()
    X_val, y_val, groups_val = grouped(seed=5)
    model = LogisticRegression(max_iter=300).fit(X, y)
    correct = model.predict(X_val) == y_val
    expected = {g: correct[groups_val == g].mean() for g in range(6)}
    pruner = RandomPruner(density=0.3, random_state=0, quota=MetriQ(
        LogisticRegression(max_iter=300), validation=(X_val, y_val, groups_val),
        error_rate="observed", floor=0.0)).fit(X, y, groups=groups)
    assert pruner.group_recall_ == pytest.approx(expected)
    assert not hasattr(pruner, "class_recall_")
    np.testing.assert_allclose(pruner.quota_.weights_, 1 - np.array(list(expected.values())))
    with pytest.raises(ValueError, match=r"triple \(X_val, y_val, groups_val\)"):
        RandomPruner(LogisticRegression(), quota=MetriQ(validation=(X_val, y_val)),
                     random_state=0).fit(X, y, groups=groups)


@pytest.mark.parametrize("validation", [0.3, 3])
def test_metriq_holds_out_every_group(validation):
    X, y, groups = grouped()
    pruner = RandomPruner(LogisticRegression(max_iter=300), density=0.3, random_state=0,
                          quota=MetriQ(validation=validation)).fit(X, y, groups=groups)
    assert set(pruner.quota_.n_validation_) == set(range(6))
    assert min(pruner.quota_.n_validation_.values()) >= 1


def test_without_groups_nothing_changes():
    X, y, groups = grouped()
    plain = RandomPruner(density=0.3, quota="proportional", random_state=0).fit(X, y)
    by_class = RandomPruner(density=0.3, quota="proportional", random_state=0).fit(X, y,
                                                                                  groups=y)
    np.testing.assert_array_equal(plain.sample_indices_, by_class.sample_indices_)
    assert not hasattr(plain, "group_counts_") and plain.class_weights_ == {0: 1, 1: 1, 2: 1}


def test_bad_groups_are_named():
    X, y, groups = grouped()
    with pytest.raises(ValueError, match="groups has 299 entries for 300 samples"):
        RandomPruner(random_state=0).fit(X, y, groups=groups[:-1])
    with pytest.raises(ValueError, match="fewer than the 6 groups"):
        RandomPruner(density=0.01, random_state=0).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="NaN"):
        RandomPruner(random_state=0).fit(X, y, groups=np.where(groups == 1, np.nan, groups))


def test_a_starved_group_is_named():
    X, y, groups = grouped()
    weights = {0: 1.0, 1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}
    with pytest.warns(StarvedGroupWarning, match=r"cuts \[1\]"):
        RandomPruner(density=0.3, quota=weights, random_state=0).fit(X, y, groups=groups)


def test_a_class_that_loses_every_row_across_groups_is_named():
    # Groups that cut across the classes: each keeps a row, but the two rows
    # of class 1 lose to class 0's 100.
    X = np.random.RandomState(0).normal(size=(102, 3))
    y = np.array([0] * 100 + [1] * 2)
    groups = np.arange(102) % 2
    with pytest.warns(StarvedGroupWarning, match=r"keeps no row of classes \[1\]"):
        pruner = RandomPruner(density=0.03, random_state=0).fit(X, y, groups=groups)
    assert pruner.class_counts_[1] == 0


# Metrics ---------------------------------------------------------------------------


def test_group_metrics_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 1])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    groups = np.array(["a", "a", "b", "c", "c", "b"])
    assert group_recall(y_true, y_pred, groups) == {"a": 1.0, "b": 0.0, "c": 1.0}
    report = group_recall_report(y_true, y_pred, groups)
    assert report["worst"] == 0.0 and report["gap"] == 1.0
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert worst_group_accuracy(y_true, y_pred, groups) == 0.0


# Routing ---------------------------------------------------------------------------


def pipeline():
    return make_pipeline(
        RandomPruner(LogisticRegression(max_iter=300), density=0.3,
                     quota=MetriQ(validation=0.3), random_state=0),
        LogisticRegression(max_iter=300),
    )


def test_groups_reach_the_pruner_through_metadata_routing():
    X, y, groups = grouped()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = pipeline()
        pipe[0].set_fit_resample_request(groups=True)
        pipe.fit(X, y, groups=groups)
        assert set(pipe[0].group_counts_) == set(range(6))
        # Prediction never prunes and needs no groups.
        assert pipe.predict(X).shape == y.shape


def test_groups_reach_the_pruner_without_routing_as_step_parameters():
    X, y, groups = grouped()
    pipe = pipeline().fit(X, y, randompruner__groups=groups)
    assert set(pipe[0].group_counts_) == set(range(6))


def test_grid_search_routes_groups_to_splitter_pruner_and_scorer():
    X, y, groups = grouped()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = pipeline()
        pipe[0].set_fit_resample_request(groups=True)
        scorer = GroupRecallScorer("worst").set_score_request(groups=True)
        search = GridSearchCV(pipe, {"randompruner__density": [0.3, 0.6]}, cv=3,
                              scoring=scorer).fit(X, y, groups=groups)
        assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
        assert set(search.best_estimator_[0].group_counts_) == set(range(6))
        result = cross_validate(pipe, X, y, cv=3, scoring=scorer,
                                params={"groups": groups}, return_estimator=True)
        assert all(set(model[0].group_counts_) == set(range(6))
                   for model in result["estimator"])
        assert np.all((0 <= result["test_score"]) & (result["test_score"] <= 1))


def test_group_scorer_without_groups_gives_the_recipe():
    X, y, _ = grouped()
    model = LogisticRegression(max_iter=300).fit(X, y)
    with pytest.raises(ValueError, match="enable_metadata_routing"):
        GroupRecallScorer()(model, X, y)
