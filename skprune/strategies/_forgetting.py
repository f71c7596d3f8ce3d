"""Forgetting-event pruning (Toneva et al., 2019)."""

from sklearn.utils._param_validation import StrOptions

from .._docstrings import pruner_docstring
from ..scores import forgetting_events
from ._base import TrainingDynamicsPruner


@pruner_docstring
class ForgettingPruner(TrainingDynamicsPruner):
    """Keep the samples a network forgets most often while it trains.

    A clone of ``estimator`` is trained on the data given to ``fit_resample``
    over its full schedule (``max_epochs``), and every sample's classification
    (correct or not) is read from the training forward pass of every epoch, at
    almost no extra cost. A *forgetting event* is a transition from correct to
    misclassified between two consecutive presentations of a sample. Samples
    with many events, and samples never classified correctly (which score their
    number of presentations), are kept first; samples learnt once and never
    forgotten are pruned first. See the :ref:`User Guide <forgetting>`.

    Parameters
    ----------
    {recorded_estimator}
    {selection_parameters}
    n_runs : int, default=1
        Independent query trainings (different initialisation and shuffling);
        their event counts are summed.
    never_learned : {"presentations", "zero"}, default="presentations"
        Score of a sample never classified correctly in a run: its number of
        presentations, which ranks it above every sample learnt at some point
        (Toneva et al.), or 0, the same as a sample never forgotten, as the
        DRoP authors' code counts it.
    {run_parameters}

    {scores_attribute}
        Forgetting events summed over runs.
    {fitted_attributes}

    See Also
    --------
    DynamicUncertaintyPruner : scores from the variability of the true-class
        probability during training.
    skprune.callbacks.TrainingDynamicsRecorder : the callback that records
        the training dynamics.

    Notes
    -----
    Toneva, Sordoni, Tachet des Combes, Trischler, Bengio and Gordon, "An
    Empirical Study of Example Forgetting during Deep Neural Network
    Learning", ICLR 2019.

    Examples
    --------
    {example_net}
    >>> from skprune import ForgettingPruner
    >>> pruner = ForgettingPruner(net, density=0.3, quota="proportional",
    ...                           random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    >>> float(pruner.scores_.max()) <= 4
    True
    """

    _parameter_constraints = {
        **TrainingDynamicsPruner._parameter_constraints,
        "never_learned": [StrOptions({"presentations", "zero"})],
    }

    def __init__(self, estimator=None, *, density=0.5, quota=None, selection="hardest",
                 n_runs=1, never_learned="presentations", random_state=None, memory=None,
                 n_jobs=None, verbose=0):
        super().__init__(estimator, density=density, quota=quota, selection=selection,
                         n_runs=n_runs, random_state=random_state, memory=memory, n_jobs=n_jobs,
                         verbose=verbose)
        self.never_learned = never_learned

    def _score_record(self, recorder):
        return forgetting_events(recorder.correct_, never_learned=self.never_learned)

    def _combine_runs(self, run_scores):
        # Toneva et al. count events over all presentations, so runs add up.
        return run_scores.sum(axis=0)
