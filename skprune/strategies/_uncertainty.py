"""Uncertainty pruning: how unsure a trained network is of every sample."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .._docstrings import pruner_docstring
from .._query_training import probability_batches
from ..scores import UNCERTAINTY_MEASURES, uncertainty
from ._base import QueryNetPruner


@pruner_docstring
class UncertaintyPruner(QueryNetPruner):
    """Keep the samples a trained network is least sure about.

    A clone of ``estimator`` is trained (its full schedule by default) and
    predicts class probabilities ``p`` for every sample, in eval mode on
    un-augmented data. Every measure follows one convention: higher = more
    uncertain = kept first.

    Read more in the :ref:`User Guide <strategies>`.

    Parameters
    ----------
    {query_estimator}
    {density}
    {quota}
    {selection}
    measure : {"least_confidence", "margin", "entropy"}, default="least_confidence"
        ``"least_confidence"``: ``1 - max_k p_k``. ``"margin"``:
        ``1 - (p_(1) - p_(2))``, one minus the gap between the two largest
        probabilities. ``"entropy"``: ``-sum_k p_k log p_k`` (natural log,
        ``0 log 0 = 0``). None uses the label: a confidently wrong
        prediction is "certain".
    epochs : int >= 0 or None, default=None
        Epochs of query training before predicting. ``None`` means the
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
        Uncertainty, averaged over runs.
    {fitted_attributes}

    See Also
    --------
    EL2NPruner : the error of the prediction, which uses the label.

    Notes
    -----
    Coleman et al., "Selection via Proxy: Efficient Data Selection for Deep
    Learning", ICLR 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skorch import NeuralNetClassifier
    >>> from skprune import UncertaintyPruner
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=64, module__out_features=10,
    ...     criterion=torch.nn.CrossEntropyLoss, lr=0.5, max_epochs=3,
    ...     train_split=None, verbose=0)
    >>> pruner = UncertaintyPruner(net, density=0.3, measure="entropy", random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    """

    _parameter_constraints = {
        **QueryNetPruner._parameter_constraints,
        "measure": [StrOptions(set(UNCERTAINTY_MEASURES))],
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, estimator=None, *, density=0.5, quota=None, selection="hardest",
        measure="least_confidence", epochs=None, n_runs=1, random_state=None, memory=None,
        n_jobs=None, verbose=0,
    ):
        super().__init__(
            estimator, density=density, quota=quota, selection=selection, epochs=epochs,
            n_runs=n_runs, random_state=random_state, memory=memory, n_jobs=n_jobs,
            verbose=verbose,
        )
        self.measure = measure

    def _score_net(self, net, kind, X, target):
        batches = probability_batches(net, X, target, kind)
        return np.concatenate([uncertainty(proba, self.measure) for proba, _ in batches])

