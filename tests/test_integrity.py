"""Results never go silently wrong: random state, checked scores, degenerate training, inputs."""

import random

import numpy as np
import pytest
import torch
from conftest import make_tiny_net
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetClassifier

from skprune import (
    DynamicUncertaintyPruner,
    EL2NPruner,
    ForgettingPruner,
    GraNdPruner,
    MetriQ,
    RandomPruner,
    make_pipeline,
)
from skprune.exceptions import DegenerateTrainingWarning, TrainingDivergedError

pytestmark = pytest.mark.usefixtures("fresh_cache")




@pytest.fixture(scope="module")
def small(digits):
    X, y = digits
    return X[:400], y[:400]


def global_states():
    return (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())


def assert_same_states(before, after):
    assert torch.equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2] == after[2]


PRUNERS = [
    lambda: EL2NPruner(make_tiny_net(max_epochs=2), n_runs=1, random_state=0),
    lambda: GraNdPruner(make_tiny_net(max_epochs=2), n_runs=1, random_state=0),
    lambda: ForgettingPruner(make_tiny_net(max_epochs=2), quota="metriq", random_state=0),
    lambda: DynamicUncertaintyPruner(make_tiny_net(max_epochs=3), window=2, record="eval",
                                     random_state=0),
    lambda: RandomPruner(make_tiny_net(max_epochs=2),
                         quota=MetriQ(validation=3, epoch="best"), random_state=0),
]


@pytest.mark.parametrize("make_pruner", PRUNERS,
                         ids=["el2n", "grand", "forgetting+metriq", "dynunc-eval", "metriq-cv"])
def test_a_fit_leaves_the_global_random_states_alone_cold_and_warm(small, make_pruner):
    X, y = small
    for _ in ("cold", "warm"):
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)
        before = global_states()
        make_pruner().fit(X, y)
        assert_same_states(before, global_states())


def weights_after_pipeline_fit(X, y, memory):
    pipe = make_pipeline(
        EL2NPruner(make_tiny_net(max_epochs=2), n_runs=1, density=0.5, quota="metriq",
                   random_state=0, memory=memory),
        make_tiny_net(max_epochs=2),
    )
    torch.manual_seed(0)
    pipe.fit(X, y)
    return [p.detach().clone() for p in pipe[-1].module_.parameters()]


@pytest.mark.parametrize("memory", [None, "disk"])
def test_same_seeded_pipeline_cold_and_warm_trains_identical_final_weights(small, memory,
                                                                           tmp_path):
    X, y = small
    memory = tmp_path if memory == "disk" else None
    cold = weights_after_pipeline_fit(X, y, memory)
    warm = weights_after_pipeline_fit(X, y, memory)  # scores and recalls come from the cache
    assert len(cold) == len(warm)
    for a, b in zip(cold, warm, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_random_state_none_still_draws_from_numpys_global_generator(small):
    X, y = small
    np.random.seed(0)
    first = RandomPruner(density=0.5).fit(X, y).sample_indices_
    second = RandomPruner(density=0.5).fit(X, y).sample_indices_
    assert not np.array_equal(first, second)
    np.random.seed(0)
    np.testing.assert_array_equal(RandomPruner(density=0.5).fit(X, y).sample_indices_, first)


# Scores are checked before selection --------------------------------------------


class BrokenScores(RandomPruner):
    """A pruner whose scores are whatever the test says."""

    make_scores = None

    def _score_run(self, X, y, seed):
        return type(self).make_scores(y.shape[0])


@pytest.mark.parametrize(
    "make_scores, match",
    [
        (lambda n: np.full(n, np.nan), "must be finite"),
        (lambda n: np.zeros(n - 3), r"one number per row, shape \(400,\)"),
        (lambda n: np.zeros((n, 2)), "one number per row"),
        (lambda n: np.array(["a"] * n), "real numbers"),
    ],
    ids=["nan", "short", "2-d", "strings"],
)
def test_invalid_scores_raise_before_selection(small, make_scores, match):
    X, y = small
    BrokenScores.make_scores = staticmethod(make_scores)
    with pytest.raises(ValueError, match=match):
        BrokenScores(density=0.5, random_state=0).fit(X, y)


class TwoValueScores(RandomPruner):
    def _score_run(self, X, y, seed):
        return (y % 2).astype(float)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.continuous_scores = True
        return tags


def test_collapsed_continuous_scores_are_flagged(small):
    X, y = small
    with pytest.warns(DegenerateTrainingWarning, match=r"collapsed onto 2 distinct.*\(lr\)"):
        TwoValueScores(density=0.5, random_state=0).fit(X, y)


# Degenerate query training ----------------------------------------------------------


@pytest.mark.parametrize("pruner_class", [EL2NPruner, ForgettingPruner, RandomPruner])
def test_exploding_but_finite_loss_is_divergence(small, pruner_class):
    X, y = small
    net = make_tiny_net(lr=1e6, max_epochs=4)
    params = {"quota": "metriq"} if pruner_class is RandomPruner else {}
    with pytest.raises(TrainingDivergedError, match=r"grew from .*\(lr\)"):
        pruner_class(net, random_state=0, **params).fit(X, y)


class Constant(torch.nn.Module):
    """Ignores its input: predicts class 0 for everything, and cannot learn."""

    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.tensor([5.0] + [0.0] * 9), requires_grad=False)
        self.unused = torch.nn.Linear(1, 1)

    def forward(self, X):
        return self.bias.expand(X.shape[0], 10) + 0 * self.unused.weight.sum()


