"""Training the query networks that pruners and quotas learn from.

Every strategy that needs a trained model (scores, MetriQ recalls) goes through
these helpers, so that cloning, seeding, device resolution and divergence
checks behave the same everywhere.
"""

from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone, is_classifier
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import to_device

from .gradients import _check_class_outputs, _check_labels, _forward


class TrainingDivergedError(RuntimeError):
    """A query network's training loss became NaN or infinite."""


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
            "skorch.NeuralNetClassifier(MyModule, max_epochs=20)), because it reads "
            f"per-sample training dynamics from a torch network; got "
            f"{type(estimator).__name__}."
        )


def resolve_device(device):
    """Turn ``"auto"`` into ``"cuda"`` when CUDA is available, else ``"cpu"``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def net_targets(y):
    """Labels a torch classification loss accepts: non-negative ``int64``.

    Non-negative integer labels are kept as they are, so they still index the
    network's output units; any other labels are replaced by their position
    among the sorted classes.
    """
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and (y.size == 0 or y.min() >= 0):
        return y.astype(np.int64, copy=False)
    return np.unique(y, return_inverse=True)[1].astype(np.int64)


class DivergenceGuard(Callback):
    """Stop a query training as soon as a batch loss is not finite.

    Parameters
    ----------
    owner : str
        Name of the class whose query training is guarded, used in the message.
    """

    def __init__(self, owner="skprune"):
        self.owner = owner

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if loss is not None and not torch.isfinite(torch.as_tensor(loss)).all():
            epoch = len(net.history)
            raise TrainingDivergedError(
                f"The query network trained by {self.owner} diverged: its loss became "
                f"{float(torch.as_tensor(loss).detach())} in epoch {epoch}. Scores computed from it would be "
                "meaningless. Lower the estimator's learning rate (lr), add gradient "
                "clipping, or check the inputs for NaN or huge values."
            )


def make_query_net(estimator, *, owner, callbacks=(), **params):
    """A fresh clone of a skorch classifier that sees every training sample.

    The clone trains with ``train_split=None`` (no internal validation split),
    prints nothing, runs on the resolved device and stops with a clear error
    if its loss diverges. The given ``estimator`` is never modified.

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
    own_callbacks = list(net.callbacks or [])
    extra = [("skprune_divergence_guard", DivergenceGuard(owner)), *callbacks]
    net.set_params(
        train_split=None,
        verbose=0,
        device=resolve_device(net.device),
        callbacks=own_callbacks + extra,
        **params,
    )
    return net


@contextmanager
def seeded(seed):
    """Context in which torch's global RNGs are seeded, then restored.

    Parameters
    ----------
    seed : int
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def net_inputs(X):
    """``X`` as a torch module expects it: float64 becomes float32.

    Sparse input becomes a scipy CSR *matrix*: skorch densifies sparse
    batches one row at a time, which needs 2-D rows (a row of a sparse
    array is 1-D).
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    if isinstance(X, np.ndarray) or sp.issparse(X):
        if X.dtype == np.float64:
            return X.astype(np.float32)
    return X


def fit_query_net(net, X, y, seed, epochs=None):
    """Fit ``net`` on ``(X, y)`` with torch seeded by ``seed``; returns ``net``.

    ``epochs`` stops training early while callbacks still see the net's
    ``max_epochs``, so that a learning-rate schedule keeps the shape of the
    full run (early-training scores read the start of the real schedule).
    """
    with seeded(seed):
        net.fit(net_inputs(X), None if y is None else net_targets(y), epochs=epochs)
    return net


def initialize_checked(net, X, target, kind, seed):
    """Initialize ``net`` under ``seed`` and check its output on one batch.

    A module whose output is not ``(n_samples, n_classes)``, or labels
    outside its outputs, are reported here, before any training, rather than
    as a torch indexing error (on CUDA, a device-side assert) mid-epoch. The
    forward pass also creates the weights of lazy layers under the seed.

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
    """
    with seeded(seed):
        net.initialize()
    module = net.module_
    training = module.training
    module.eval()
    try:
        with seeded(seed), torch.no_grad():
            inputs, batch_target = next(iter(eval_batches(net, net_inputs(X), target)))
            output = _forward(module, inputs)
    finally:
        module.train(training)
    _check_class_outputs(output, batch_target, kind)
    _check_labels(torch.tensor(target), output.shape[1])


def eval_batches(net, X, target):
    """``(inputs, targets)`` batches in order, on the net's device, without augmentation.

    The inputs come from the net's validation iterator (its non-augmenting
    path, never shuffled); the targets are the labels given to the pruner.
    """
    start = 0
    labels = torch.tensor(target, dtype=torch.int64)
    dataset = net.get_dataset(X, target)
    for batch in net.get_iterator(dataset, training=False):
        inputs, _ = unpack_data(batch)
        inputs = to_device(inputs, net.device)
        n = _batch_length(inputs)
        yield inputs, labels[start:start + n].to(_inputs_device(inputs))
        start += n


def _batch_length(inputs):
    if isinstance(inputs, dict):
        return len(next(iter(inputs.values())))
    if isinstance(inputs, (list, tuple)):
        return len(inputs[0])
    return len(inputs)


def _inputs_device(inputs):
    if isinstance(inputs, dict):
        inputs = next(iter(inputs.values()))
    elif isinstance(inputs, (list, tuple)):
        inputs = inputs[0]
    return inputs.device
