"""skorch callbacks that record per-sample training dynamics.

skorch's ``on_batch_end`` hands callbacks the batch's predictions but not
which samples they belong to. Instead of changing what the module receives
(which would tie the recorder to modules that accept an extra index input),
the positions travel through the data loader's batch sampler:
:class:`PositionBatchSampler` draws each epoch's order itself and keeps it,
and :class:`TrainingDynamicsRecorder` walks through that order as batches
come back. A ``DataLoader`` returns batches in the order its sampler yields
them, even with worker processes and prefetching, so the two stay aligned
with any module, dataset and number of workers.
"""

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from torch.utils.data import Sampler

from .utils._modules import OUTPUT_KINDS, output_kind

__all__ = ["PositionBatchSampler", "TrainingDynamicsRecorder", "output_kind"]

class PositionBatchSampler(Sampler):
    """Batches of dataset positions that remember each epoch's order.

    Every epoch it yields the positions ``0 .. n_samples - 1`` in batches of
    ``batch_size``, in a fresh random order drawn from torch's global
    random number generator when ``shuffle=True`` (so ``torch.manual_seed``
    makes it reproducible, as with skorch's default shuffling), and keeps
    that order in ``order_`` for :class:`TrainingDynamicsRecorder`. It never
    drops a last, smaller batch: every sample is presented once per epoch.

    Pass it to a skorch net as ``iterator_train__batch_sampler``, together
    with ``iterator_train__batch_size=1`` and
    ``iterator_train__shuffle=False`` (a ``DataLoader`` refuses a batch
    sampler combined with its own batching or shuffling).

    Parameters
    ----------
    n_samples : int
        Length of the training dataset.
    batch_size : int, default=128
        Samples per batch; the last batch of an epoch may be smaller.
    shuffle : bool, default=True
        Whether every epoch draws a new random order.

    Attributes
    ----------
    order_ : ndarray of shape (n_samples,)
        Positions in the order of the current (latest) epoch.

    See Also
    --------
    TrainingDynamicsRecorder : the callback that reads ``order_``.

    Examples
    --------
    >>> import torch
    >>> from skprune.callbacks import PositionBatchSampler
    >>> sampler = PositionBatchSampler(5, batch_size=2, shuffle=False)
    >>> list(sampler), len(sampler)
    ([[0, 1], [2, 3], [4]], 3)
    >>> _ = torch.manual_seed(0)
    >>> batches = list(PositionBatchSampler(5, batch_size=2))
    >>> sorted(sum(batches, []))
    [0, 1, 2, 3, 4]
    """

    def __init__(self, n_samples, batch_size=128, shuffle=True):
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __iter__(self):
        n_samples, batch_size = int(self.n_samples), int(self.batch_size)
        if self.shuffle:
            order = torch.randperm(n_samples).numpy()
        else:
            order = np.arange(n_samples)
        self.order_ = order
        for start in range(0, n_samples, batch_size):
            yield order[start:start + batch_size].tolist()

    def __len__(self):
        return -(-int(self.n_samples) // int(self.batch_size))


class TrainingDynamicsRecorder(Callback):
    """Record, for every sample and epoch, correctness and true-class probability.

    With ``record="train"`` both are read from the training forward pass
    (train mode, before the optimizer step), so recording adds no forward
    pass: per batch the recorder only keeps a reference to the detached
    predictions, and converts them in large chunks (one device-to-host copy
    per chunk). Sample positions come from a :class:`PositionBatchSampler`
    that must be the net's ``iterator_train__batch_sampler``; positions are
    rows of the data given to ``fit``, not global ids, so the recorder works
    on cross-validation folds.

    With ``record="eval"`` the training pass is ignored; after every epoch
    the training data goes once more through the net's validation iterator,
    without gradients and in eval mode (dropout off, BatchNorm running
    statistics), as the network would predict. Augmentation done by the
    training iterator is not applied in that pass. No batch sampler is
    needed.

    The module's output (its first output, if it returns several) must be
    ``(batch, n_classes)`` class scores. Whether they are probabilities or
    logits is read from the net's criterion (``output="auto"``, see
    :func:`output_kind`) or given explicitly.

    Parameters
    ----------
    record : {"train", "eval"}, default="train"
        Which forward pass is recorded.
    output : {"auto", "probabilities", "logits"}, default="auto"
        What the module outputs.
    margins : bool, default=False
        Also record every sample's margin (Pleiss et al.'s, for the area
        under the margin): its assigned class's logit minus the largest
        other logit. For a module that outputs probabilities, the same
        difference of log-probabilities (equal, as log-softmax shifts every
        logit of a row by the same amount).

    Attributes
    ----------
    correct_ : ndarray of shape (n_epochs, n_samples), dtype bool
        Whether the predicted class (the arg-max) was the true class.
    proba_ : ndarray of shape (n_epochs, n_samples), dtype float32
        Predicted probability of the true class.
    margin_ : ndarray of shape (n_epochs, n_samples), dtype float32, or None
        Margin of the true class, with ``margins=True``.
    n_epochs_ : int
        Number of epochs recorded.

    See Also
    --------
    PositionBatchSampler : the batch sampler that carries sample positions.
    ForgettingPruner, DynamicUncertaintyPruner : pruners scoring these records.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skorch import NeuralNetClassifier
    >>> from skprune.callbacks import PositionBatchSampler, TrainingDynamicsRecorder
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> _ = torch.manual_seed(0)
    >>> recorder = TrainingDynamicsRecorder()
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=64, module__out_features=10,
    ...     criterion=torch.nn.CrossEntropyLoss, max_epochs=3, lr=0.5,
    ...     train_split=None, verbose=0, callbacks=[recorder],
    ...     iterator_train__batch_sampler=PositionBatchSampler(len(X), 64),
    ...     iterator_train__batch_size=1, iterator_train__shuffle=False,
    ... ).fit(X, y)
    >>> recorder.correct_.shape, recorder.proba_.shape
    ((3, 1797), (3, 1797))
    >>> bool(recorder.correct_[-1].mean() > recorder.correct_[0].mean())
    True
    """

    #: Predictions buffered before they are reduced to two numbers a sample;
    #: large enough to amortise the per-chunk work, small enough not to hold
    #: an epoch of (n_samples, n_classes) outputs on the device.
    chunk_rows = 1 << 14

    def __init__(self, record="train", output="auto", margins=False):
        self.record = record
        self.output = output
        self.margins = margins

    def initialize(self):
        if self.record not in ("train", "eval"):
            raise ValueError(f"record must be 'train' or 'eval'; got {self.record!r}.")
        if self.output != "auto" and self.output not in OUTPUT_KINDS:
            raise ValueError(
                f"output must be 'auto', 'probabilities' or 'logits'; got {self.output!r}."
            )
        self.correct_ = None
        self.proba_ = None
        self.margin_ = None
        self.n_epochs_ = 0
        self.output_ = None
        self.batch_sampler_ = None
        self.dataset_ = None
        self.pending_ = []
        self.pending_rows_ = 0
        self.cursor_ = 0
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.output_ = self._resolve_output(net)
        dataset = net.get_dataset(X, y)
        n_samples = len(dataset)
        if self.record == "train":
            sampler = net.get_params_for("iterator_train").get("batch_sampler")
            if not isinstance(sampler, PositionBatchSampler):
                raise ValueError(
                    "TrainingDynamicsRecorder(record='train') needs to know which samples "
                    "each batch holds: pass iterator_train__batch_sampler="
                    "PositionBatchSampler(n_samples, batch_size), "
                    "iterator_train__batch_size=1 and iterator_train__shuffle=False "
                    f"to the net; got batch_sampler={sampler!r}."
                )
            if sampler.n_samples != n_samples:
                raise ValueError(
                    f"The PositionBatchSampler covers {sampler.n_samples} samples but the "
                    f"net is fitted on {n_samples}; create it with n_samples={n_samples}."
                )
            self.batch_sampler_ = sampler
        else:
            self.dataset_ = dataset
        if self.correct_ is None or self.correct_.shape[1] != n_samples:
            self.correct_ = np.zeros((0, n_samples), dtype=bool)
            self.proba_ = np.zeros((0, n_samples), dtype=np.float32)
            self.margin_ = np.zeros((0, n_samples), dtype=np.float32) if self.margins else None
            self.n_epochs_ = 0
        self._reserve(self.n_epochs_ + max(int(net.max_epochs), 1))

    def on_epoch_begin(self, net, **kwargs):
        self._reserve(self.n_epochs_ + 1)
        self.pending_, self.pending_rows_, self.cursor_ = [], 0, 0

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not training or self.record != "train":
            return
        y_pred = _first_output(y_pred)
        self.pending_.append((y_pred.detach(), unpack_data(batch)[1]))
        self.pending_rows_ += len(y_pred)
        if self.pending_rows_ >= self.chunk_rows:
            self._flush(self.batch_sampler_.order_)

    def on_epoch_end(self, net, **kwargs):
        if self.record == "train":
            self._flush(self.batch_sampler_.order_)
        else:
            self._eval_pass(net)
        self.n_epochs_ += 1

    def on_train_end(self, net, **kwargs):
        # Trim the rows reserved for epochs that did not run (early stopping)
        # and drop the data reference, so that the fitted net does not carry
        # (or pickle) a copy of the training data.
        self.correct_ = self.correct_[: self.n_epochs_]
        self.proba_ = self.proba_[: self.n_epochs_]
        if self.margin_ is not None:
            self.margin_ = self.margin_[: self.n_epochs_]
        self.dataset_ = None
        self.pending_ = []

    def _resolve_output(self, net):
        if self.output != "auto":
            return self.output
        kind = output_kind(net.criterion_)
        if kind is None:
            raise ValueError(
                "TrainingDynamicsRecorder cannot tell whether the module outputs "
                f"probabilities or logits with criterion {type(net.criterion_).__name__}. "
                "Use NLLLoss on probabilities (skorch's default) or CrossEntropyLoss on "
                "logits, or pass output='probabilities' or output='logits'."
            )
        return kind

    def _reserve(self, n_epochs):
        """Grow the record arrays to hold at least ``n_epochs`` rows."""
        if self.correct_.shape[0] >= n_epochs:
            return
        extra = n_epochs - self.correct_.shape[0]
        n_samples = self.correct_.shape[1]
        self.correct_ = np.concatenate([self.correct_, np.zeros((extra, n_samples), bool)])
        self.proba_ = np.concatenate(
            [self.proba_, np.full((extra, n_samples), np.nan, dtype=np.float32)]
        )
        if self.margin_ is not None:
            self.margin_ = np.concatenate(
                [self.margin_, np.full((extra, n_samples), np.nan, dtype=np.float32)]
            )

    def _flush(self, order):
        """Reduce the buffered predictions and write them at their positions."""
        if not self.pending_:
            return
        y_pred = torch.cat([pred for pred, _ in self.pending_])
        if y_pred.ndim != 2:
            raise ValueError(
                "TrainingDynamicsRecorder expects the module to output (batch, n_classes) "
                f"class scores; got an output of shape {tuple(y_pred.shape)}."
            )
        targets = torch.cat([torch.as_tensor(target) for _, target in self.pending_])
        targets = targets.to(y_pred.device, dtype=torch.int64).reshape(-1, 1)
        with torch.no_grad():
            y_pred = y_pred.float()
            top, predicted = y_pred.max(dim=1, keepdim=True)
            correct = predicted == targets
            if self.output_ == "logits":
                # A softmax of the true class only, shifted by the row maximum
                # for stability: on CPU it is several times faster than
                # log_softmax over rows of a few classes.
                proba = (y_pred.gather(1, targets) - top).exp_()
                proba /= (y_pred - top).exp_().sum(dim=1, keepdim=True)
            else:
                proba = y_pred.gather(1, targets)
            columns = [proba, correct.float()]
            if self.margin_ is not None:
                columns.append(_margin(y_pred, targets, self.output_))
            # One device-to-host copy for every quantity.
            values = torch.cat(columns, dim=1).cpu().numpy()
        positions = order[self.cursor_:self.cursor_ + len(values)]
        self.proba_[self.n_epochs_, positions] = values[:, 0]
        self.correct_[self.n_epochs_, positions] = values[:, 1] > 0.5
        if self.margin_ is not None:
            self.margin_[self.n_epochs_, positions] = values[:, 2]
        self.cursor_ += len(values)
        self.pending_, self.pending_rows_ = [], 0

    def _eval_pass(self, net):
        order = np.arange(len(self.dataset_))
        for batch in net.get_iterator(self.dataset_, training=False):
            y_pred = _first_output(net.evaluation_step(batch, training=False))
            self.pending_.append((y_pred, unpack_data(batch)[1]))
            self.pending_rows_ += len(y_pred)
            if self.pending_rows_ >= self.chunk_rows:
                self._flush(order)
        self._flush(order)


def _margin(y_pred, targets, kind):
    """The true class's logit (log-probability) minus the largest other one, per row."""
    if kind == "probabilities":
        y_pred = torch.log(y_pred.clamp_min(torch.finfo(y_pred.dtype).tiny))
    assigned = y_pred.gather(1, targets)
    others = y_pred.scatter(1, targets, float("-inf"))
    return assigned - others.max(dim=1, keepdim=True).values


def _first_output(y_pred):
    # skorch predicts from the first output of modules that return several.
    return y_pred[0] if isinstance(y_pred, (tuple, list)) else y_pred
