"""The two bases of the pruners that train a query network.

:class:`QueryNetPruner` scores every sample with one trained clone of the
estimator (EL2N, GraNd, CoreSet, Prototype, Uncertainty);
:class:`TrainingDynamicsPruner` scores from what a clone records while it
trains (Forgetting, Dynamic Uncertainty, AUM).
"""

import math
from abc import abstractmethod
from numbers import Integral

from sklearn.utils import get_tags
from sklearn.utils._param_validation import Interval

from .._query_training import check_skorch_classifier, record_query_training, train_query_net
from ..base import DataPruner
from ..utils._torch_data import net_inputs, net_targets


class QueryNetPruner(DataPruner):
    """Base of the pruners that score every sample with one trained clone.

    A clone of ``estimator`` is trained for ``epochs`` epochs on all the
    data (through the one query path, :func:`skprune._query_training.train_query_net`),
    then every sample is scored in eval mode over the net's non-augmenting
    iterator (``iterator_valid``). Scores are averaged over ``n_runs``
    independent initializations. Subclasses implement :meth:`_score_net`;
    how much of the estimator's schedule ``epochs=None`` trains is their
    ``query_fraction`` tag (:class:`~skprune.utils.PrunerTags`: 10% for
    GraNd and EL2N, the whole schedule for the others), rounded up to at
    least one epoch.
    """

    _parameter_constraints = {
        **DataPruner._parameter_constraints,
        "epochs": [Interval(Integral, 0, None, closed="left"), None],
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, estimator=None, *, density=0.5, quota=None, selection="hardest",
                 epochs=None, n_runs=5, random_state=None, memory=None, n_jobs=None, verbose=0):
        super().__init__(estimator, density=density, quota=quota, selection=selection,
                         random_state=random_state, memory=memory, n_jobs=n_jobs,
                         verbose=verbose)
        self.epochs = epochs
        self.n_runs = n_runs

    @abstractmethod
    def _score_net(self, net, kind, X, target):
        """Scores from a query net.

        Parameters
        ----------
        net : skorch.NeuralNetClassifier
            The initialized (and, unless ``epochs=0``, trained) query net.
        kind : {"logits", "probabilities"}
            What its module outputs.
        X : array-like or torch Dataset
            The data being pruned (pass it through :func:`eval_batches`
            for un-augmented, ordered batches on the net's device).
        target : ndarray of int64
            Labels as the net sees them.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """

    def _score_run(self, X, y, seed):
        owner = type(self).__name__
        check_skorch_classifier(self.estimator, owner)
        net, kind = train_query_net(
            self.estimator, X, y, seed, owner=owner, epochs=self._query_epochs()
        )
        return self._score_net(net, kind, net_inputs(X), net_targets(y))

    def _query_epochs(self):
        if self.epochs is not None:
            return self.epochs
        fraction = get_tags(self).pruner_tags.query_fraction
        return max(1, math.ceil(fraction * self.estimator.max_epochs - 1e-9))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.continuous_scores = True
        return tags


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

    def __init__(self, estimator=None, *, density=0.5, quota=None, selection="hardest",
                 n_runs=1, random_state=None, memory=None, n_jobs=None, verbose=0):
        super().__init__(estimator, density=density, quota=quota, selection=selection,
                         random_state=random_state, memory=memory, n_jobs=n_jobs,
                         verbose=verbose)
        self.n_runs = n_runs

    #: Whether the run records margins (``recorder.margin_``).
    _records_margins = False

    @abstractmethod
    def _score_record(self, recorder):
        """Scores of one run from its record.

        Parameters
        ----------
        recorder : skprune.recording.DynamicsRecorder
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
        recorder = record_query_training(
            self.estimator, X, y, seed, owner=type(self).__name__,
            record=self._recorded_pass(), margins=self._records_margins,
        )
        return self._score_record(recorder)
