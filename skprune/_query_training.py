"""Training the query networks that pruners and quotas learn from.

Every strategy that needs a trained model (scores, MetriQ recalls) goes through
these helpers, so that cloning, seeding, device resolution and divergence
checks behave the same everywhere.
"""

import contextvars
import itertools
import math
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import clone, is_classifier
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import to_device

from ._progress import epoch_callbacks, planned_epochs, query_net_verbose
from .callbacks import PositionBatchSampler, TrainingDynamicsRecorder
from .exceptions import DegenerateTrainingWarning, TrainingDivergedError, user_stacklevel
from .utils._devices import check_device, inputs_device, resolve_device
from .utils._modules import (
    check_class_outputs,
    check_labels,
    eval_mode,
    final_linear,
    forward,
    require_output_kind,
)
from .utils._random_state import preserved_random_state, seeded
from .utils._torch_data import (
    batch_length,
    describe_forward_error,
    net_inputs,
    net_targets,
    with_position_labels,
)


def is_skorch_classifier(estimator):
    """Whether ``estimator`` is a skorch classifier (e.g. ``NeuralNetClassifier``)."""
    return isinstance(estimator, NeuralNet) and is_classifier(estimator)


def check_skorch_classifier(estimator, owner):
    """Raise a ``TypeError`` unless ``estimator`` is a skorch classifier.

    Parameters
    ----------
    estimator : object
    owner : str
        Name of the class that needs the network, used in the message.
    """
    if not is_skorch_classifier(estimator):
        raise TypeError(
            f"{owner} needs a skorch classifier as its `estimator` (for example "
            "skorch.NeuralNetClassifier(MyModule, max_epochs=20)), because it trains "
            f"a torch network as its query model; got {type(estimator).__name__}."
        )


class QueryTrainingMonitor(Callback):
    """Stop or flag a query training that cannot give meaningful scores.

    A batch loss that is not finite, or an epoch whose mean training loss
    grows far past the first batch's (more than ten times, and by more than
    10), raises :class:`~skprune.exceptions.TrainingDivergedError`. A last
    epoch in which the network predicted a single class for every training
    sample, although the labels hold several, or got no more of them right
    than chance does (predicting the most frequent class; see
    :attr:`chance_margin`), issues a
    :class:`~skprune.exceptions.DegenerateTrainingWarning`.

    Parameters
    ----------
    owner : str
        Name of the class whose query training is monitored, used in messages.
    """

    #: An epoch loss above ``max(growth * start, start + margin)`` is divergence.
    growth = 10.0
    margin = 10.0
    #: A last epoch's training accuracy below ``chance + chance_margin * (1 -
    #: chance)`` is near chance: the network closed less than a tenth of the
    #: gap between always predicting the most frequent class and being right.
    chance_margin = 0.1
    #: A first epoch's accuracy is averaged from the random initialisation on,
    #: so near chance is judged after this many epochs only.
    chance_min_epochs = 2

    def __init__(self, owner="skprune"):
        self.owner = owner

    def initialize(self):
        self.start_loss_ = None
        self.predicted_ = []
        self.targets_ = []
        self.single_class_ = None
        self.accuracy_ = None
        self.chance_ = None
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.predicted_, self.targets_ = [], []
        self.single_class_ = self.accuracy_ = self.chance_ = None

    def on_epoch_begin(self, net, **kwargs):
        self.predicted_, self.targets_ = [], []

    def on_batch_end(self, net, batch=None, training=None, loss=None, y_pred=None, **kwargs):
        # Per batch only what costs nothing: skorch has already copied the
        # loss to the host, an arg-max is one small kernel, and the batch's
        # labels are the loader's host tensor. The counting happens once per
        # epoch.
        if not training:
            return
        if loss is not None:
            value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
            if not math.isfinite(value):
                self._diverged(net, f"its loss became {value}")
            if self.start_loss_ is None:
                self.start_loss_ = value
        if isinstance(y_pred, (tuple, list)):
            y_pred = y_pred[0]
        target = unpack_data(batch)[1] if batch is not None else None
        if (isinstance(y_pred, torch.Tensor) and y_pred.dim() == 2
                and isinstance(target, torch.Tensor) and target.dim() == 1
                and len(target) == len(y_pred)):
            self.predicted_.append(y_pred.detach().argmax(1))
            self.targets_.append(target)

    def on_epoch_end(self, net, **kwargs):
        if self.predicted_:
            predicted = torch.cat(self.predicted_).cpu()
            targets = torch.cat([t.reshape(-1).cpu() for t in self.targets_])
            counts = torch.unique(targets, return_counts=True)[1]
            self.single_class_ = bool((predicted == predicted[0]).all()) and counts.numel() > 1
            self.accuracy_ = float((predicted == targets.to(predicted.dtype)).double().mean())
            self.chance_ = float(counts.max()) / len(targets) if counts.numel() > 1 else None
            self.predicted_, self.targets_ = [], []
        epoch_loss = net.history[-1].get("train_loss")
        if epoch_loss is None or self.start_loss_ is None:
            return
        limit = max(self.growth * self.start_loss_, self.start_loss_ + self.margin)
        if epoch_loss > limit:
            self._diverged(
                net, f"its mean training loss grew from {self.start_loss_:.3g} to "
                f"{epoch_loss:.3g}"
            )

    def on_train_end(self, net, **kwargs):
        if self.single_class_:
            warnings.warn(
                f"The query network trained by {self.owner} predicted a single class for "
                "every training sample in its last epoch, although the data has several "
                "classes: it learnt nothing to score with, and the selection is close to "
                "arbitrary. Lower (or raise) the estimator's learning rate (lr), train "
                "longer, or check the inputs' scale.",
                DegenerateTrainingWarning,
                stacklevel=user_stacklevel(),
            )
        elif (self.chance_ is not None and len(net.history) >= self.chance_min_epochs
                and self.accuracy_ < self.chance_ + self.chance_margin * (1 - self.chance_)):
            warnings.warn(
                f"The query network trained by {self.owner} got {self.accuracy_:.1%} of the "
                f"training samples right in its last epoch, near chance ({self.chance_:.1%}, "
                "always predicting the most frequent class): it learnt almost nothing to "
                "score with, and the selection is close to arbitrary. Raise (or lower) the "
                "estimator's learning rate (lr) or max_epochs, shuffle its batches "
                "(iterator_train__shuffle=True), or check the inputs' scale.",
                DegenerateTrainingWarning,
                stacklevel=user_stacklevel(),
            )

    def _diverged(self, net, what):
        raise TrainingDivergedError(
            f"The query network trained by {self.owner} diverged: {what} in epoch "
            f"{len(net.history)}. Scores computed from it would be meaningless. Lower the "
            "estimator's learning rate (lr), add gradient clipping, or check the inputs "
            "for NaN or huge values."
        )


