"""skorch callbacks that record per-sample training dynamics.

They adapt :class:`skprune.recording.DynamicsRecorder`, which works with any
training loop, to skorch's nets.

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

from .recording import DynamicsRecorder
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

    The skorch adapter of :class:`~skprune.recording.DynamicsRecorder`: it
    hands that recorder every training batch with its sample positions and
    ends its epochs. With ``record="train"`` both are read from the training
    forward pass (train mode, before the optimizer step), so recording adds
    no forward pass and no per-batch work beyond keeping a reference to the
    predictions. Sample positions come from a :class:`PositionBatchSampler`
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
        Also record every sample's margin, as
        :class:`~skprune.recording.DynamicsRecorder` does.

    Attributes
    ----------
    recorder_ : DynamicsRecorder
        The recorder, kept across ``partial_fit`` calls on data of the same
        length.
    correct_, proba_, margin_, n_epochs_
        The recorder's records (see
        :class:`~skprune.recording.DynamicsRecorder`), each of shape
        ``(n_epochs, n_samples)``.

    See Also
    --------
    PositionBatchSampler : the batch sampler that carries sample positions.
    skprune.recording.DynamicsRecorder : the recorder, for any training loop.
    skprune.ForgettingPruner, skprune.DynamicUncertaintyPruner : pruners
        scoring these records.

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
        self.recorder_ = None
        self.batch_sampler_ = None
        self.dataset_ = None
        self.cursor_ = 0
        return self

    @property
    def correct_(self):
        return None if self.recorder_ is None else self.recorder_.correct_

    @property
    def proba_(self):
        return None if self.recorder_ is None else self.recorder_.proba_

    @property
    def margin_(self):
        return None if self.recorder_ is None else self.recorder_.margin_

    @property
    def n_epochs_(self):
        return 0 if self.recorder_ is None else self.recorder_.n_epochs_

    def on_train_begin(self, net, X=None, y=None, **kwargs):
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
        if self.recorder_ is None or self.recorder_.n_samples != n_samples:
            self.recorder_ = DynamicsRecorder(
                n_samples, output=self._resolve_output(net), margins=self.margins
            )

    def on_epoch_begin(self, net, **kwargs):
        self.cursor_ = 0

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not training or self.record != "train":
            return
        if isinstance(y_pred, (tuple, list)):
            y_pred = y_pred[0]
        start, self.cursor_ = self.cursor_, self.cursor_ + len(y_pred)
        positions = self.batch_sampler_.order_[start:self.cursor_]
        self.recorder_.update(positions, y_pred, unpack_data(batch)[1])

    def on_epoch_end(self, net, **kwargs):
        if self.record == "eval":
            start = 0
            for batch in net.get_iterator(self.dataset_, training=False):
                y_pred = net.evaluation_step(batch, training=False)
                if isinstance(y_pred, (tuple, list)):
                    y_pred = y_pred[0]
                self.recorder_.update(np.arange(start, start + len(y_pred)), y_pred,
                                      unpack_data(batch)[1])
                start += len(y_pred)
        self.recorder_.end_epoch()

    def on_train_end(self, net, **kwargs):
        # Drop the data reference, so that the fitted net does not carry (or
        # pickle) a copy of the training data.
        self.dataset_ = None

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