def test_predictions_collapsed_to_one_class_are_flagged(small):
    X, y = small
    net = NeuralNetClassifier(Constant, criterion=torch.nn.CrossEntropyLoss, max_epochs=2,
                              train_split=None, verbose=0)
    with pytest.warns(DegenerateTrainingWarning, match="single class for every training"):
        ForgettingPruner(net, random_state=0).fit(X, y)


# Inputs ----------------------------------------------------------------------------


def test_uint8_images_get_a_clear_error_and_float16_is_cast(small):
    X, y = small
    pruner = EL2NPruner(make_tiny_net(max_epochs=1), n_runs=1, random_state=0)
    with pytest.raises(ValueError, match=r"dtype uint8.*astype\('float32'\) / 255"):
        pruner.fit((X * 16).astype(np.uint8), y)
    as_half = pruner.fit(X.astype(np.float16), y).scores_
    as_single = pruner.fit(X.astype(np.float16).astype(np.float32), y).scores_
    np.testing.assert_array_equal(as_half, as_single)


def test_wrong_input_width_names_the_shape(small):
    X, y = small
    net = NeuralNetClassifier(torch.nn.Linear, module__in_features=60, module__out_features=10,
                              criterion=torch.nn.CrossEntropyLoss, train_split=None, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(400, 64\).*module__in_features"):
        EL2NPruner(net, n_runs=1, random_state=0).fit(X, y)


@pytest.mark.parametrize("make_pruner", [
    lambda: EL2NPruner(make_tiny_net(max_epochs=2), n_runs=1, random_state=0),
    lambda: ForgettingPruner(make_tiny_net(max_epochs=2), random_state=0),
    lambda: RandomPruner(make_tiny_net(max_epochs=2), quota="metriq", random_state=0),
    lambda: RandomPruner(LogisticRegression(max_iter=100), quota="metriq", random_state=0),
], ids=["el2n", "forgetting", "metriq-net", "metriq-sklearn"])
def test_labels_one_to_k_and_floats_select_like_zero_based_labels(small, make_pruner):
    X, y = small
    reference = make_pruner().fit(X, y)
    for labels in (y + 1, (y + 1).astype(float), np.array(list("abcdefghij"))[y]):
        pruner = make_pruner().fit(X, labels)
        np.testing.assert_array_equal(pruner.sample_indices_, reference.sample_indices_)
        np.testing.assert_array_equal(pruner.scores_, reference.scores_)
