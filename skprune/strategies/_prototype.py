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
    prototype metric that the DRoP authors use: the network is supervised
    and the clusters are the classes.

    Read more in the :ref:`User Guide <strategies>`.

    Parameters
    ----------
    {query_estimator}
    {density}
    {quota}
    {selection}
    epochs : int >= 0 or None, default=None
        Epochs of query training before embedding. ``None`` means the
        estimator's whole schedule.
    n_runs : int, default=1
        Independent query networks; their scores are averaged.
    {random_state}
    {memory}
    {n_jobs}
    {verbose}

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
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
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skorch import NeuralNetClassifier
    >>> from skprune.models import MLP
    >>> from skprune import PrototypePruner
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> net = NeuralNetClassifier(
    ...     MLP, module__in_features=64, module__hidden=(32,),
    ...     criterion=torch.nn.CrossEntropyLoss, lr=0.5, max_epochs=3,
    ...     train_split=None, verbose=0)
    >>> pruner = PrototypePruner(net, density=0.3, quota="proportional", random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    """

    _parameter_constraints = {
        **QueryNetPruner._parameter_constraints,
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, estimator=None, *, density=0.5, quota=None, selection="hardest", epochs=None,
        n_runs=1, random_state=None, memory=None,
        n_jobs=None, verbose=0,
    ):
        super().__init__(
            estimator, density=density, quota=quota, selection=selection, epochs=epochs,
            n_runs=n_runs, random_state=random_state, memory=memory, n_jobs=n_jobs,
            verbose=verbose,
        )

    def _score_net(self, net, kind, X, target):
        return prototype_distances(penultimate_features(net, X, target, type(self).__name__),
                                   target)

