"""The functional core: DynamicsRecorder, the score functions, and the pruners built on them."""

import numpy as np
import pytest
import torch
from conftest import make_tiny_net

import skprune.strategies._base as strategy_bases
from skprune import (
    AUMPruner,
    CoreSetPruner,
    DynamicUncertaintyPruner,
    EL2NPruner,
    ForgettingPruner,
    PrototypePruner,
    UncertaintyPruner,
)
from skprune._query_training import penultimate_features
from skprune.recording import DynamicsRecorder
from skprune.scores import (
    area_under_margin,
    dynamic_uncertainty,
    el2n,
    forgetting_events,
    pick_order_scores,
    prototype_distances,
    uncertainty,
)

# --------------------------------------------------------------------------
# DynamicsRecorder
# --------------------------------------------------------------------------


def batches(n=50, n_classes=4, batch_size=8, seed=0):
    """Shuffled ``(indices, logits, targets)`` batches covering ``n`` samples once."""
    rng = np.random.RandomState(seed)
    logits = torch.from_numpy(rng.normal(size=(n, n_classes)).astype(np.float32))
    targets = torch.from_numpy(rng.randint(n_classes, size=n))
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        yield rows, logits[rows], targets[rows]


def expected_records(n=50, n_classes=4, seed=0):
    rng = np.random.RandomState(seed)
    logits = rng.normal(size=(n, n_classes))
    targets = rng.randint(n_classes, size=n)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    rows = np.arange(n)
    others = logits.copy()
    others[rows, targets] = -np.inf
    return (logits.argmax(1) == targets, proba[rows, targets],
            logits[rows, targets] - others.max(axis=1))


@pytest.mark.parametrize("chunk_rows", [1, 20, 1 << 14])
@pytest.mark.parametrize("output", ["logits", "probabilities"])
def test_recorder_writes_every_sample_at_its_position(chunk_rows, output):
    recorder = DynamicsRecorder(50, output=output, margins=True)
    recorder.chunk_rows = chunk_rows
    for _ in range(3):
        for indices, logits, targets in batches(seed=0):
            outputs = logits.softmax(1) if output == "probabilities" else logits
            recorder.update(indices, outputs, targets)
        recorder.end_epoch()
    correct, proba, margin = expected_records()
    assert recorder.n_epochs_ == 3
    np.testing.assert_array_equal(recorder.correct_, np.tile(correct, (3, 1)))
    np.testing.assert_allclose(recorder.proba_, np.tile(proba, (3, 1)), rtol=1e-5)
    np.testing.assert_allclose(recorder.margin_, np.tile(margin, (3, 1)), rtol=1e-4,
                               atol=1e-5)


def test_recorder_takes_lists_arrays_and_tensors():
    recorder = DynamicsRecorder(4, margins=False)
    recorder.update([0, 1], np.array([[2.0, 0.0], [0.0, 2.0]]), [0, 0])
    recorder.update(torch.tensor([2, 3]), (torch.tensor([[2.0, 0.0], [0.0, 2.0]]), "aux"),
                    np.array([1, 1]))
    recorder.end_epoch()
    np.testing.assert_array_equal(recorder.correct_, [[True, False, False, True]])
    assert recorder.margin_ is None


class CountingTensor(torch.Tensor):
    """A tensor that counts the torch operations made on it."""

    calls = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.calls.append(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs or {})


def test_update_computes_and_copies_nothing_per_batch():
    # No kernel and no device-to-host copy per batch: on a GPU, update never
    # waits for the device; the work is done once per chunk.
    recorder = DynamicsRecorder(64)
    CountingTensor.calls = []
    for indices, logits, targets in batches(n=64):
        recorder.update(torch.as_tensor(indices), logits.as_subclass(CountingTensor),
                        targets.as_subclass(CountingTensor))
    assert set(CountingTensor.calls) <= {"detach", "__len__", "__get__"}, CountingTensor.calls
    recorder.end_epoch()
    assert recorder.n_epochs_ == 1


@pytest.mark.parametrize("indices, match", [
    ([0, 1, 2], "recorded 1 of the 4 samples never"),
    ([0, 1, 2, 3, 3], "1 presentations more than once"),
])
def test_an_epoch_must_present_every_sample_once(indices, match):
    recorder = DynamicsRecorder(4)
    recorder.update(indices, torch.zeros(len(indices), 2), torch.zeros(len(indices)))
    with pytest.raises(ValueError, match=match):
        recorder.end_epoch()


