"""Dynamic-uncertainty pruning (He et al., 2023)."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from .._docstrings import pruner_docstring
from .._query_training import check_skorch_classifier
from ..scores import dynamic_uncertainty
from ._base import TrainingDynamicsPruner


@pruner_docstring
class DynamicUncertaintyPruner(TrainingDynamicsPruner):
    """Keep the samples whose predicted probability fluctuates most in training.

    A clone of ``estimator`` is trained on the data given to ``fit_resample``
    over its full schedule (``max_epochs``), and every sample's predicted
    probability of its true class is recorded every epoch. A sample's *dynamic
    uncertainty* is the standard deviation of that probability over ``window``
    consecutive epochs, averaged over all such windows. The most uncertain
    samples are kept first; samples learnt early and confidently are pruned
    first. See the :ref:`User Guide <dynamic_uncertainty>`.

    Parameters
    ----------
    {recorded_estimator}
    {selection_parameters}
    window : int, default=10
        Epochs per window; at most the estimator's ``max_epochs`` (minus
        one with ``windows="before-last"``).
    windows : {"all", "before-last"}, default="all"
        Which windows are averaged: every window of ``window`` consecutive
        epochs, or only the windows that end before the final epoch, as in
        He et al.'s definition.
    record : {"train", "eval"}, default="train"
        Where the probabilities come from. ``"train"`` reads the training
        forward pass (train mode, before each optimizer step), which costs
        nothing extra, as the DRoP authors do. ``"eval"`` adds, after every
        epoch, a pass over the training data without gradients, in eval
        mode and without the training iterator's augmentation, as He et al.
        do.
    {n_runs}
    {run_parameters}

    {scores_attribute}
        Dynamic uncertainty, averaged over runs.
    {fitted_attributes}

    See Also
    --------
    ForgettingPruner : scores from forgetting events during training.
    skprune.callbacks.TrainingDynamicsRecorder : the callback that records
        the training dynamics.

    Notes
    -----
    Mislabelled samples stand out only if the network learns (memorises)
    them during its schedule: their probability then climbs from near 0
    while clean samples sit near 1. A network too small or trained too
    briefly to fit them keeps their probability steadily near 0, and they
    score *low*; :class:`ForgettingPruner` ranks them high either way.

    He, Yang, Huang and Zhao, "Large-scale Dataset Pruning with Dynamic
    Uncertainty", CVPR Workshops 2024 (arXiv 2306.05175).

    Examples
    --------
    {example_net}
    >>> from skprune import DynamicUncertaintyPruner
    >>> pruner = DynamicUncertaintyPruner(net, density=0.3, window=3,
    ...                                   random_state=0)
    >>> _, y_kept = pruner.fit_resample(X, y)
    >>> y_kept.shape, pruner.scores_.shape
    ((539,), (1797,))
    """

    _parameter_constraints = {
        **TrainingDynamicsPruner._parameter_constraints,
        "window": [Interval(Integral, 2, None, closed="left")],
        "windows": [StrOptions({"all", "before-last"})],
        "record": [StrOptions({"train", "eval"})],
    }

    def __init__(self, estimator=None, *, density=0.5, quota=None, selection="hardest",
                 window=10, windows="all", record="train", n_runs=1, random_state=None,
                 memory=None, n_jobs=None, verbose=0):
        super().__init__(estimator, density=density, quota=quota, selection=selection,
                         n_runs=n_runs, random_state=random_state, memory=memory, n_jobs=n_jobs,
                         verbose=verbose)
        self.window = window
        self.windows = windows
        self.record = record

    def _recorded_pass(self):
        return self.record

    def _check_before_scoring(self):
        # Fail before training rather than after the whole schedule.
        owner = type(self).__name__
        check_skorch_classifier(self.estimator, owner)
        epochs = self.estimator.max_epochs - (self.windows == "before-last")
        if self.window > epochs:
            raise ValueError(
                f"{owner}(window={self.window}, windows={self.windows!r}) needs at least "
                f"{self.window + (self.windows == 'before-last')} epochs of training, but "
                f"the estimator trains for max_epochs={self.estimator.max_epochs}. Lower "
                "window or raise max_epochs."
            )

    def _score_record(self, recorder):
        return dynamic_uncertainty(recorder.proba_, window=self.window, windows=self.windows)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.continuous_scores = True
        return tags
