"""Step decay of the learning rate at fractions of the training schedule."""

import math

from skorch.callbacks import Callback
from torch.optim.lr_scheduler import MultiStepLR


class StepDecay(Callback):
    """Multiply the learning rate by ``gamma`` after given fractions of ``max_epochs``.

    A skorch callback around torch's ``MultiStepLR``, stepped once per
    epoch. The drops are fractions of the schedule, not epoch numbers: they
    become milestones when training begins, from the net's ``max_epochs``
    at that time, so a net whose ``max_epochs`` is changed later (e.g. the
    longer schedule of a pruned run) still drops at the same points of its
    schedule. The decay spans one ``fit``: afterwards the optimizer's rate is
    restored, so every ``fit`` runs the whole schedule. The learning rate of
    every epoch is recorded in the history as ``"lr"``.

    Parameters
    ----------
    fractions : tuple of float, default=(0.5, 0.75)
        Where the drops happen, as fractions of ``max_epochs``: a drop at
        fraction ``f`` takes effect after epoch ``round(f * max_epochs)``.
    gamma : float, default=0.2
        Factor applied at each drop.
    rounding : {"round", "floor"}, default="round"
        How a drop's epoch is made whole: ``round(f * max_epochs)``, or
        ``floor(f * max_epochs)`` as the DRoP authors' code truncates the
        drops of its epoch-corrected runs (``int(drop * epochs / E)`` in
        ``epochs_correction``, ``utils.py``): at 346 epochs a drop at 3/4
        takes effect after epoch 259, not 260.

    Attributes
    ----------
    milestones_ : list of int
        The epochs after which the rate dropped in the last ``fit``.

    Examples
    --------
    >>> from skprune.models import StepDecay
    >>> StepDecay((0.5, 0.75)).milestones(160)
    [80, 120]
    >>> StepDecay((0.5, 0.75)).milestones(200)
    [100, 150]
    >>> StepDecay((0.5, 0.75)).milestones(346), StepDecay(rounding="floor").milestones(346)
    ([173, 260], [173, 259])
    """

    def __init__(self, fractions=(0.5, 0.75), gamma=0.2, rounding="round"):
        self.fractions = fractions
        self.gamma = gamma
        self.rounding = rounding

    def milestones(self, max_epochs):
        """Epochs after which the rate drops, for a schedule of ``max_epochs``.

        Parameters
        ----------
        max_epochs : int

        Returns
        -------
        milestones : list of int
        """
        for fraction in self.fractions:
            if not 0 <= fraction <= 1:
                raise ValueError(
                    f"StepDecay fractions must lie in [0, 1]; got {tuple(self.fractions)}."
                )
        if self.rounding not in ("round", "floor"):
            raise ValueError(
                f"StepDecay rounding must be 'round' or 'floor'; got {self.rounding!r}."
            )
        whole = round if self.rounding == "round" else math.floor
        return sorted({whole(fraction * max_epochs) for fraction in self.fractions})

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        groups = net.optimizer_.param_groups
        self.start_lrs_ = [group["lr"] for group in groups]
        for group in groups:
            # Left by an earlier fit's scheduler; MultiStepLR would start from it.
            group.pop("initial_lr", None)
        self.milestones_ = self.milestones(net.max_epochs)
        self.scheduler_ = MultiStepLR(net.optimizer_, milestones=self.milestones_, gamma=self.gamma)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Undo the decay, so that a warm-started fit (or partial_fit) runs the
        # whole schedule again from the net's rate.
        for group, lr in zip(net.optimizer_.param_groups, self.start_lrs_, strict=True):
            group["lr"] = lr

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])

    def on_epoch_end(self, net, **kwargs):
        self.scheduler_.step()
