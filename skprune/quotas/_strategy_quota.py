"""StrategyQ: class quotas copied from another pruner."""

import numbers

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

    See Also
    --------
    MetriQ : quotas from validation error rates.

    Notes
    -----
    A quota is never fitted itself: the pruner that uses it gets
    ``strategy_class_counts_`` (dict class -> rows ``pruner`` keeps) and
    ``class_weights_``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skprune import RandomPruner, StrategyQ
    >>> X, y = load_digits(return_X_y=True)
    >>> inner = RandomPruner(random_state=1)
    >>> pruner = RandomPruner(density=0.3, quota=StrategyQ(inner), random_state=0)
    >>> _ = pruner.fit_resample(X, y)
    >>> pruner.class_counts_ == pruner.strategy_class_counts_
    True
    """

    _parameter_constraints = {"pruner": [HasMethods(["fit_resample"])]}

    def __init__(self, pruner):
        self.pruner = pruner

    def class_weights(self, pruner, X, y, classes, seed):
        self._validate_params()
        strategy = clone(self.pruner).set_params(density=pruner.density, quota=None)
        if strategy.random_state is None:
            # An int seed when the outer one is an int keeps the inner scores
            # cacheable; otherwise a RandomState seeded from the outer draw
            # is reproducible without being cached.
            outer_is_int = isinstance(pruner.random_state, numbers.Integral)
            strategy.set_params(
                random_state=seed if outer_is_int else np.random.RandomState(seed)
            )
        if strategy.memory is None:
            strategy.set_params(memory=pruner.memory)
        strategy.fit_resample(X, y)
        kept = np.array([strategy.class_counts_.get(label, 0) for label in classes.tolist()])
        class_sizes = np.array([np.count_nonzero(y == label) for label in classes])
        return kept / class_sizes, {"strategy_class_counts_": dict(strategy.class_counts_)}
