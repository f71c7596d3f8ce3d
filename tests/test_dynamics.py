"""Training-dynamics pruners: ForgettingPruner and DynamicUncertaintyPruner."""

import numpy as np
import pytest
import torch
from conftest import TinyMLP, make_tiny_net
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.utils._param_validation import InvalidParameterError
from skorch import NeuralNetClassifier
from skorch.dataset import ValidSplit

from skprune import RandomPruner, StrategyQ, make_pipeline
from skprune._query_training import record_query_training
from skprune.callbacks import PositionBatchSampler, TrainingDynamicsRecorder
from skprune.exceptions import TrainingDivergedError
from skprune.scores import dynamic_uncertainty, forgetting_events
from skprune.strategies._dynamic_uncertainty import DynamicUncertaintyPruner
from skprune.strategies._forgetting import ForgettingPruner

# --------------------------------------------------------------------------
# Formulas on hand-made records
# --------------------------------------------------------------------------


def test_forgetting_counts_one_to_zero_transitions():
    correct = np.array([[0, 1, 1, 0, 1, 0]]).T
    assert forgetting_events(correct).tolist() == [2.0]


def test_never_correct_scores_its_presentations():
    correct = np.zeros((7, 3), dtype=bool)
    correct[:, 1] = True  # learnt from the start, never forgotten
    correct[3, 2] = True  # learnt once, forgotten once
    assert forgetting_events(correct).tolist() == [7.0, 0.0, 1.0]


def test_dynamic_uncertainty_known_windows():
    proba = np.array([[0.0, 1.0, 0.0, 1.0, 1.0]]).T
    # window 2: stds 0.5, 0.5, 0.5, 0 -> mean 0.375
    np.testing.assert_allclose(dynamic_uncertainty(proba, window=2), [0.375])
    # window 3: each window holds two equal values and one different one
    np.testing.assert_allclose(dynamic_uncertainty(proba, window=3), [np.sqrt(2) / 3])
    np.testing.assert_allclose(dynamic_uncertainty(proba, window=5), [np.std(proba)])


def test_dynamic_uncertainty_matches_a_plain_loop():
    proba = np.random.RandomState(0).uniform(size=(23, 40))
    for window in (2, 7, 10, 23):
        expected = np.mean(
            [proba[k:k + window].std(axis=0) for k in range(23 - window + 1)], axis=0
        )
        np.testing.assert_allclose(dynamic_uncertainty(proba, window), expected, atol=1e-12)


def test_dynamic_uncertainty_rejects_bad_windows():
    with pytest.raises(ValueError, match="window=6 is larger than the number of recorded"):
        dynamic_uncertainty(np.zeros((5, 2)), window=6)
    with pytest.raises(ValueError, match="at least 2"):
        dynamic_uncertainty(np.zeros((5, 2)), window=1)


# --------------------------------------------------------------------------
# The recorder: positions, criteria, record modes
# --------------------------------------------------------------------------


class Oracle(torch.nn.Module):
    """Predicts the class stored in feature 0, whatever it learns.

    Which samples it gets right is known in advance, so a record written at
    the wrong position shows up at once.
    """

    def __init__(self, n_classes=4, probabilities=False):
        super().__init__()
        self.n_classes = n_classes
        self.probabilities = probabilities
        self.bias = torch.nn.Parameter(torch.zeros(n_classes))

    def forward(self, X):
        logits = 5.0 * torch.nn.functional.one_hot(X[:, 0].long(), self.n_classes) + self.bias
        return torch.softmax(logits, dim=1) if self.probabilities else logits


def oracle_data(n=150, seed=0):
    rng = np.random.RandomState(seed)
    predicted = rng.randint(4, size=n)
    X = np.column_stack([predicted, rng.normal(size=(n, 3))]).astype(np.float32)
    wrong = rng.uniform(size=n) < 0.3
    y = np.where(wrong, (predicted + 1) % 4, predicted)
    return X, y, wrong


def oracle_net(probabilities=False, **params):
    defaults = dict(
        module=Oracle,
        module__probabilities=probabilities,
        criterion=torch.nn.NLLLoss if probabilities else torch.nn.CrossEntropyLoss,
        max_epochs=3,
        batch_size=16,
        lr=0.0,
        train_split=None,
        verbose=0,
    )
    defaults.update(params)
    return NeuralNetClassifier(**defaults)


@pytest.mark.parametrize("probabilities", [False, True], ids=["logits-CE", "softmax-NLL"])
def test_recorder_writes_every_sample_at_its_position(probabilities):
    X, y, wrong = oracle_data()
    recorder = record_query_training(
        oracle_net(probabilities), X, y, seed=0, owner="test", record="train", margins=True
    )
    correct, proba, margin = recorder.correct_, recorder.proba_, recorder.margin_
    assert correct.shape == proba.shape == margin.shape == (3, y.size)
    # The true class's logit is 5 above the others, or the others' 5 above it.
    np.testing.assert_allclose(margin, np.tile(np.where(wrong, -5.0, 5.0), (3, 1)), atol=1e-4)
    np.testing.assert_array_equal(correct, np.tile(~wrong, (3, 1)))
    right = np.exp(5) / (np.exp(5) + 3)
    np.testing.assert_allclose(proba, np.tile(np.where(wrong, 1 / (np.exp(5) + 3), right), (3, 1)),
                               rtol=1e-5)