def make_query_net(estimator, *, owner, callbacks=(), **params):
    """A fresh clone of a skorch classifier that sees every training sample.

    The clone trains with ``train_split=None`` (no internal validation split),
    keeps the estimator's ``verbose`` (1 when the pruner's ``verbose`` is 2),
    reports its epochs to the pruner's progress bar, runs on the resolved
    device and is watched by a :class:`QueryTrainingMonitor`; its scoring
    passes see every row in order. The given ``estimator`` is never modified.

    Parameters
    ----------
    estimator : skorch.NeuralNetClassifier
    owner : str
        Name of the class that trains it, used in error messages.
    callbacks : sequence of (name, Callback)
        Extra callbacks, added after the estimator's own.
    **params
        Further parameters set on the clone (e.g. ``max_epochs``).
    """
    net = clone(estimator)
    if net.callbacks == "disable":
        raise ValueError(
            f"{owner} adds callbacks to its query network, so the estimator cannot use "
            "callbacks='disable'; turn off single callbacks with callbacks__<name>=None."
        )
    device = net.get_params(deep=False)["device"]
    check_device(device)
    own_callbacks = list(net.callbacks or [])
    extra = [("skprune_monitor", QueryTrainingMonitor(owner)), *callbacks, *epoch_callbacks()]
    net.set_params(
        train_split=None,
        verbose=query_net_verbose(net.verbose),
        device=resolve_device(device),
        callbacks=own_callbacks + extra,
        # Scores are matched to rows by position: the scoring passes must see
        # every row, in order.
        iterator_valid__shuffle=False,
        iterator_valid__drop_last=False,
        **params,
    )
    if "classes" in net.get_params(deep=False):
        # The query net is given class positions (net_targets), not labels.
        net.set_params(classes=None)
    return net


