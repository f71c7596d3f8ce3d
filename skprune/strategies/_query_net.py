"""Shared query training of the pruners that score with an early-trained network."""

from abc import abstractmethod
from numbers import Integral

from sklearn.utils._param_validation import Interval

from .._query import check_skorch_classifier, eval_batches, train_query_net
from .._torch_utils import net_inputs, net_targets
from ..base import DataPruner


class EarlyTrainingPruner(DataPruner):
    """Base of GraNd and EL2N: score every sample with a briefly trained clone.

    A clone of ``estimator`` is trained for ``epochs`` epochs on all the
    data (through the one query path, :func:`skprune._query.train_query_net`),
    then every sample is scored in eval mode over the net's non-augmenting
    iterator (``iterator_valid``). Scores are averaged over ``n_runs``
    independent initializations. Subclasses only implement
    :meth:`_score_net`.
    """

    _continuous_scores = True

    _parameter_constraints = {
        **DataPruner._parameter_constraints,
        "epochs": [Interval(Integral, 0, None, closed="left"), None],
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, estimator=None, *, density=0.5, quota=None, selection="hardest", epochs=None,
        n_runs=5, random_state=None, memory=None,
    ):
        super().__init__(
            estimator, density=density, quota=quota, selection=selection,
            random_state=random_state, memory=memory,
        )
        self.epochs = epochs
        self.n_runs = n_runs

    @abstractmethod
    def _score_net(self, net, kind, batches):
        """Scores from a query net.

        Parameters
        ----------
        net : skorch.NeuralNetClassifier
            The initialized (and, unless ``epochs=0``, trained) query net.
        kind : {"logits", "probabilities"}
            What its module outputs.
        batches : iterable of (inputs, targets)
            The data in order, without augmentation, on the net's device.

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
        return self._score_net(net, kind, eval_batches(net, net_inputs(X), net_targets(y)))

    def _query_epochs(self):
        if self.epochs is not None:
            return self.epochs
        # 10% of the estimator's schedule, rounded up, and at least one epoch.
        return max(1, -(-self.estimator.max_epochs // 10))