def test_sampler_presents_every_position_once_per_epoch_in_new_orders():
    sampler = PositionBatchSampler(50, batch_size=8)
    torch.manual_seed(0)
    first = sum(list(sampler), [])
    second = sum(list(sampler), [])
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second
    np.testing.assert_array_equal(sampler.order_, second)


def test_scores_are_fold_positions_inside_cross_validation():
    X, y, wrong = oracle_data(n=200)
    # Forgetting of the oracle: wrong samples are never correct (score =
    # presentations), right ones never forgotten (0). A fold of shuffled rows
    # must get exactly its own rows' scores.
    fold = np.random.RandomState(1).permutation(200)[:120]
    pruner = ForgettingPruner(oracle_net(), n_runs=2, random_state=0).fit(X[fold], y[fold])
    np.testing.assert_array_equal(pruner.scores_, np.where(wrong[fold], 2 * 3, 0))


class DropoutOracle(Oracle):
    """The oracle with dropout on its output: noisy in train mode only."""

    def forward(self, X):
        return torch.nn.functional.dropout(super().forward(X), 0.5, self.training)


def test_record_eval_reads_an_eval_mode_pass():
    X, y, wrong = oracle_data()
    net = oracle_net(module=DropoutOracle, max_epochs=4)
    proba_eval = record_query_training(net, X, y, seed=0, owner="test", record="eval").proba_
    proba_train = record_query_training(net, X, y, seed=0, owner="test", record="train").proba_
    np.testing.assert_allclose(proba_eval, np.tile(proba_eval[0], (4, 1)))
    assert not np.allclose(proba_train, proba_eval)
    pruner = DynamicUncertaintyPruner(net, window=3, record="eval", random_state=0).fit(X, y)
    np.testing.assert_allclose(pruner.scores_, 0, atol=1e-6)


def test_recorder_needs_its_batch_sampler():
    X, y, _ = oracle_data()
    net = oracle_net(callbacks=[TrainingDynamicsRecorder()])
    with pytest.raises(ValueError, match="PositionBatchSampler"):
        net.fit(X, y)


def test_torch_dataset_input():
    X, y, wrong = oracle_data()
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    pruner = ForgettingPruner(oracle_net(), density=0.3, random_state=0)
    X_kept, _ = pruner.fit_resample(dataset, y)
    np.testing.assert_array_equal(pruner.scores_, np.where(wrong, 3, 0))
    assert len(X_kept) == round(0.3 * y.size)


# --------------------------------------------------------------------------
# The pruners on noisy labels
# --------------------------------------------------------------------------


# Dynamic uncertainty singles out flipped labels only when the network
# memorises them during its schedule (their probability then climbs from ~0
# while clean samples sit at ~1), hence the wide layer, Adam and 50 epochs.
# Forgetting events do not need memorisation: a small, short training will do.
MEMORISING_NET = NeuralNetClassifier(
    TinyMLP, module__hidden=512, criterion=torch.nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam, lr=1e-2, max_epochs=50, batch_size=64,
    train_split=None, verbose=0,
)


@pytest.mark.parametrize(
    "pruner",
    [
        ForgettingPruner(make_tiny_net(max_epochs=15)),
        DynamicUncertaintyPruner(MEMORISING_NET, window=10),
        DynamicUncertaintyPruner(MEMORISING_NET, window=10, record="eval"),
    ],
    ids=["forgetting", "dynamic-uncertainty", "dynamic-uncertainty-eval"],
)
def test_flipped_labels_score_higher(pruner, flipped_digits):
    X, y, flipped = flipped_digits
    pruner = clone(pruner).set_params(random_state=0).fit(X, y)
    assert roc_auc_score(flipped, pruner.scores_) > 0.8


# --------------------------------------------------------------------------
# Quotas, pipelines, search
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_digits(digits):
    X, y = digits
    keep = np.random.RandomState(0).permutation(y.size)[:400]
    return X[keep], y[keep]


def test_pipeline_grid_search_over_density_and_quota(small_digits):
    X, y = small_digits
    net = make_tiny_net(max_epochs=3)
    pipe = make_pipeline(ForgettingPruner(net, random_state=0), clone(net))
    grid = GridSearchCV(
        pipe,
        {
            "forgettingpruner__density": [0.5, 0.8],
            "forgettingpruner__quota": [
                None, "metriq", {k: 1.0 + k for k in range(10)},
                StrategyQ(DynamicUncertaintyPruner(net, window=2)),
            ],
        },
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    ).fit(X, y)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    pruner = grid.best_estimator_[0]
    assert pruner.scores_.shape == (y.size,)