def train_query_net(estimator, X, y, seed, *, owner, epochs=None, callbacks=(), **params):
    """Clone, check and train a query network: the one path of every query training.

    The clone comes from :func:`make_query_net`; its output and the labels
    are checked on one batch before training (:func:`initialize_checked`);
    training runs under ``seed`` and leaves the global random states alone.

    Parameters
    ----------
    estimator : skorch.NeuralNetClassifier
    X : array-like or torch Dataset
    y : ndarray of shape (n_samples,)
        Class labels, encoded for the loss by :func:`net_targets`.
    seed : int
    owner : str
        Name of the class that trains it, used in messages.
    epochs : int or None, default=None
        Stop after this many epochs of the estimator's schedule (see
        :func:`fit_query_net`); ``0`` initializes without training.
    callbacks : sequence of (name, Callback)
    **params
        Further parameters set on the clone.

    Returns
    -------
    net : skorch.NeuralNetClassifier
        The trained clone.
    kind : {"logits", "probabilities"}
        What its module outputs.
    """
    check_skorch_classifier(estimator, owner)
    kind = require_output_kind(estimator.criterion, owner)
    shared = _SHARED_VALIDATION.get()
    if shared is not None and epochs != 0 and shared.every_epoch:
        predictions = EpochPredictions(shared.X_val)
        callbacks = [*callbacks, ("skprune_shared_validation", predictions)]
    net = make_query_net(estimator, owner=owner, callbacks=callbacks, **params)
    target = net_targets(y)
    if epochs != 0:
        warn_unshuffled_sorted(estimator, target, owner)
    initialize_checked(net, X, target, kind, seed, owner=owner)
    if epochs != 0:
        fit_query_net(net, X, target, seed, epochs=epochs)
        if shared is not None and shared.every_epoch:
            shared.networks.append(predictions.predictions_)
        elif shared is not None:
            # One pass over the validation rows, after training, as MetriQ's
            # own networks predict with epoch="last"; the random states are
            # preserved so that whatever the strategy draws next is unchanged.
            with preserved_random_state():
                shared.networks.append(predict_classes(net, shared.X_val)[np.newaxis])
    return net, kind


class EpochPredictions(Callback):
    """Predicted class index of every validation row after every epoch.

    The prediction pass runs with the global random states preserved: a
    network's training, and so its scores, are the same whether it is
    watched or not.

    Parameters
    ----------
    X_val : array-like or torch Dataset

    Attributes
    ----------
    predictions_ : ndarray of int64, shape (n_epochs, n_val)
    """

    def __init__(self, X_val):
        self.X_val = X_val

    def initialize(self):
        self.predictions_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        # Creating a DataLoader iterator draws from torch's global generator.
        with preserved_random_state():
            self.predictions_.append(predict_classes(net, self.X_val))

    def on_train_end(self, net, **kwargs):
        self.predictions_ = (np.stack(self.predictions_) if self.predictions_
                             else np.zeros((0, _num_rows(self.X_val)), dtype=np.int64))
        self.X_val = None  # a fitted net must not carry the validation data


class _SharedValidation:
    """The validation rows query networks predict, when, and what they predicted."""

    def __init__(self, X_val, every_epoch):
        self.X_val, self.every_epoch = X_val, every_epoch
        self.networks = []


_SHARED_VALIDATION = contextvars.ContextVar("skprune_shared_validation", default=None)


@contextmanager
def predicting_validation(X_val, every_epoch=True):
    """Within, every query network trained also predicts ``X_val``.

    This is how MetriQ reads class recall from a strategy's own query
    networks instead of training networks of its own: the pruner scores
    inside this context, and each network its runs train leaves its
    predictions, in training order.

    Parameters
    ----------
    X_val : array-like or torch Dataset
    every_epoch : bool, default=True
        Predict after every epoch (to find the most accurate one), or only
        once, after training: one pass over ``X_val`` instead of one per
        epoch, all that a recall read after the last epoch needs.

    Yields
    ------
    list of ndarray of int64, shape (n_epochs, n_val)
        One entry per network trained (networks trained for 0 epochs leave
        none); with ``every_epoch=False``, ``n_epochs`` is 1.
    """
    shared = _SharedValidation(X_val, every_epoch)
    token = _SHARED_VALIDATION.set(shared)
    try:
        yield shared.networks
    finally:
        _SHARED_VALIDATION.reset(token)


def warn_unshuffled_sorted(estimator, y, owner):
    """Warn when ``estimator`` trains on ``y`` in order and ``y`` is sorted by class.

    skorch does not shuffle unless ``iterator_train__shuffle=True``; a
    torchvision ``ImageFolder`` (and any fold of it that scikit-learn's
    splitters take without shuffling) lists its rows class by class. Every
    minibatch then holds one class, the network chases the class of the last
    batches, and its scores say little.

    Parameters
    ----------
    estimator : skorch.NeuralNetClassifier
        The estimator as given (its query clones may order batches otherwise).
    y : ndarray of shape (n_samples,)
    owner : str
        Name of the class whose query network trains, used in the message.
    """
    params = estimator.get_params_for("iterator_train")
    if params.get("shuffle") or any(
            params.get(name) is not None for name in ("sampler", "batch_sampler")):
        return
    batch_size = params.get("batch_size", estimator.batch_size)
    n_classes = np.unique(y).size
    if n_classes < 2 or batch_size == -1 or batch_size >= len(y):
        return
    if np.count_nonzero(y[1:] != y[:-1]) > n_classes - 1:
        return
    warnings.warn(
        f"{owner} trains its query network on {len(y)} rows sorted by class (each class "
        "is one block, as an ImageFolder lists them) without shuffling: every minibatch "
        "holds a single class, so the network learns the class of its last batches and "
        "its scores are close to arbitrary. Set iterator_train__shuffle=True on the "
        "estimator (or shuffle the rows before pruning).",
        DegenerateTrainingWarning,
        stacklevel=user_stacklevel(),
    )


