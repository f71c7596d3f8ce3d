"""Shared query training of the pruners that score from per-sample training dynamics."""

from abc import abstractmethod
from numbers import Integral

from sklearn.utils._param_validation import Interval

from .._dynamics import record_dynamics
from ..base import DataPruner


class TrainingDynamicsPruner(DataPruner):
    """Base of Forgetting and Dynamic Uncertainty: score from a recorded training run.

    A clone of ``estimator`` trains over its full schedule on all the data
    (through the one query path), while a
    :class:`~skprune.callbacks.TrainingDynamicsRecorder` records, for every
    sample and epoch, whether it was classified correctly and its
    true-class probability. Subclasses turn one run's record into scores
    (:meth:`_score_record`) and say which forward pass is recorded
    (:meth:`_recorded_pass`).
    """

    _parameter_constraints = {
        **DataPruner._parameter_constraints,
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, estimator=None, *, density=0.5, quota=None, selection="hardest", n_runs=1,
        random_state=None, memory=None,
        n_jobs=None, verbose=0,
    ):
        super().__init__(
            estimator, density=density, quota=quota, selection=selection,
            random_state=random_state, memory=memory, n_jobs=n_jobs,
            verbose=verbose,
        )
        self.n_runs = n_runs

    #: Whether the run records margins (``recorder.margin_``).
    _records_margins = False

    @abstractmethod
    def _score_record(self, recorder):
        """Scores of one run from its record.

        Parameters
        ----------
        recorder : TrainingDynamicsRecorder
            ``correct_``, ``proba_`` (and ``margin_``), each of shape
            ``(n_epochs, n_samples)``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """

    def _recorded_pass(self):
        """Which forward pass is recorded: ``"train"`` or ``"eval"``."""
        return "train"

    def _score_run(self, X, y, seed):
        recorder = record_dynamics(
            self.estimator, X, y, seed, owner=type(self).__name__,
            record=self._recorded_pass(), margins=self._records_margins,
        )
        return self._score_record(recorder)
