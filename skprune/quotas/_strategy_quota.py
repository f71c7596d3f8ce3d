"""StrategyQ: quotas copied from another pruner."""


import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods

from ._base import BaseQuota


class StrategyQ(BaseQuota):
    """Keep per class what another pruning strategy would keep.

    ``pruner`` (with ``quota=None``, at the density of the pruner that uses
    this quota) is fitted on the same data, and the number ``m_k`` of rows it
    keeps in class ``k`` sets the density weight ``m_k / N_k``. With
    ``RandomPruner`` this gives the paper's *Random+StrategyQ*: the class
    ratios of a strategy, random within each class.

    Read more in the :ref:`User Guide <quotas>`.

    Parameters
    ----------
    pruner : DataPruner
        The strategy whose class ratios are copied. It is cloned; its
        ``density`` and ``quota`` are overridden. If its ``random_state`` is
        ``None`` it gets a seed drawn from the outer pruner's. Its scores
        come from the score cache when it has seen the same data before.

    Attributes
    ----------
    weights_ : ndarray of shape (n_groups,)
        ``m_k / N_k`` for every class.
    group_labels_ : ndarray of shape (n_groups,)
        The classes, in the order of ``weights_``.
    strategy_class_counts_ : dict
        Rows ``pruner`` keeps in every class.

    See Also
    --------
    MetriQ : quotas from validation error rates.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skprune import RandomPruner, StrategyQ
    >>> X, y = load_digits(return_X_y=True)
    >>> inner = RandomPruner(random_state=1)
    >>> pruner = RandomPruner(density=0.3, quota=StrategyQ(inner), random_state=0)
    >>> _ = pruner.fit_resample(X, y)
    >>> pruner.class_counts_ == pruner.quota_.strategy_class_counts_
    True
    """

    _parameter_constraints = {"pruner": [HasMethods(["fit_resample"])]}

    def __init__(self, pruner):
        self.pruner = pruner

    def _weights(self, context):
        strategy = clone(self.pruner).set_params(density=context.density, quota=None)
        if strategy.random_state is None:
            # An int seed when the outer one is an int keeps the inner scores
            # cacheable; otherwise a RandomState seeded from the outer draw
            # is reproducible without being cached.
            strategy.set_params(
                random_state=context.seed if context.cacheable_seed
                else np.random.RandomState(context.seed)
            )
        if strategy.memory is None:
            strategy.set_params(memory=context.memory)
        groups = {} if context.groups is None else {"groups": context.groups}
        strategy.fit(context.X, context.y, **groups)
        kept = np.bincount(context.group_index[strategy.sample_indices_],
                           minlength=context.group_labels.shape[0])
        self.strategy_class_counts_ = dict(
            zip(context.group_labels.tolist(), kept.tolist(), strict=True)
        )
        return kept / context.group_sizes
