"""MetriQ reads recall from the strategy's own query networks: one training, not two."""

from contextlib import contextmanager

import numpy as np
import pytest
from conftest import make_tiny_net, small_imbalanced
from skorch.callbacks import Callback

from skprune import EL2NPruner, ForgettingPruner, MetriQ, RandomPruner, _runs
from skprune.cache import clear_process_cache

pytestmark = pytest.mark.usefixtures("fresh_cache")


class TrainingCounter(Callback):
    """Counts the trainings of every clone of the net it is given to."""

    trainings = []

    def on_train_begin(self, net, **kwargs):
        TrainingCounter.trainings.append(1)


def data(seed=0):
    X, y = small_imbalanced(n=(120, 80, 40), n_features=6, seed=seed)
    X_val, y_val = small_imbalanced(n=(60, 60, 60), n_features=6, seed=seed + 1)
    return X.astype(np.float32), y, X_val.astype(np.float32), y_val


def counting_net(**params):
    params = {"max_epochs": 6, **params}
    return make_tiny_net(n_classes=3, callbacks=[("count", TrainingCounter())], **params)


@pytest.fixture
def captured(monkeypatch):
    """Every validation prediction of every shared query network, as trained."""
    seen = []
    original = _runs.predicting_validation

    @contextmanager
    def recording(*args, **kwargs):
        with original(*args, **kwargs) as networks:
            yield networks
        seen.extend(predictions.copy() for predictions in networks)

    monkeypatch.setattr(_runs, "predicting_validation", recording)
    TrainingCounter.trainings = []
    return seen


def test_forgetting_with_metriq_trains_one_network_and_reads_its_recalls(captured):
    X, y, X_val, y_val = data()
    net = counting_net()
    shared = ForgettingPruner(net, density=0.4, random_state=0,
                              quota=MetriQ(validation=(X_val, y_val))).fit(X, y)
    assert len(TrainingCounter.trainings) == 1
    assert shared.quota_.shared_networks_
    (predictions,) = captured
    # epoch="last": one pass over the validation rows, after training.
    assert predictions.shape == (1, y_val.shape[0])
    last = predictions[-1]
    expected = {k: float(np.mean(last[y_val == k] == k)) for k in range(3)}
    assert shared.class_recall_ == pytest.approx(expected)
    # The strategy's training is the same watched or not: same scores.
    clear_process_cache()
    TrainingCounter.trainings = []
    own = ForgettingPruner(net, density=0.4, random_state=0,
                           quota=MetriQ(validation=(X_val, y_val), share_networks=False))
    own.fit(X, y)
    assert len(TrainingCounter.trainings) == 2
    assert not own.quota_.shared_networks_
    np.testing.assert_array_equal(shared.scores_, own.scores_)


def test_best_epoch_and_several_runs(captured):
    X, y, X_val, y_val = data(seed=3)
    pruner = EL2NPruner(counting_net(), density=0.4, n_runs=2, epochs=3, random_state=0,
                        quota=MetriQ(validation=(X_val, y_val), epoch="best")).fit(X, y)
    assert len(TrainingCounter.trainings) == 2
    assert len(captured) == 2
    assert all(predictions.shape == (3, y_val.shape[0]) for predictions in captured)
    recalls = []
    for predictions in captured:
        best = predictions[int(np.argmax((predictions == y_val).sum(axis=1)))]
        recalls.append([np.mean(best[y_val == k] == k) for k in range(3)])
    assert list(pruner.class_recall_.values()) == pytest.approx(np.mean(recalls, axis=0))


def test_shared_recalls_are_cached_with_the_scores(captured, tmp_path):
    X, y, X_val, y_val = data()
    quota = MetriQ(validation=(X_val, y_val))
    net = counting_net()
    # The strategy alone caches scores but no validation predictions ...
    ForgettingPruner(net, density=0.4, random_state=0, memory=tmp_path).fit(X, y)
    TrainingCounter.trainings = []
    # ... so with MetriQ the run trains again, once, and caches both.
    first = ForgettingPruner(net, density=0.4, random_state=0, memory=tmp_path,
                             quota=quota).fit(X, y)
    assert len(TrainingCounter.trainings) == 1
    TrainingCounter.trainings = []
    again = ForgettingPruner(net, density=0.2, random_state=0, memory=tmp_path,
                             quota=quota).fit(X, y)
    assert TrainingCounter.trainings == []
    assert again.class_recall_ == first.class_recall_
    assert again.quota_.shared_networks_


@pytest.mark.parametrize("quota", [
    MetriQ(),                                         # a hold-out: the strategy scores it too
    "metriq",
])
def test_hold_out_validation_trains_its_own(quota, captured):
    X, y, _, _ = data()
    pruner = ForgettingPruner(counting_net(), density=0.4, random_state=0, quota=quota).fit(X, y)
    assert len(TrainingCounter.trainings) == 2
    assert not pruner.quota_.shared_networks_


def test_random_pruner_and_another_estimator_train_their_own(captured):
    X, y, X_val, y_val = data()
    net = counting_net()
    random = RandomPruner(net, density=0.4, random_state=0,
                          quota=MetriQ(validation=(X_val, y_val))).fit(X, y)
    assert not random.quota_.shared_networks_
    assert len(TrainingCounter.trainings) == 1
    TrainingCounter.trainings = []
    other = ForgettingPruner(net, density=0.4, random_state=0,
                             quota=MetriQ(counting_net(max_epochs=4),
                                          validation=(X_val, y_val))).fit(X, y)
    assert not other.quota_.shared_networks_
    assert len(TrainingCounter.trainings) == 2


def test_last_epoch_predictions_are_not_read_as_best(captured, tmp_path):
    X, y, X_val, y_val = data()
    net = counting_net()
    ForgettingPruner(net, density=0.4, random_state=0, memory=tmp_path,
                     quota=MetriQ(validation=(X_val, y_val))).fit(X, y)
    assert len(TrainingCounter.trainings) == 1
    # Predictions made once after training cannot tell the best epoch: the
    # best-epoch rule trains again (the scores alone come from the cache).
    clear_process_cache()
    best = ForgettingPruner(net, density=0.4, random_state=0, memory=tmp_path,
                            quota=MetriQ(validation=(X_val, y_val), epoch="best")).fit(X, y)
    assert len(TrainingCounter.trainings) == 2
    assert captured[-1].shape == (6, y_val.shape[0])
    hits = (captured[-1] == y_val).sum(axis=1)
    chosen = captured[-1][int(np.argmax(hits))]
    expected = {k: float(np.mean(chosen[y_val == k] == k)) for k in range(3)}
    assert best.class_recall_ == pytest.approx(expected)