#: The name of the recorder among a recording query net's callbacks.
RECORDER_NAME = "skprune_dynamics_recorder"


def record_query_training(estimator, X, y, seed, *, owner, record="train", margins=False):
    """Train a query clone of ``estimator`` on ``(X, y)`` and record its dynamics.

    The clone trains over the estimator's full schedule through the one
    query path (:func:`train_query_net`), so every row of ``X`` is recorded
    every epoch, by a :class:`~skprune.callbacks.TrainingDynamicsRecorder`.
    With ``record="train"`` its batches come from a
    :class:`~skprune.callbacks.PositionBatchSampler` that keeps the
    estimator's batch size and shuffling (its ``drop_last`` is ignored, so
    that no sample misses an epoch). The estimator is never modified.

    Parameters
    ----------
    estimator : skorch.NeuralNetClassifier
    X : array-like or torch Dataset
    y : ndarray of shape (n_samples,)
    seed : int
        Seeds the network's initialisation and the shuffling.
    owner : str
        Name of the pruner, used in error messages.
    record : {"train", "eval"}, default="train"
        See :class:`~skprune.callbacks.TrainingDynamicsRecorder`.
    margins : bool, default=False
        Also record margins.

    Returns
    -------
    recorder : skprune.recording.DynamicsRecorder
        ``correct_``, ``proba_`` and ``margin_``, each of shape
        ``(n_epochs, n_samples)``.

    Raises
    ------
    TrainingDivergedError
        If the training loss, or a recorded probability, is not finite.
    """
    check_skorch_classifier(estimator, owner)
    params = {}
    if record == "train":
        iterator_params = estimator.get_params_for("iterator_train")
        if any(iterator_params.get(name) is not None for name in ("sampler", "batch_sampler")):
            raise ValueError(
                f"{owner} presents every sample once per epoch and tracks which samples "
                "each batch holds, so the estimator cannot use its own "
                "iterator_train__sampler or iterator_train__batch_sampler."
            )
        batch_size = iterator_params.get("batch_size", estimator.batch_size)
        if batch_size == -1:
            batch_size = y.shape[0]
        params = {
            "iterator_train__batch_sampler": PositionBatchSampler(
                y.shape[0], batch_size, shuffle=bool(iterator_params.get("shuffle", False))
            ),
            "iterator_train__batch_size": 1,
            "iterator_train__shuffle": False,
            "iterator_train__drop_last": False,
        }
    net, _ = train_query_net(
        estimator, X, y, seed, owner=owner,
        callbacks=[(RECORDER_NAME, TrainingDynamicsRecorder(record=record, margins=margins))],
        **params,
    )
    recorder = dict(net.callbacks_)[RECORDER_NAME].recorder_
    if not np.isfinite(recorder.proba_).all():
        raise TrainingDivergedError(
            f"The query network trained by {owner} diverged: it predicted non-finite "
            "probabilities. Scores computed from them would be meaningless. Lower the "
            "estimator's learning rate (lr), add gradient clipping, or check the inputs "
            "for NaN or huge values."
        )
    return recorder


def fit_query_net(net, X, y, seed, epochs=None):
    """Fit ``net`` on ``(X, y)`` with the global RNGs seeded by ``seed``; returns ``net``.

    ``epochs`` stops training early while callbacks still see the net's
    ``max_epochs``, so that a learning-rate schedule keeps the shape of the
    full run (early-training scores read the start of the real schedule).
    """
    target = None if y is None else net_targets(y)
    with seeded(seed), planned_epochs(epochs):
        net.fit(with_position_labels(net_inputs(X), target), target, epochs=epochs)
    return net


