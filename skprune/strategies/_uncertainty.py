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
    uncertain = kept first. See the :ref:`User Guide <uncertainty>`.

    Parameters
    ----------
    {query_estimator}
    {selection_parameters}
    measure : {"least_confidence", "margin", "entropy"}, default="least_confidence"
        ``"least_confidence"``: ``1 - max_k p_k``. ``"margin"``:
        ``1 - (p_(1) - p_(2))``, one minus the gap between the two largest
        probabilities. ``"entropy"``: ``-sum_k p_k log p_k`` (natural log,
        ``0 log 0 = 0``). None uses the label: a confidently wrong
        prediction is "certain".
    {epochs_full}
    {n_runs}
    {run_parameters}

    {scores_attribute}
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
    {example_net}
    >>> from skprune import UncertaintyPruner
    >>> pruner = UncertaintyPruner(net, density=0.3, measure="entropy", random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> bool(pruner.scores_.max() <= 2.31)     # at most log(10) for 10 classes
    True
    """

    _parameter_constraints = {
        **QueryNetPruner._parameter_constraints,
        "measure": [StrOptions(set(UNCERTAINTY_MEASURES))],
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, estimator=None, *, density=0.5, quota=None, selection="hardest",
                 measure="least_confidence", epochs=None, n_runs=1, random_state=None,
                 memory=None, n_jobs=None, verbose=0):
        super().__init__(estimator, density=density, quota=quota, selection=selection,
                         epochs=epochs, n_runs=n_runs, random_state=random_state, memory=memory,
                         n_jobs=n_jobs, verbose=verbose)
        self.measure = measure

    def _score_net(self, net, kind, X, target):
        batches = probability_batches(net, X, target, kind)
        return np.concatenate([uncertainty(proba, self.measure) for proba, _ in batches])

