"""MetriQ from a user's own validation predictions, and pruning from y alone."""

import numpy as np
import pytest
from conftest import make_tiny_net, small_imbalanced
from sklearn.linear_model import LogisticRegression

from skprune import EL2NPruner, MetriQ, RandomPruner, ScorePruner
from skprune.quotas import ValidationPredictions


def validation_split(seed=0):
    X, y = small_imbalanced(n=(120, 120, 120), seed=seed)
    X_val, y_val = small_imbalanced(n=(150, 150, 150), seed=seed + 1)
    return X, y, X_val, y_val


@pytest.mark.parametrize("error_rate", ["shrunk", "observed"])
def test_predictions_give_the_trained_paths_statistics(error_rate):
    X, y, X_val, y_val = validation_split()
    model = LogisticRegression(max_iter=500)
    trained = RandomPruner(model, density=0.3, random_state=0,
                           quota=MetriQ(validation=(X_val, y_val), error_rate=error_rate))
    trained.fit(X, y)
    y_pred = model.fit(X, y).predict(X_val)
    given = RandomPruner(density=0.3, random_state=0,
                         quota=MetriQ.from_predictions(y_val, y_pred, error_rate=error_rate))
    given.fit(X, y)
    np.testing.assert_allclose(given.quota_.weights_, trained.quota_.weights_)
    assert given.class_recall_ == trained.class_recall_
    assert given.quota_.n_validation_ == trained.quota_.n_validation_
    assert given.quota_.equal_rates_pvalue_ == trained.quota_.equal_rates_pvalue_
    np.testing.assert_array_equal(given.sample_indices_, trained.sample_indices_)


def test_several_runs_average_their_recalls():
    y_val = np.repeat([0, 1], 4)
    y_pred = np.array([[0, 0, 0, 0, 1, 1, 1, 1],   # run 1: all right
                       [0, 0, 1, 1, 1, 1, 1, 1]])  # run 2: class 0 half wrong
    recall, counts = ValidationPredictions(y_val, y_pred).recall([0, 1])
    np.testing.assert_allclose(recall, [0.75, 1.0])
    np.testing.assert_array_equal(counts, [4, 4])


def test_score_pruner_prunes_from_labels_alone():
    y = np.repeat(["a", "b", "c"], [50, 30, 20])
    scores = np.arange(100.0)
    pruner = ScorePruner(scores, density=0.2, quota="proportional", random_state=0)
    X_kept, y_kept = pruner.fit_resample(None, y)
    assert X_kept is None
    assert pruner.class_counts_ == {"a": 10, "b": 6, "c": 4}
    np.testing.assert_array_equal(y_kept, y[pruner.sample_indices_])
    # Hardest first within each class: the highest scores of every class.
    assert pruner.sample_indices_[:10].tolist() == list(range(40, 50))


def test_pruners_that_read_the_samples_refuse_x_none():
    y = np.repeat([0, 1], 20)
    with pytest.raises(ValueError, match="X cannot be None"):
        EL2NPruner(make_tiny_net(n_classes=2), density=0.5).fit_resample(None, y)
    with pytest.raises(ValueError, match=r"MetriQ.from_predictions\(y_val, y_pred\)"):
        ScorePruner(np.ones(40), LogisticRegression(), quota="metriq").fit(None, y)


def test_bad_predictions_are_named():
    y = np.repeat([0, 1], 20)
    with pytest.raises(ValueError, match=r"y_pred must have shape \(4,\)"):
        ScorePruner(np.ones(40), quota=MetriQ.from_predictions([0, 0, 1, 1], [0, 1])).fit(
            None, y)
    with pytest.raises(ValueError, match="leave n_runs=1"):
        ScorePruner(np.ones(40), quota=MetriQ.from_predictions([0, 1], [0, 1], n_runs=3)).fit(
            None, y)
    with pytest.raises(ValueError, match="groups=groups_val"):
        ScorePruner(np.ones(40), quota=MetriQ.from_predictions([0, 1], [0, 1])).fit(
            None, y, groups=np.tile([0, 1], 20))