def test_random_with_strategy_quota(small_digits):
    X, y = small_digits
    net = make_tiny_net(max_epochs=3)
    pruner = RandomPruner(
        density=0.4, quota=StrategyQ(ForgettingPruner(net)), random_state=0
    ).fit(X, y)
    assert pruner.class_counts_ == pruner.quota_.strategy_class_counts_
    strategy = ForgettingPruner(net, density=0.4, random_state=0).fit(X, y)
    assert sum(strategy.class_counts_.values()) == sum(pruner.class_counts_.values())


def test_user_net_is_never_mutated(small_digits):
    X, y = small_digits
    net = make_tiny_net(max_epochs=2, train_split=ValidSplit(5), iterator_train__drop_last=True)
    before = {k: repr(v) for k, v in net.get_params(deep=False).items()}
    ForgettingPruner(net, random_state=0).fit(X, y)
    # The query clone records every row every epoch (unrecorded entries
    # would be NaN) despite the user's validation split and drop_last.
    proba = record_query_training(net, X, y, seed=0, owner="test").proba_
    assert proba.shape == (2, y.size) and np.isfinite(proba).all()
    DynamicUncertaintyPruner(net, window=2, record="eval", random_state=0).fit(X, y)
    assert {k: repr(v) for k, v in net.get_params(deep=False).items()} == before
    assert not net.initialized_ and not hasattr(net, "callbacks_")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_window_larger_than_epochs(small_digits):
    X, y = small_digits
    pruner = DynamicUncertaintyPruner(make_tiny_net(max_epochs=3), window=5)
    with pytest.raises(ValueError, match=r"window=5.*max_epochs=3"):
        pruner.fit(X, y)


@pytest.mark.parametrize("pruner_class", [ForgettingPruner, DynamicUncertaintyPruner])
@pytest.mark.parametrize("estimator", [LogisticRegression(), None], ids=["sklearn", "none"])
def test_non_skorch_estimator(pruner_class, estimator, small_digits):
    X, y = small_digits
    with pytest.raises(TypeError, match="needs a skorch classifier"):
        pruner_class(estimator).fit(X, y)


class NaNModule(torch.nn.Module):
    """Outputs NaN always, or (``nan_in_eval_only``) in every eval-mode call
    after the first one, which the pre-training output check makes."""

    eval_calls = 0

    def __init__(self, n_classes=10, nan_in_eval_only=False):
        super().__init__()
        self.nan_in_eval_only = nan_in_eval_only
        self.linear = torch.nn.LazyLinear(n_classes)

    def forward(self, X):
        out = self.linear(X)
        if not self.nan_in_eval_only:
            return out * float("nan")
        if self.training:
            return out
        NaNModule.eval_calls += 1
        return out if NaNModule.eval_calls == 1 else out * float("nan")


@pytest.mark.parametrize(
    "pruner, error, match",
    [
        (ForgettingPruner(make_tiny_net(max_epochs=2, module=NaNModule)),
         ValueError, "output contains NaN or infinite values"),
        (DynamicUncertaintyPruner(make_tiny_net(max_epochs=2, lr=1e12, optimizer__momentum=0.0),
                                  window=2),
         TrainingDivergedError, "diverged"),
        (DynamicUncertaintyPruner(
            make_tiny_net(max_epochs=2, module=NaNModule, module__nan_in_eval_only=True),
            window=2, record="eval"),
         TrainingDivergedError, "diverged"),
    ],
    ids=["nan-output", "huge-lr", "nan-in-eval-pass"],
)
def test_diverged_training_raises(pruner, error, match, small_digits):
    X, y = small_digits
    NaNModule.eval_calls = 0
    with pytest.raises(error, match=match):
        pruner.set_params(random_state=0).fit(X, y)


def test_unknown_criterion(small_digits):
    X, y = small_digits
    net = make_tiny_net(max_epochs=1, criterion=torch.nn.MultiMarginLoss)
    with pytest.raises(ValueError, match="NLLLoss.*CrossEntropyLoss"):
        ForgettingPruner(net).fit(X, y)


def test_invalid_parameters(small_digits):
    X, y = small_digits
    net = make_tiny_net(max_epochs=2)
    with pytest.raises(InvalidParameterError, match="record"):
        DynamicUncertaintyPruner(net, window=2, record="test").fit(X, y)
    with pytest.raises(InvalidParameterError, match="n_runs"):
        ForgettingPruner(net, n_runs=0).fit(X, y)


@pytest.mark.parametrize("pruner_class", [ForgettingPruner, DynamicUncertaintyPruner])
def test_labels_outside_the_outputs_fail_before_training(pruner_class, small_digits):
    X, y = small_digits
    # Eleven classes for a module with 10 outputs.
    pruner = pruner_class(make_tiny_net(max_epochs=3), random_state=0, **(
        {"window": 2} if pruner_class is DynamicUncertaintyPruner else {}))
    with pytest.raises(ValueError, match=r"Labels must index the module's 10 outputs"):
        pruner.fit(X, np.r_[y[:-1], 10])


def test_callbacks_disable_is_refused_clearly(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="callbacks='disable'"):
        ForgettingPruner(make_tiny_net(max_epochs=2, callbacks="disable")).fit(X, y)
