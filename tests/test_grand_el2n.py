"""GraNdPruner and EL2NPruner: scores, query training, API and errors."""

import numpy as np
import pytest
import torch
from conftest import TinyMLP, make_tiny_net
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from skprune import EL2NPruner, GraNdPruner, make_pipeline
from skprune.cache import clear_process_cache
from skprune.exceptions import TrainingDivergedError

PRUNERS = [GraNdPruner, EL2NPruner]


class ProbabilityMLP(TinyMLP):
    """TinyMLP ending with a softmax, for skorch's default NLLLoss."""

    def forward(self, X):
        return super().forward(X).softmax(dim=1)


class EpochCounter(Callback):
    """Counts the epochs of every query training (clones share the class list)."""

    epochs = []

    def on_epoch_end(self, net, **kwargs):
        type(self).epochs.append(len(net.history))


@pytest.mark.parametrize(
    "Pruner, params",
    [(GraNdPruner, {}), (GraNdPruner, {"layers": "last"}), (EL2NPruner, {})],
)
def test_flipped_labels_score_higher(flipped_digits, Pruner, params):
    X, y, flipped = flipped_digits
    pruner = Pruner(make_tiny_net(max_epochs=20), n_runs=2, random_state=0, **params)
    pruner.fit(X, y)
    assert roc_auc_score(flipped, pruner.scores_) > 0.8


