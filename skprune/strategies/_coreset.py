"""CoreSet pruning: greedy k-center on the query network's embeddings (Sener & Savarese, 2018)."""

from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._docstrings import pruner_docstring
from .._query_training import penultimate_features
from ._base import QueryNetPruner


def k_center_order(features, device="cpu"):
    """Every row of ``features`` in the order greedy k-center picks it.

    The first pick is the row nearest the mean; each next pick is the row
    farthest from all rows picked so far (ties: the lowest index). The first
    ``k`` picks are the greedy k-center solution for every ``k``, whose
    covering radius is at most twice the optimum (Gonzalez, 1985), so one
    ordering serves every density.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    device : str or torch.device, default="cpu"
        Where the distances are computed; ``O(n_samples**2 * n_features)``
        work, so a GPU pays off from a few thousand rows.

    Returns
    -------
    order : ndarray of int, shape (n_samples,)

    Examples
    --------
    >>> from skprune.strategies import k_center_order
    >>> k_center_order([[0.0], [1.0], [10.0], [11.0]])
    array([1, 3, 0, 2])
    """
    points = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
    n = points.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    points = points.reshape(n, -1)
    first = int(torch.argmin(((points - points.mean(0)) ** 2).sum(1)))
    order = np.empty(n, dtype=np.int64)
    order[0] = first
    nearest = ((points - points[first]) ** 2).sum(1)
    nearest[first] = -1.0  # picked rows never win again
    for position in range(1, n):
        pick = int(torch.argmax(nearest))
        order[position] = pick
        nearest = torch.minimum(nearest, ((points - points[pick]) ** 2).sum(1))
        nearest[order[: position + 1]] = -1.0
    return order


@pruner_docstring
class CoreSetPruner(QueryNetPruner):
    """Keep a greedy k-center cover of the query network's embedding space.

    A clone of ``estimator`` is trained (its full schedule by default) and
    every sample is embedded by the input of the network's final
    ``torch.nn.Linear`` layer, in eval mode on un-augmented data. Greedy
    k-center (Sener and Savarese) then orders the samples: each next pick is
    the sample farthest from those already picked. A sample scores by how
    early it is picked (the first pick scores highest), so that keeping the
    highest scores keeps the k-center set of the kept size, at any density.

    Read more in the :ref:`User Guide <strategies>`.

    Parameters
    ----------
    {query_estimator}
    {density}
    {quota}
    {selection}
    scope : {"all", "class"}, default="all"
        Where k-center runs. ``"all"``: one k-center over all samples, the
        method of Sener and Savarese and of the DRoP authors' CoreSet
        scorer; a sample scores ``1 - position / n``. With ``quota=None`` the
        kept rows are the global k-center set, however unevenly it covers
        the classes; under a class quota each class keeps its samples in the
        global pick order, which is not a k-center cover of the class.
        ``"class"``: k-center within each class separately; a sample scores
        ``1 - position / n_k`` for its pick position in its class of ``n_k``
        samples, so that with ``quota=None`` every class keeps about the
        same fraction, and under a quota each class keeps its own k-center
        cover.
    epochs : int >= 0 or None, default=None
        Epochs of query training before embedding. ``None`` means the
        estimator's whole schedule; ``0`` embeds with the initialized
        network.
    n_runs : int, default=1
        Independent query networks; their scores are averaged.
    {random_state}
    {memory}
    {n_jobs}
    {verbose}

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        Pick-order scores averaged over runs, in ``(0, 1]``.
    {fitted_attributes}

    See Also
    --------
    PrototypePruner : distance to the class-mean embedding.

    Notes
    -----
    The ordering costs ``O(n^2 d)`` for ``n`` samples with ``d``-dimensional
    embeddings, on the network's device.

    Sener and Savarese, "Active Learning for Convolutional Neural Networks:
    A Core-Set Approach", ICLR 2018.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skorch import NeuralNetClassifier
    >>> from skprune.models import MLP
    >>> from skprune import CoreSetPruner
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> net = NeuralNetClassifier(
    ...     MLP, module__in_features=64, module__hidden=(32,),
    ...     criterion=torch.nn.CrossEntropyLoss, lr=0.5, max_epochs=3,
    ...     train_split=None, verbose=0)
    >>> pruner = CoreSetPruner(net, density=0.3, random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    """

    _parameter_constraints = {
        **QueryNetPruner._parameter_constraints,
        "scope": [StrOptions({"all", "class"})],
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, estimator=None, *, density=0.5, quota=None, selection="hardest", scope="all",
        epochs=None, n_runs=1, random_state=None, memory=None,
        n_jobs=None, verbose=0,
    ):
        super().__init__(
            estimator, density=density, quota=quota, selection=selection, epochs=epochs,
            n_runs=n_runs, random_state=random_state, memory=memory, n_jobs=n_jobs,
            verbose=verbose,
        )
        self.scope = scope

    def _score_net(self, net, kind, X, target):
        features = penultimate_features(net, X, target, type(self).__name__)
        return pick_order_scores(features, target if self.scope == "class" else None,
                                 net.device)


def pick_order_scores(features, y=None, device="cpu"):
    """``1 - position / n`` of every row in its (class's) greedy k-center order.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or None
        Order within each class; ``None`` orders all rows together.
    device : str, default="cpu"

    Returns
    -------
    scores : ndarray of shape (n_samples,)
    """
    scores = np.empty(features.shape[0])
    blocks = [np.arange(features.shape[0])] if y is None else [
        np.flatnonzero(y == label) for label in np.unique(y)
    ]
    for rows in blocks:
        order = k_center_order(features[rows], device)
        scores[rows[order]] = 1.0 - np.arange(rows.size) / rows.size
    return scores
