"""CoreSet pruning: greedy k-center on the query network's embeddings (Sener & Savarese, 2018)."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from .._docstrings import pruner_docstring
from .._query_training import penultimate_features
from ..scores import pick_order_scores
from ._base import QueryNetPruner


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

    Read more in the :ref:`User Guide <coreset>`.

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
    {n_runs}
    {run_parameters}

    {scores_attribute}
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
    {example_net}
    >>> from skprune import CoreSetPruner
    >>> pruner = CoreSetPruner(net, density=0.3, random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> float(pruner.scores_.max()), X_kept.shape
    (1.0, (539, 64))
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

