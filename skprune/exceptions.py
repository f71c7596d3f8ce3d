"""Exceptions and warnings raised by skprune."""

__all__ = ["DegenerateTrainingWarning", "StarvedGroupWarning", "TrainingDivergedError"]


class TrainingDivergedError(RuntimeError):
    """A query network's training diverged, so scores from it would be meaningless.

    Raised when a batch loss becomes NaN or infinite, when the network
    predicts non-finite probabilities, or when the loss grows far past its
    starting value. Lower the estimator's learning rate (``lr``), add
    gradient clipping, or check the inputs for NaN or huge values.
    """


class DegenerateTrainingWarning(UserWarning):
    """A query network trained without learning anything useful to score with.

    Issued when its predictions collapse onto a single class or its scores
    onto a handful of distinct values: the pruner still selects, but its
    selection is close to arbitrary.
    """


class StarvedGroupWarning(UserWarning):
    """A quota cut a class (or group) to almost nothing.

    Issued, naming the classes, when a quota leaves a class only its one
    guaranteed sample, or less than a tenth of the overall density: a model
    trained on the selection will likely fail on that class.
    """
