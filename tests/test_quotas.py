"""Quotas: fixed weights, MetriQ and StrategyQ, fitted on a pruner's context."""

import numpy as np
import pytest
import torch
from conftest import RowCounter, make_tiny_net, small_imbalanced
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.tree import DecisionTreeClassifier
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

from skprune import EL2NPruner, MetriQ, RandomPruner, ScorePruner, StrategyQ
from skprune.exceptions import StarvedGroupWarning, TrainingDivergedError
from skprune.quotas import (
    QUOTAS,
    GivenWeights,
    equal_rates_pvalue,
    error_weights,
    make_quota,
)

pytestmark = pytest.mark.usefixtures("fresh_cache")




def easy_third_class(seed=1):
    """Three classes of 100: class 2 far away (easy), classes 0 and 1 overlapping."""
    X, y = small_imbalanced(n=(100, 100, 100), seed=seed)
    X[y == 2] += 10
    return X, y


# Fixed weights -------------------------------------------------------------


def test_fixed_quotas_split_the_budget_as_specified():
    X, y = small_imbalanced()
    prop = RandomPruner(density=0.5, quota="proportional", random_state=0).fit(X, y)
    assert prop.class_counts_ == {0: 30, 1: 15, 2: 5}
    balanced = RandomPruner(density=0.3, quota="balanced", random_state=0).fit(X, y)
    assert balanced.class_counts_ == {0: 10, 1: 10, 2: 10}
    # Density weights: class 2 twice as dense as class 1; class 0 keeps one.
    with pytest.warns(StarvedGroupWarning, match=r"cuts \[0\]"):
        given = RandomPruner(density=0.2, quota={0: 0.0, 1: 1.0, 2: 2.0},
                             random_state=0).fit(X, y)
    assert given.class_counts_[0] == 1
    assert given.class_densities_[2] == pytest.approx(2 * given.class_densities_[1], abs=0.1)
    assert isinstance(given.quota_, GivenWeights)
    np.testing.assert_array_equal(given.quota_.weights_, [0.0, 1.0, 2.0])


def test_strings_map_through_one_registry_and_quotas_are_cloned():
    for name, quota_class in QUOTAS.items():
        assert type(make_quota(name)) is quota_class
    quota = MetriQ(LogisticRegression())
    X, y = small_imbalanced()
    pruner = RandomPruner(density=0.5, quota=quota, random_state=0).fit(X, y)
    assert pruner.quota_ is not quota and not hasattr(quota, "weights_")
    assert pruner.class_recall_ == pruner.quota_.class_recall_


def test_a_starved_class_is_named_in_a_warning_and_a_healthy_split_is_silent(recwarn):
    X, y = easy_third_class()
    with pytest.warns(StarvedGroupWarning, match=r"MetriQ cuts \[2\].*1 of 100"):
        RandomPruner(LogisticRegression(), density=0.4,
                     quota=MetriQ(validation=0.3, error_rate="observed", floor=0.0),
                     random_state=0).fit(X, y)
    RandomPruner(density=0.4, quota="proportional", random_state=0).fit(X, y)
    assert not [w for w in recwarn if issubclass(w.category, StarvedGroupWarning)]
    # A class whose even share is one row keeps it: not a cut.
    X_even, y_even = np.zeros((1000, 2)), np.repeat(np.arange(10), 100)
    RandomPruner(density=0.01, quota="proportional", random_state=0).fit(X_even, y_even)
    assert not [w for w in recwarn if issubclass(w.category, StarvedGroupWarning)]


# MetriQ ---------------------------------------------------------------------


def test_paper_formula_starves_a_perfect_class_and_the_default_does_not():
    X, y = easy_third_class()
    with pytest.warns(StarvedGroupWarning):
        paper = RandomPruner(LogisticRegression(), density=0.4,
                             quota=MetriQ(validation=0.3, error_rate="observed", floor=0.0),
                             random_state=0).fit(X, y)
    assert paper.class_recall_[2] == 1.0
    assert paper.class_counts_[2] == 1
    assert paper.class_counts_[0] + paper.class_counts_[1] == 119
    np.testing.assert_allclose(paper.quota_.weights_, 1 - np.array(
        list(paper.class_recall_.values())))

    robust = RandomPruner(LogisticRegression(), density=0.4,
                          quota=MetriQ(validation=0.3, significance=None, floor=0.0),
                          random_state=0).fit(X, y)
    # Same recalls (computed once and cached); the perfect class keeps a
    # real share because 30 validation samples cannot prove it perfect.
    assert robust.class_recall_ == paper.class_recall_
    assert robust.class_densities_[2] > 0.1 * 0.4
    assert robust.class_densities_[0] > robust.class_densities_[2]


