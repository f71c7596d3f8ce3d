"""Prototype pruning: distance to the class-mean embedding (Sorscher et al., 2022)."""

from numbers import Integral

from sklearn.utils._param_validation import Interval

from .._docstrings import pruner_docstring
from .._query_training import penultimate_features
from ..scores import prototype_distances
from ._base import QueryNetPruner


@pruner_docstring
class PrototypePruner(QueryNetPruner):
    """Keep the samples farthest from their class's prototype in embedding space.

    A clone of ``estimator`` is trained (its full schedule by default), and
    every sample is embedded by the input of the network's final
    ``torch.nn.Linear`` layer, in eval mode on un-augmented data. A class's
    prototype is the mean embedding of its samples; a sample scores its
    Euclidean distance to its own class's prototype. Atypical samples score
    high and are kept first; prototypical ones are pruned first (with
    ``selection="easiest"``, the opposite, for small budgets).

    This is the label-aware variant of Sorscher et al.'s self-supervised
    prototype metric that the DRoP authors use: the network is supervised and
    the clusters are the classes. See the :ref:`User Guide <prototype>`.

    Parameters
    ----------
    {query_estimator}
    {selection_parameters}
    {epochs_full}
    {n_runs}
    {run_parameters}

    {scores_attribute}
        Distances to the class prototype, averaged over runs.
    {fitted_attributes}

    See Also
    --------
    CoreSetPruner : a k-center cover of the same embeddings.

    Notes
    -----
    Sorscher, Geirhos, Shekhar, Ganguli and Morcos, "Beyond neural scaling
    laws: beating power law scaling via data pruning", NeurIPS 2022.

    Examples
    --------
    {example_net}
    >>> from skprune import PrototypePruner
    >>> pruner = PrototypePruner(net, density=0.3, quota="proportional", random_state=0)
    >>> pruner.fit(X, y).class_counts_[0]      # 30% of class 0's 178 rows
    53
    """

    _parameter_constraints = {
        **QueryNetPruner._parameter_constraints,
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, estimator=None, *, density=0.5, quota=None, selection="hardest",
                 epochs=None, n_runs=1, random_state=None, memory=None, n_jobs=None, verbose=0):
        super().__init__(estimator, density=density, quota=quota, selection=selection,
                         epochs=epochs, n_runs=n_runs, random_state=random_state, memory=memory,
                         n_jobs=n_jobs, verbose=verbose)

    def _score_net(self, net, kind, X, target):
        return prototype_distances(penultimate_features(net, X, target, type(self).__name__),
                                   target)