def test_predictions_quota_is_cloned_and_searchable():
    quota = MetriQ.from_predictions([0, 0, 1, 1], [0, 1, 1, 1])
    pruner = ScorePruner(np.arange(40.0), density=0.5, quota=quota)
    assert "ValidationPredictions(<4 validation predictions>)" in repr(pruner)
    pruner.fit(None, np.repeat([0, 1], 20))
    assert pruner.quota_ is not quota
    assert pruner.class_recall_ == {0: 0.5, 1: 1.0}


def test_a_one_row_group_under_the_default_validation():
    X, y = small_imbalanced(n=(120, 120, 120), seed=0)
    groups = y.copy()
    groups[7] = 9  # a subpopulation of one row
    pruner = RandomPruner(LogisticRegression(max_iter=500), density=0.5, quota="metriq",
                          random_state=0)
    with pytest.warns(UserWarning, match=r"groups \[9\] have no validation samples"):
        pruner.fit(X, y, groups=groups)
    assert pruner.quota_.n_validation_[9] == 0
    assert pruner.group_counts_[9] == 1
    assert sum(pruner.quota_.n_validation_.values()) == 36


def test_every_group_of_one_row_names_the_fix():
    X, y = small_imbalanced(n=(5, 5), seed=0)
    with pytest.raises(ValueError, match="every one of the 10 groups has a single row"):
        RandomPruner(LogisticRegression(), density=1.0, quota="metriq").fit(
            X, y, groups=np.arange(10))


def test_a_strategy_without_quota_that_starves_a_class_warns_at_the_users_call():
    import warnings

    from sklearn.datasets import load_digits

    from skprune import make_pipeline
    from skprune.exceptions import StarvedGroupWarning

    X, y = load_digits(return_X_y=True)
    # Hardest first, with classes 0 and 1 easy: on its own the strategy keeps
    # their guaranteed row only.
    scores = np.where(np.isin(y, [0, 1]), 0.0, 1.0) + np.random.RandomState(0).uniform(
        size=y.size) * 0.1
    pipe = make_pipeline(ScorePruner(scores, density=0.1, random_state=0),
                         LogisticRegression(max_iter=200))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe.fit(X / 16, y)
    starved = [w for w in caught if issubclass(w.category, StarvedGroupWarning)]
    assert len(starved) == 1
    warning = starved[0]
    assert warning.filename == __file__  # the user's line, not the library's
    assert "ScorePruner (quota=None) cuts [0, 1]" in str(warning.message)
    assert "quota='metriq'" in str(warning.message)
    assert warning.message.groups == [0, 1]
    named = warning.message.described({0: "zero", 1: "one"})
    assert "cuts ['zero', 'one']" in str(named) and "zero: 1 of 178" in str(named)


def test_starvation_advice_never_names_the_setting_in_use():
    X, y = small_imbalanced(n=(100, 100, 100), seed=1)
    X[y == 2] += 10  # class 2 is never misclassified
    from skprune.exceptions import StarvedGroupWarning

    with pytest.warns(StarvedGroupWarning) as record:
        RandomPruner(LogisticRegression(), density=0.4, random_state=0,
                     quota=MetriQ(validation=0.5, error_rate="observed", floor=0.0)).fit(X, y)
    message = str(record[0].message)
    assert "floor=0.5" in message and "error_rate='shrunk'" in message
    # Shrunk rates starve it too once 500 validation rows a class prove it perfect.
    X, y = small_imbalanced(n=(1000, 1000, 1000), seed=1)
    X[y == 2] += 10
    with pytest.warns(StarvedGroupWarning) as record:
        RandomPruner(LogisticRegression(), density=0.4, random_state=0,
                     quota=MetriQ(validation=0.5, floor=0.0)).fit(X, y)
    message = str(record[0].message)
    assert "floor=0.5" in message and "error_rate='shrunk'" not in message