def initialize_checked(net, X, target, kind, seed, owner="skprune"):
    """Initialize ``net`` under ``seed`` and check its output on one batch.

    A module whose output is not ``(n_samples, n_classes)``, labels outside
    its outputs, and inputs of a dtype or width the module cannot take are
    reported here, before any training, rather than as a torch error (on
    CUDA, a device-side assert) mid-epoch. The forward pass also creates
    the weights of lazy layers under the seed.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier
        A query net from :func:`make_query_net`.
    X : array-like or Dataset
    target : ndarray of int64
        Labels as the net sees them (:func:`net_targets`).
    kind : {"logits", "probabilities"}
        What the module outputs.
    seed : int
    owner : str, default="skprune"
        Name of the class that trains the net, used in messages.
    """
    with seeded(seed):
        net.initialize()
    with eval_mode(net.module_) as module, seeded(seed):
        inputs, batch_target = next(iter(eval_batches(net, net_inputs(X), target)))
        try:
            output = forward(module, inputs)
        except (RuntimeError, TypeError) as exc:
            described = describe_forward_error(exc, X, owner)
            if described is None:
                raise
            raise described from exc
    check_class_outputs(output, batch_target, kind)
    check_labels(torch.tensor(target), output.shape[1])


def eval_batches(net, X, target):
    """``(inputs, targets)`` batches in order, on the net's device, without augmentation.

    The inputs come from the net's validation iterator (its non-augmenting
    path, never shuffled); the targets are the labels given to the pruner.
    Iterate it inside :func:`~skprune.utils._random_state.preserved_random_state`
    (a pruner's fit does): creating a DataLoader iterator draws from torch's
    global generator.
    """
    start = 0
    labels = torch.tensor(target, dtype=torch.int64)
    dataset = net.get_dataset(X, target)
    for batch in net.get_iterator(dataset, training=False):
        inputs, _ = unpack_data(batch)
        inputs = to_device(inputs, net.device)
        n = batch_length(inputs)
        yield inputs, labels[start:start + n].to(inputs_device(inputs))
        start += n


def predict_classes(net, X):
    """Arg-max class index of every row of ``X``, in eval mode and without augmentation.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier
        An initialized net.
    X : array-like or torch Dataset

    Returns
    -------
    ndarray of int64, shape (n_samples,)
    """
    predicted = []
    with eval_mode(net.module_) as module:
        dummy = np.zeros(_num_rows(X), dtype=np.int64)
        for inputs, _ in eval_batches(net, net_inputs(X), dummy):
            predicted.append(_first(forward(module, inputs)).argmax(1).cpu())
    return torch.cat(predicted).numpy() if predicted else np.zeros(0, dtype=np.int64)


def _first(output):
    # skorch predicts from the first output of modules that return several.
    return output[0] if isinstance(output, (tuple, list)) else output


def _num_rows(X):
    return len(X) if isinstance(X, torch.utils.data.Dataset) else X.shape[0]


def penultimate_features(net, X, target, owner):
    """The input of the network's final ``torch.nn.Linear`` layer for every row of ``X``.

    Computed in eval mode over the net's non-augmenting iterator.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier
        An initialized net.
    X : array-like or torch Dataset
    target : ndarray of int64
        Labels as the net sees them.
    owner : str
        Name of the class that reads them, used in messages.

    Returns
    -------
    ndarray of float32, shape (n_samples, n_features)
    """
    module = net.module_
    batches = iter(eval_batches(net, net_inputs(X), target))
    first = next(batches, None)
    if first is None:
        return np.zeros((0, 0), dtype=np.float32)
    layer = final_linear(module, first[0], owner)
    captured = []
    hook = layer.register_forward_hook(
        lambda layer, args, output: captured.append(args[0].detach().flatten(1).float().cpu())
    )
    try:
        with eval_mode(module):
            for inputs, _ in itertools.chain([first], batches):
                forward(module, inputs)
    finally:
        hook.remove()
    return torch.cat(captured).numpy()


def probability_batches(net, X, target, kind):
    """``(probabilities, targets)`` of every batch of ``X``, in order, as host arrays.

    Computed in eval mode over the net's non-augmenting iterator, one batch
    at a time, so that a score of the probabilities needs no
    ``(n_samples, n_classes)`` array in memory.

    Parameters
    ----------
    net, X, target
        An initialized net, the data and its labels as the net sees them.
    kind : {"logits", "probabilities"}
        What the module outputs.

    Yields
    ------
    proba : ndarray of float64, shape (batch_size, n_classes)
    target : ndarray of int64, shape (batch_size,)
    """
    with eval_mode(net.module_) as module:
        for inputs, batch_target in eval_batches(net, net_inputs(X), target):
            output = _first(forward(module, inputs))
            check_class_outputs(output, batch_target, kind)
            output = output.double()
            proba = output.softmax(1) if kind == "logits" else output
            yield proba.cpu().numpy(), batch_target.cpu().numpy()

