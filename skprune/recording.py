"""Recording per-sample training dynamics from any training loop.

:class:`DynamicsRecorder` takes, batch after batch, the positions of the
samples, the network's outputs and the targets, and keeps for every sample
and epoch whether it was classified correctly, its true-class probability
and (optionally) its margin: the records that Forgetting, Dynamic
Uncertainty and AUM score (:mod:`skprune.scores`). It needs nothing but
torch tensors (or arrays), so it serves a plain PyTorch loop, Lightning or
any other trainer; skprune's own pruners use it through the skorch callback
:class:`skprune.callbacks.TrainingDynamicsRecorder`.
"""

import numpy as np
import torch

from .utils._modules import OUTPUT_KINDS

__all__ = ["DynamicsRecorder"]


class DynamicsRecorder:
    """Record, for every sample and epoch, correctness and true-class probability.

    Call :meth:`update` once per batch with the batch's sample positions,
    the network's outputs and the targets, and :meth:`end_epoch` after each
    epoch. Every sample must be presented exactly once per epoch (a
    ``DataLoader`` with ``drop_last=False`` and no sampling with
    replacement); :meth:`end_epoch` raises otherwise, rather than let a
    missing presentation count as a mistake.

    :meth:`update` only keeps a reference to the detached outputs: no
    computation and no device-to-host copy per batch, so it adds no
    synchronisation to a GPU training loop. Buffered outputs are reduced to
    a few numbers per sample in chunks of :attr:`chunk_rows` rows, with one
    copy to the host per chunk.

    Parameters
    ----------
    n_samples : int
        Number of samples in the training set; positions run from 0 to
        ``n_samples - 1``.
    output : {"logits", "probabilities"}, default="logits"
        What the network outputs: logits (trained with
        ``torch.nn.CrossEntropyLoss``) or class probabilities (a softmax at
        its end).
    margins : bool, default=False
        Also record every sample's margin (Pleiss et al.'s, for the area
        under the margin): its assigned class's logit minus the largest
        other logit. For probabilities, the same difference of
        log-probabilities (equal, as log-softmax shifts every logit of a row
        by the same amount).

    Attributes
    ----------
    correct_ : ndarray of shape (n_epochs, n_samples), dtype bool
        Whether the predicted class (the arg-max) was the true class.
    proba_ : ndarray of shape (n_epochs, n_samples), dtype float32
        Predicted probability of the true class.
    margin_ : ndarray of shape (n_epochs, n_samples), dtype float32, or None
        Margin of the true class, with ``margins=True``.
    n_epochs_ : int
        Number of epochs recorded (ended with :meth:`end_epoch`).

    See Also
    --------
    skprune.callbacks.TrainingDynamicsRecorder : this recorder as a skorch callback.
    skprune.scores.forgetting_events, skprune.scores.dynamic_uncertainty,
    skprune.scores.area_under_margin : scores of the records.

    Examples
    --------
    >>> import torch
    >>> from skprune.recording import DynamicsRecorder
    >>> recorder = DynamicsRecorder(n_samples=4)
    >>> for epoch in range(2):
    ...     for indices in ([2, 0], [3, 1]):
    ...         logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    ...         recorder.update(indices, logits, torch.tensor([0, 0]))
    ...     recorder.end_epoch()
    >>> recorder.correct_
    array([[False, False,  True,  True],
           [False, False,  True,  True]])
    >>> recorder.proba_.round(3)
    array([[0.119, 0.119, 0.881, 0.881],
           [0.119, 0.119, 0.881, 0.881]], dtype=float32)
    """

    #: Rows buffered before they are reduced: large enough to amortise the
    #: per-chunk work, small enough not to hold an epoch of
    #: (n_samples, n_classes) outputs on the device.
    chunk_rows = 1 << 14

    def __init__(self, n_samples, *, output="logits", margins=False):
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) \
                or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
        if output not in OUTPUT_KINDS:
            raise ValueError(
                f"output must be 'logits' or 'probabilities'; got {output!r}."
            )
        self.n_samples = int(n_samples)
        self.output = output
        self.margins = bool(margins)
        self.n_epochs_ = 0
        self._correct = np.zeros((0, self.n_samples), dtype=bool)
        self._proba = np.zeros((0, self.n_samples), dtype=np.float32)
        self._margin = np.zeros((0, self.n_samples), dtype=np.float32)
        self._pending = []
        self._pending_rows = 0
        self._epoch_rows = 0
        self._seen = np.zeros(self.n_samples, dtype=bool)

    @property
    def correct_(self):
        return self._correct[: self.n_epochs_]

    @property
    def proba_(self):
        return self._proba[: self.n_epochs_]

    @property
    def margin_(self):
        return self._margin[: self.n_epochs_] if self.margins else None

    def update(self, indices, outputs, targets):
        """Record one batch.

        Parameters
        ----------
        indices : array-like or tensor of int, shape (batch_size,)
            Position of every sample of the batch in the training set.
        outputs : tensor or array of shape (batch_size, n_classes)
            The network's outputs for the batch (with gradients or not; they
            are detached). A tuple or list counts by its first element.
        targets : array-like or tensor of int, shape (batch_size,)
            The batch's class indices.
        """
        if isinstance(outputs, (tuple, list)):
            outputs = outputs[0]
        outputs = outputs.detach() if isinstance(outputs, torch.Tensor) else outputs
        self._pending.append((indices, outputs, targets))
        self._pending_rows += len(outputs)
        if self._pending_rows >= self.chunk_rows:
            self._flush()

    def end_epoch(self):
        """Close the current epoch: every sample must have been recorded once.

        Raises
        ------
        ValueError
            If some samples were not presented in this epoch, or some more
            than once.
        """
        self._flush()
        missing = self.n_samples - int(np.count_nonzero(self._seen))
        repeated = self._epoch_rows - (self.n_samples - missing)
        self._seen[:] = False
        self._epoch_rows = 0
        if missing or repeated:
            raise ValueError(
                f"Epoch {self.n_epochs_ + 1} recorded {missing} of the {self.n_samples} "
                f"samples never and {repeated} presentations more than once. Present every "
                "sample exactly once per epoch (e.g. DataLoader(..., drop_last=False), no "
                "sampling with replacement) and pass each batch's positions as indices."
            )
        self.n_epochs_ += 1

    def _reserve(self):
        """Grow the record arrays (doubling) so that the current epoch has a row."""
        if self._correct.shape[0] > self.n_epochs_:
            return
        extra = max(1, self._correct.shape[0])
        shape = (extra, self.n_samples)
        self._correct = np.concatenate([self._correct, np.zeros(shape, bool)])
        self._proba = np.concatenate([self._proba, np.full(shape, np.nan, np.float32)])
        if self.margins:
            self._margin = np.concatenate([self._margin, np.full(shape, np.nan, np.float32)])

    def _flush(self):
        """Reduce the buffered batches and write them at their positions."""
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        outputs = [batch for _, batch, _ in pending]
        if not all(isinstance(batch, torch.Tensor) for batch in outputs):
            outputs = [torch.as_tensor(batch) for batch in outputs]
        outputs = torch.cat(outputs)
        if outputs.ndim != 2:
            raise ValueError(
                "DynamicsRecorder expects the network to output (batch, n_classes) class "
                f"scores; got outputs of shape {tuple(outputs.shape)}."
            )
        targets = _concatenate([target for _, _, target in pending])
        targets = targets.to(outputs.device).long().reshape(-1, 1)
        positions = _concatenate([index for index, _, _ in pending]).cpu().numpy().reshape(-1)
        if not positions.shape[0] == targets.shape[0] == outputs.shape[0]:
            raise ValueError(
                f"Every batch needs as many indices and targets as outputs; got "
                f"{positions.shape[0]} indices, {targets.shape[0]} targets and "
                f"{outputs.shape[0]} output rows."
            )
        if positions.size and (positions.min() < 0 or positions.max() >= self.n_samples):
            raise ValueError(
                f"indices must be positions 0 to {self.n_samples - 1} of the training set; "
                f"got {positions.min()} to {positions.max()}."
            )
        values = self._reduce(outputs, targets)
        self._reserve()
        epoch = self.n_epochs_
        self._proba[epoch, positions] = values[:, 0]
        self._correct[epoch, positions] = values[:, 1] > 0.5
        if self.margins:
            self._margin[epoch, positions] = values[:, 2]
        self._seen[positions] = True
        self._epoch_rows += positions.shape[0]

    def _reduce(self, outputs, targets):
        """True-class probability, correctness (and margin) of every row, on the host."""
        with torch.no_grad():
            outputs = outputs.float()
            if outputs.shape[0]:
                low, high = torch.stack(torch.aminmax(targets)).tolist()
                if low < 0 or high >= outputs.shape[1]:
                    raise ValueError(
                        f"targets must be class indices 0 to {outputs.shape[1] - 1} (one "
                        f"per output of the network); got {low} to {high}."
                    )
            top, predicted = outputs.max(dim=1, keepdim=True)
            correct = predicted == targets
            if self.output == "logits":
                # A softmax of the true class only, shifted by the row maximum
                # for stability: on CPU it is several times faster than
                # log_softmax over rows of a few classes.
                proba = (outputs.gather(1, targets) - top).exp_()
                proba /= (outputs - top).exp_().sum(dim=1, keepdim=True)
            else:
                proba = outputs.gather(1, targets)
            columns = [proba, correct.float()]
            if self.margins:
                columns.append(_margin(outputs, targets, self.output))
            # One device-to-host copy for every quantity.
            return torch.cat(columns, dim=1).cpu().numpy()


def _concatenate(parts):
    """One flat tensor of the batches' values (one copy, not one a batch)."""
    if all(isinstance(part, torch.Tensor) for part in parts):
        device = parts[0].device
        if all(part.device == device for part in parts):
            return torch.cat(parts).reshape(-1)
        return torch.cat([part.to(device) for part in parts]).reshape(-1)
    if all(isinstance(part, np.ndarray) for part in parts):
        return torch.from_numpy(np.concatenate(parts).reshape(-1))
    return torch.cat([torch.as_tensor(part).reshape(-1) for part in parts])


def _margin(outputs, targets, kind):
    """The true class's logit (log-probability) minus the largest other one, per row."""
    if kind == "probabilities":
        outputs = torch.log(outputs.clamp_min(torch.finfo(outputs.dtype).tiny))
    assigned = outputs.gather(1, targets)
    others = outputs.scatter(1, targets, float("-inf"))
    return assigned - others.max(dim=1, keepdim=True).values