def test_a_metriq_subclass_never_reads_the_recalls_of_metriq():
    class ConstantRecall(MetriQ):
        def _measure(self, estimator, validation, context):
            result = super()._measure(estimator, validation, context)
            result["recall"] = np.linspace(0, 1, result["recall"].shape[0])
            return result

    X, y = easy_third_class()
    settings = dict(density=0.4, random_state=0)
    RandomPruner(LogisticRegression(), quota=MetriQ(validation=0.3), **settings).fit(X, y)
    sub = RandomPruner(LogisticRegression(), quota=ConstantRecall(validation=0.3),
                       **settings).fit(X, y)
    assert list(sub.class_recall_.values()) == [0.0, 0.5, 1.0]


def test_error_weights_match_hand_computations():
    recall = np.array([1.0, 0.8, 0.5])
    n = np.array([15, 15, 10])
    np.testing.assert_allclose(error_weights(recall, n, "observed"), [0.0, 0.2, 0.5])
    np.testing.assert_allclose(error_weights(recall, n, "observed", smoothing=1.0),
                               [1 / 17, 4 / 17, 6 / 12])
    # Empirical Bayes by hand: pooled rate, between-class variance beyond
    # the rows' own (pooled within-class) variance, prior strength,
    # posterior means.
    errors = n * (1 - recall)
    share = n / n.sum()
    pooled = errors.sum() / n.sum()
    within = np.sum(n * (errors / n) * (1 - errors / n)) / (n.sum() - 3)
    spread = np.sum(share * (errors / n - pooled) ** 2)
    tau2 = (spread - within * 2 / n.sum()) / (1 - np.sum(share**2))
    strength = within / tau2
    np.testing.assert_allclose(error_weights(recall, n),
                               (errors + strength * pooled) / (n + strength))


def test_shrunk_weights_equalise_noise_and_keep_real_differences():
    # Ten classes, 13 validation samples each, 0 to 2 errors: their spread
    # is below what noise alone gives, so every class gets the pooled rate.
    errors = np.array([0, 2, 1, 1, 0, 2, 1, 0, 1, 2])
    weights = error_weights(1 - errors / 13, np.full(10, 13))
    np.testing.assert_allclose(weights, errors.sum() / 130)
    # The same rates on 5000 samples each are real: the paper's weights.
    big = error_weights(1 - errors / 13, np.full(10, 5000))
    np.testing.assert_allclose(big, errors / 13, atol=2e-3)
    # A class without validation samples gets the pooled rate.
    assert error_weights([0.5, 0.9, 0.0], [100, 100, 0])[2] == pytest.approx(0.3, abs=0.1)


@pytest.mark.parametrize("validation", [0.2, 3, StratifiedKFold(2), "pair"])
def test_validation_modes(validation):
    X, y = small_imbalanced(n=(80, 80, 80), seed=2)
    n_validation = {0.2: 16, 3: 80, "pair": 20}.get(validation, 80)
    if validation == "pair":
        validation = small_imbalanced(n=(20, 20, 20), seed=3)
    pruner = RandomPruner(
        DecisionTreeClassifier(max_depth=2), density=0.5,
        quota=MetriQ(validation=validation, significance=None, floor=0.0), random_state=0,
    ).fit(X, y)
    recalls = np.array(list(pruner.class_recall_.values()))
    assert np.all((0 <= recalls) & (recalls <= 1))
    assert pruner.quota_.n_validation_ == {0: n_validation, 1: n_validation, 2: n_validation}
    np.testing.assert_allclose(
        pruner.quota_.weights_,
        error_weights(recalls, np.full(3, n_validation)),
    )


