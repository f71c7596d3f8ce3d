"""EL2N pruning: error norms early in training (Paul et al., 2021)."""

import numpy as np

from .._docstrings import pruner_docstring
from .._query_training import probability_batches
from ..scores import el2n
from ._base import QueryNetPruner


@pruner_docstring
class EL2NPruner(QueryNetPruner):
    """Keep the samples with the largest prediction errors early in training.

    A clone of ``estimator`` is trained for ``epochs`` epochs on the data given
    to ``fit_resample``; every sample then scores the L2 norm of its error
    vector, ``||softmax(f(x)) - onehot(y)||_2``, computed in eval mode on
    un-augmented data. Scores are averaged over ``n_runs`` independent
    initializations. Samples the early network gets badly wrong (hard, atypical
    or mislabeled) are kept first. For logits and the cross-entropy loss, the
    error vector is the loss gradient with respect to the logits, so EL2N is
    GraNd's cheaper cousin. See the :ref:`User Guide <el2n>`.

    Parameters
    ----------
    {query_estimator}
    {selection_parameters}
    epochs : int >= 0 or None, default=None
        Epochs of query training before scoring: the first ``epochs`` of
        the estimator's full schedule (its learning-rate schedule keeps the
        shape of the full run). ``None`` means 10% of the estimator's
        ``max_epochs``, rounded up (at least 1); ``0`` scores the freshly
        initialized network. To train a schedule compressed into the short
        run instead, as the DRoP authors do, pass an estimator whose
        ``max_epochs`` is the short run's (see :ref:`fidelity`).
    {n_runs_mean}
    {run_parameters}

    {scores_attribute}
        Error norms averaged over runs, in ``[0, sqrt(2)]``.
    {fitted_attributes}

    See Also
    --------
    GraNdPruner : the norm of the full loss gradient, the same query training.

    Notes
    -----
    Paul, Ganguli and Dziugaite, "Deep Learning on a Data Diet: Finding
    Important Examples Early in Training", NeurIPS 2021.

    Examples
    --------
    {example_net}
    >>> from skprune import EL2NPruner
    >>> pruner = EL2NPruner(net, density=0.3, quota="proportional", n_runs=2,
    ...                     random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    >>> bool(0 <= pruner.scores_.min() and pruner.scores_.max() <= 2 ** 0.5)
    True
    """

    def _score_net(self, net, kind, X, target):
        return np.concatenate([
            el2n(proba, batch_target)
            for proba, batch_target in probability_batches(net, X, target, kind)
        ])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.query_fraction = 0.1
        return tags