@pytest.mark.parametrize("indices, targets, match", [
    ([0, 4], [0, 0], "positions 0 to 3"),
    ([-1, 0], [0, 0], "positions 0 to 3"),
    ([0, 1], [0, 2], "class indices 0 to 1"),
    ([0, 1, 2], [0, 0], "as many indices and targets"),
])
def test_bad_batches_are_named(indices, targets, match):
    recorder = DynamicsRecorder(4)
    recorder.update(indices, torch.zeros(2, 2), targets)
    with pytest.raises(ValueError, match=match):
        recorder.end_epoch()


@pytest.mark.parametrize("params, match", [
    (dict(n_samples=0), "positive integer"),
    (dict(n_samples=3, output="log"), "'logits' or 'probabilities'"),
])
def test_bad_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        DynamicsRecorder(**params)


def test_records_grow_with_any_number_of_epochs():
    recorder = DynamicsRecorder(3)
    for _ in range(9):
        recorder.update([0, 1, 2], torch.eye(3), [0, 1, 0])
        recorder.end_epoch()
    assert recorder.correct_.shape == recorder.proba_.shape == (9, 3)
    np.testing.assert_array_equal(forgetting_events(recorder.correct_), [0, 0, 9])


# --------------------------------------------------------------------------
# The score functions
# --------------------------------------------------------------------------


def test_el2n_and_area_under_margin_by_hand():
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(el2n(proba, [0, 0]),
                               [np.sqrt(0.09 + 0.04 + 0.01), np.sqrt(0.64 + 0.04 + 0.36)])
    np.testing.assert_allclose(area_under_margin([[1.0, -2.0], [3.0, 0.0]]), [2.0, -1.0])


@pytest.mark.parametrize("function, args, match", [
    (el2n, ([[0.5, 0.5]], [2]), "index the 2 columns"),
    (el2n, ([[0.5, 0.5]], [0.0]), "integer class index"),
    (forgetting_events, ([True, False],), "2-D"),
    (area_under_margin, ([1.0, 2.0],), "2-D"),
    (uncertainty, ([0.5, 0.5],), "2-D"),
])
def test_score_functions_name_bad_input(function, args, match):
    with pytest.raises(ValueError, match=match):
        function(*args)


# --------------------------------------------------------------------------
# The pruners score through these functions, on the same recorded run
# --------------------------------------------------------------------------


@pytest.fixture
def small(digits):
    X, y = digits
    return X[:240], y[:240]


def captured(monkeypatch, name):
    """Wrap ``skprune.strategies._base.<name>``; returns the list of what it returned."""
    results = []
    original = getattr(strategy_bases, name)

    def capturing(*args, **kwargs):
        results.append(original(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(strategy_bases, name, capturing)
    return results


@pytest.mark.parametrize("pruner, score", [
    (ForgettingPruner(make_tiny_net(max_epochs=4), never_learned="zero"),
     lambda record: forgetting_events(record.correct_, never_learned="zero")),
    (DynamicUncertaintyPruner(make_tiny_net(max_epochs=4), window=3),
     lambda record: dynamic_uncertainty(record.proba_, window=3)),
    (AUMPruner(make_tiny_net(max_epochs=3)), lambda record: -area_under_margin(record.margin_)),
], ids=["forgetting", "dynamic-uncertainty", "aum"])
def test_training_dynamics_scores_are_the_functions_of_the_record(monkeypatch, small, pruner,
                                                                  score):
    X, y = small
    records = captured(monkeypatch, "record_query_training")
    pruner = pruner.set_params(n_runs=2, random_state=0).fit(X, y)
    assert len(records) == 2
    np.testing.assert_array_equal(pruner.run_scores_, [score(record) for record in records])


@pytest.mark.parametrize("pruner, score", [
    (EL2NPruner(make_tiny_net(max_epochs=3), n_runs=1),
     lambda net, X, y: el2n(net.predict_proba(X), y)),
    (UncertaintyPruner(make_tiny_net(max_epochs=2), measure="entropy"),
     lambda net, X, y: uncertainty(net.predict_proba(X), "entropy")),
    (PrototypePruner(make_tiny_net(max_epochs=2)),
     lambda net, X, y: prototype_distances(penultimate_features(net, X, y, "test"), y)),
    (CoreSetPruner(make_tiny_net(max_epochs=2), scope="all"),
     lambda net, X, y: pick_order_scores(penultimate_features(net, X, y, "test"))),
], ids=["el2n", "uncertainty", "prototype", "coreset"])
def test_query_net_scores_are_the_functions_of_its_outputs(monkeypatch, small, pruner, score):
    X, y = small
    nets = captured(monkeypatch, "train_query_net")
    pruner = pruner.set_params(random_state=0).fit(X, y)
    (net, _), = nets
    np.testing.assert_allclose(pruner.scores_, score(net, X, y), rtol=1e-5, atol=1e-7)