def test_n_runs_average_recalls_over_inits():
    X, y = small_imbalanced(n=(80, 80, 80), seed=2)
    kwargs = dict(validation=0.3, error_rate="observed", floor=0.0)
    single = [
        RandomPruner(make_tiny_net(max_epochs=2), density=0.5,
                     quota=MetriQ(**kwargs), random_state=0).fit(X.astype(np.float32), y)
    ]
    averaged = RandomPruner(make_tiny_net(max_epochs=2), density=0.5,
                            quota=MetriQ(n_runs=3, **kwargs), random_state=0)
    averaged.fit(X.astype(np.float32), y)
    # The first of the three runs is the single run; the mean differs.
    assert averaged.class_recall_ != single[0].class_recall_
    recalls = np.array(list(averaged.class_recall_.values()))
    # Averages of recalls over 24 validation samples per class, 3 runs.
    np.testing.assert_allclose(recalls * 24 * 3, np.round(recalls * 24 * 3), atol=1e-9)


class ValidationAccuracy(Callback):
    """Records the accuracy of every epoch on a fixed validation set."""

    history = []

    def __init__(self, X_val=None, y_val=None):
        self.X_val, self.y_val = X_val, y_val

    def on_epoch_end(self, net, **kwargs):
        type(self).history.append(np.asarray(net.predict(self.X_val)) == self.y_val)


def test_epoch_best_reads_recall_at_the_best_validation_epoch(digits):
    X, y = digits
    X_val, y_val = X[1500:], y[1500:]
    ValidationAccuracy.history = []
    net = make_tiny_net(max_epochs=6, lr=0.8, callbacks=[
        ("accuracy", ValidationAccuracy(X_val, y_val))])
    pruner = RandomPruner(net, density=0.5, random_state=0,
                          quota=MetriQ(validation=(X_val, y_val), epoch="best",
                                       error_rate="observed", floor=0.0))
    pruner.fit(X[:1500], y[:1500])
    # The pruner's own net trained once (for MetriQ) and the callback saw
    # every epoch: recall comes from the epoch with the most correct rows.
    correct = np.array(ValidationAccuracy.history)
    assert correct.shape == (6, len(y_val))
    best = correct[np.argmax(correct.sum(axis=1))]
    expected = [best[y_val == label].mean() for label in range(10)]
    np.testing.assert_allclose(list(pruner.class_recall_.values()), expected)


def test_epoch_best_needs_a_network():
    X, y = small_imbalanced()
    with pytest.raises(ValueError, match="epoch='best'.*has no epochs"):
        RandomPruner(LogisticRegression(), quota=MetriQ(epoch="best"),
                     random_state=0).fit(X, y)


@pytest.mark.parametrize("validation", [0.2, 3, "pair"])
def test_skorch_clone_trains_on_every_row_it_is_given(digits, validation):
    """MetriQ's network ignores the estimator's own train_split, like the strategies'."""
    X, y = digits
    X_train, y_train = X[:1000], y[:1000]
    expected = {0.2: [800], 3: [667, 667, 666], "pair": [1000]}[validation]
    if validation == "pair":
        validation = (X[1000:1200], y[1000:1200])
    RowCounter.rows = []
    net = make_tiny_net(max_epochs=1, train_split=ValidSplit(5),
                        callbacks=[("rows", RowCounter())])
    RandomPruner(net, density=0.5, quota=MetriQ(validation=validation),
                 random_state=0).fit(X_train, y_train)
    assert sorted(RowCounter.rows, reverse=True) == expected


@pytest.mark.parametrize(
    "net, error, match",
    [
        (make_tiny_net(module__n_classes=5), ValueError,
         "Labels must index the module's 5 outputs"),
        (make_tiny_net(lr=1e12, max_epochs=3), TrainingDivergedError, "diverged"),
        (make_tiny_net(criterion=torch.nn.MSELoss), ValueError, "probabilities or logits"),
    ],
    ids=["too-few-outputs", "diverged", "unknown-criterion"],
)
def test_metriq_gets_the_strategies_errors(digits, net, error, match):
    X, y = digits
    with pytest.raises(error, match=match):
        RandomPruner(net, quota="metriq", random_state=0).fit(X, y)
    with pytest.raises(error, match=match):
        EL2NPruner(net, n_runs=1, random_state=0).fit(X, y)