@pytest.mark.parametrize("Pruner", PRUNERS)
def test_pipeline_and_grid_search(digits, Pruner):
    X, y = digits
    X, y = X[:400], y[:400]
    pipe = make_pipeline(
        Pruner(make_tiny_net(max_epochs=5), n_runs=1, random_state=0),
        RidgeClassifier(),
    )
    name = type(pipe.steps[0][1]).__name__.lower()
    grid = {f"{name}__density": [0.3, 0.7], f"{name}__quota": [None, "metriq"]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert search.best_score_ > 0.7


@pytest.mark.parametrize("Pruner", PRUNERS)
def test_query_training_epochs(digits, Pruner):
    X, y = digits
    X, y = X[:200], y[:200]
    EpochCounter.epochs = []
    net = make_tiny_net(max_epochs=15, callbacks=[EpochCounter()])
    # epochs=0 scores the initialized net, reproducibly.
    first = Pruner(net, epochs=0, n_runs=2, random_state=3).fit(X, y).scores_
    clear_process_cache()
    again = Pruner(net, epochs=0, n_runs=2, random_state=3).fit(X, y).scores_
    assert EpochCounter.epochs == []
    np.testing.assert_array_equal(first, again)
    # epochs=None trains for 10% of max_epochs, rounded up.
    Pruner(net, n_runs=2, random_state=3).fit(X, y)
    assert EpochCounter.epochs == [1, 2, 1, 2]
    EpochCounter.epochs = []
    Pruner(net, epochs=3, n_runs=1, random_state=3).fit(X, y)
    assert EpochCounter.epochs == [1, 2, 3]


def test_last_layer_norm_is_part_of_the_full_norm(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    net = make_tiny_net(max_epochs=10)
    full = GraNdPruner(net, n_runs=1, random_state=0).fit(X, y).scores_
    last = GraNdPruner(net, n_runs=1, layers="last", random_state=0).fit(X, y).scores_
    assert np.all(last <= full * (1 + 1e-5))
    assert np.corrcoef(last, full)[0, 1] > 0.5


@pytest.mark.parametrize("Pruner", PRUNERS)
def test_probabilities_and_logits_modules_agree(digits, Pruner):
    # The same initialization, read as probabilities (NLLLoss, skorch's
    # default) or as logits (CrossEntropyLoss), gives the same scores.
    X, y = digits
    X, y = X[:100], y[:100]
    logits = make_tiny_net()
    probabilities = make_tiny_net(module=ProbabilityMLP, criterion=torch.nn.NLLLoss)
    scores = [
        Pruner(net, epochs=0, n_runs=1, random_state=0).fit(X, y).scores_
        for net in (logits, probabilities)
    ]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-4)


@pytest.mark.parametrize("Pruner", PRUNERS)
def test_el2n_and_grand_scores_are_bounded_and_nonnegative(digits, Pruner):
    X, y = digits
    scores = Pruner(make_tiny_net(max_epochs=10), n_runs=1, random_state=0).fit(
        X[:200], y[:200]).scores_
    assert scores.shape == (200,) and np.all(scores >= 0)
    if Pruner is EL2NPruner:
        assert np.all(scores <= np.sqrt(2) + 1e-6)


@pytest.mark.parametrize("Pruner", PRUNERS)
def test_dataset_input_scores_like_arrays(digits, Pruner):
    X, y = digits
    X, y = X[:150], y[:150]
    net = make_tiny_net(max_epochs=10)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    from_array = Pruner(net, n_runs=1, random_state=0).fit(X, y)
    from_dataset = Pruner(net, n_runs=1, random_state=0)
    kept, y_kept = from_dataset.fit_resample(dataset, y)
    assert isinstance(kept, torch.utils.data.Subset)
    np.testing.assert_allclose(from_dataset.scores_, from_array.scores_, rtol=1e-5)


@pytest.mark.parametrize("Pruner", PRUNERS)
def test_user_net_is_not_modified(digits, Pruner):
    X, y = digits
    net = make_tiny_net(max_epochs=2)
    params = net.get_params(deep=False)
    Pruner(net, n_runs=1, random_state=0).fit(X[:100], y[:100])
    assert not net.initialized_
    assert net.get_params(deep=False).keys() == params.keys()
    assert net.train_split is None and net.callbacks is None and net.max_epochs == 2


class SequenceOutput(TinyMLP):
    def forward(self, X):
        return super().forward(X).unsqueeze(-1)


@pytest.mark.parametrize("Pruner", PRUNERS)
@pytest.mark.parametrize(
    "net, labels, error, match",
    [
        (make_tiny_net(module=SequenceOutput), None, ValueError,
         r"shape \(n_samples, n_classes\)"),
        (make_tiny_net(module__n_classes=5), None, ValueError, "Labels must index"),
        (make_tiny_net(), np.r_[np.arange(99) % 10, 10], ValueError, "Labels must index"),
        (make_tiny_net(lr=1e12, max_epochs=3), None, TrainingDivergedError, "diverged"),
        (make_tiny_net(criterion=torch.nn.MSELoss), None, ValueError,
         "probabilities or logits"),
        (LogisticRegression(), None, TypeError, "skorch classifier"),
    ],
)
def test_bad_input_raises_clear_error(digits, Pruner, net, labels, error, match):
    X, y = digits
    y = y[:100] if labels is None else labels
    with pytest.raises(error, match=match):
        Pruner(net, n_runs=1, epochs=2, random_state=0).fit(X[:100], y)


def test_invalid_parameters_raise(digits):
    X, y = digits
    net = make_tiny_net()
    with pytest.raises(ValueError, match="layers"):
        GraNdPruner(net, layers="first").fit(X, y)
    with pytest.raises(ValueError, match="epochs"):
        EL2NPruner(net, epochs=-1).fit(X, y)
    with pytest.raises(ValueError, match="n_runs"):
        EL2NPruner(net, n_runs=0).fit(X, y)
    assert clone(GraNdPruner(net, layers="last")).layers == "last"


class ScheduleProbe(Callback):
    """Records the schedule length and learning rate every query epoch sees."""

    seen = []

    def on_epoch_begin(self, net, **kwargs):
        type(self).seen.append((net.max_epochs, net.optimizer_.param_groups[0]["lr"]))


def test_early_training_reads_the_start_of_the_full_schedule(digits):
    from skprune.models import make_net

    X, y = digits
    ScheduleProbe.seen = []
    # Drops at 50% and 75% of 20 epochs: two epochs of early training stay
    # at the initial rate instead of squeezing the schedule into two epochs.
    net = make_net("mlp", 10, "digits-mlp", max_epochs=20, lr=0.05,
                   callbacks=[("probe", ScheduleProbe())])
    EL2NPruner(net, epochs=2, n_runs=1, random_state=0).fit(X[:300], y[:300])
    assert ScheduleProbe.seen == [(20, 0.05), (20, 0.05)]