def test_metriq_with_a_skorch_net_never_fits_the_given_net(digits):
    X, y = digits
    net = make_tiny_net(max_epochs=3)
    pruner = RandomPruner(net, density=0.3, quota="metriq", random_state=0).fit(X, y)
    assert len(pruner.class_recall_) == 10
    assert not hasattr(net, "module_")
    assert sum(pruner.class_counts_.values()) == round(0.3 * len(y))


def test_metriq_hold_out_on_a_torch_dataset(digits):
    X, y = digits
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    pruner = RandomPruner(make_tiny_net(max_epochs=2), density=0.3, quota="metriq",
                          random_state=0)
    subset, _ = pruner.fit_resample(dataset, y)
    assert len(pruner.class_recall_) == 10 and len(subset) == round(0.3 * len(y))


def test_metriq_casts_float64_for_plain_skorch_nets(digits):
    from skorch import NeuralNetClassifier

    X, y = digits
    net = NeuralNetClassifier(torch.nn.Linear, module__in_features=64, module__out_features=10,
                              criterion=torch.nn.CrossEntropyLoss, max_epochs=2, lr=0.5,
                              train_split=None, verbose=0)
    for validation in (0.2, 3):
        pruner = RandomPruner(net, density=0.3, quota=MetriQ(validation=validation),
                              random_state=0).fit(X.astype(np.float64), y)
        assert len(pruner.class_recall_) == 10


def test_a_class_missing_from_explicit_validation_gets_the_pooled_error_rate():
    X, y = small_imbalanced(n=(50, 50, 50))
    X_val, y_val = small_imbalanced(n=(10, 10), seed=4)
    with pytest.warns(UserWarning, match=r"classes \[2\] have no validation samples"):
        pruner = RandomPruner(LogisticRegression(), density=0.5, random_state=0,
                              quota=MetriQ(validation=(X_val, y_val), significance=None)
                              ).fit(X, y)
    recall = np.array([pruner.class_recall_[0], pruner.class_recall_[1]])
    assert pruner.quota_.weights_[2] == pytest.approx(1 - recall.mean())
    assert pruner.quota_.n_validation_[2] == 0


def test_equal_rates_pvalue_is_calibrated_under_equal_rates():
    rng = np.random.RandomState(0)
    n = np.full(8, 20)
    pvalues = np.array([
        equal_rates_pvalue(1 - rng.binomial(n, 0.1) / n, n, seed=draw, n_draws=2000)
        for draw in range(300)
    ])
    # A valid test rejects at about its level when the null holds (the
    # statistic is discrete, so somewhat less, never much more).
    assert 0.01 <= np.mean(pvalues < 0.05) <= 0.08
    assert 0.05 <= np.mean(pvalues < 0.2) <= 0.25


def test_equal_rates_pvalue_detects_real_differences_and_is_reproducible():
    n = np.full(5, 40)
    recall = 1 - np.array([0, 2, 3, 12, 20]) / 40
    assert equal_rates_pvalue(recall, n) < 0.001
    assert equal_rates_pvalue(recall, n, seed=3) == equal_rates_pvalue(recall, n, seed=3)
    # Nothing to compare: no error, every prediction wrong, or one class.
    assert equal_rates_pvalue(np.ones(5), n) == 1.0
    assert equal_rates_pvalue(np.zeros(5), n) == 1.0
    assert equal_rates_pvalue([0.5], [40]) == 1.0
    # Classes without validation samples do not take part.
    assert equal_rates_pvalue(np.r_[recall, 0.0], np.r_[n, 0]) == equal_rates_pvalue(recall, n)


def test_metriq_without_evidence_keeps_every_class_at_the_same_density():
    X, y = small_imbalanced(n=(80, 80, 80), seed=0)
    X = X.astype(np.float32)
    net = make_tiny_net(n_classes=3, max_epochs=3)
    # Five validation rows per class (errors 2, 3 and 0) cannot tell three
    # classes apart, although the method-of-moments spread is above noise.
    with_quota = EL2NPruner(net, density=0.5, epochs=2, random_state=0,
                            quota=MetriQ(validation=0.0625)).fit(X, y)
    quota = with_quota.quota_
    assert quota.n_validation_ == {0: 5, 1: 5, 2: 5}
    assert quota.equal_rates_pvalue_ >= 0.05
    assert np.ptp(quota.weights_) == 0
    proportional = EL2NPruner(net, density=0.5, epochs=2, random_state=0,
                              quota="proportional").fit(X, y)
    np.testing.assert_array_equal(with_quota.sample_indices_, proportional.sample_indices_)
    # significance=None acts on the (shrunk) rates, however weak the evidence.
    acting = EL2NPruner(net, density=0.5, epochs=2, random_state=0,
                        quota=MetriQ(validation=0.0625, significance=None, floor=0.0)).fit(X, y)
    assert acting.quota_.equal_rates_pvalue_ is None
    recalls = np.array(list(acting.class_recall_.values()))
    np.testing.assert_allclose(acting.quota_.weights_, error_weights(recalls, np.full(3, 5)))
    assert np.ptp(acting.quota_.weights_) > 0


def test_metriq_with_evidence_acts_on_the_shrunk_rates():
    X, y = easy_third_class()
    # 9, 9 and 0 errors among 50 validation samples each.
    pruner = RandomPruner(LogisticRegression(), density=0.4,
                          quota=MetriQ(validation=0.5, floor=0.0),
                          random_state=0).fit(X, y)
    quota = pruner.quota_
    assert quota.equal_rates_pvalue_ < 0.05
    recalls = np.array(list(pruner.class_recall_.values()))
    np.testing.assert_allclose(
        quota.weights_, error_weights(recalls, np.array(list(quota.n_validation_.values())))
    )
    # The paper's formula runs no test.
    paper = RandomPruner(LogisticRegression(), density=0.4, random_state=0,
                         quota=MetriQ(validation=0.5, error_rate="observed", floor=0.0))
    with pytest.warns(StarvedGroupWarning):
        paper.fit(X, y)
    assert paper.quota_.equal_rates_pvalue_ is None


def test_metriq_without_evidence_still_protects_a_class_the_strategy_would_cut(recwarn):
    X, y = small_imbalanced(n=(80, 80, 80), seed=2)
    scores = np.where(y == 0, 0.0, 1.0)  # on its own, the strategy keeps no row of class 0
    with pytest.warns(StarvedGroupWarning, match=r"ScorePruner \(quota=None\) cuts \[0\]"):
        alone = ScorePruner(scores, density=0.3, random_state=0).fit(X, y)
    recwarn.clear()
    assert alone.class_counts_[0] == 1  # the guaranteed sample
    pruner = ScorePruner(scores, LogisticRegression(), density=0.3, random_state=0,
                         quota=MetriQ(validation=0.0625)).fit(X, y)
    assert pruner.quota_.equal_rates_pvalue_ >= 0.05
    assert pruner.class_counts_ == {0: 24, 1: 24, 2: 24}
    assert not [w for w in recwarn if issubclass(w.category, StarvedGroupWarning)]


# StrategyQ -------------------------------------------------------------------


def test_random_strategyq_copies_class_ratios():
    X, y = small_imbalanced()
    inner = RandomPruner(quota={0: 1.0, 1: 3.0, 2: 3.0}, random_state=5)
    pruner = RandomPruner(density=0.4, quota=StrategyQ(inner), random_state=0).fit(X, y)
    # The inner pruner runs with quota=None: its class ratios are those of
    # global random pruning at the same density.
    reference = RandomPruner(density=0.4, random_state=5).fit(X, y)
    assert pruner.quota_.strategy_class_counts_ == reference.class_counts_
    assert pruner.class_counts_ == reference.class_counts_


def test_strategyq_is_reproducible_with_a_random_state_instance():
    X, y = small_imbalanced()

    def kept():
        pruner = RandomPruner(density=0.3, quota=StrategyQ(RandomPruner()),
                              random_state=np.random.RandomState(0))
        return pruner.fit(X, y).sample_indices_

    np.testing.assert_array_equal(kept(), kept())
