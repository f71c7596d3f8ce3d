"""Quotas: how a pruner splits its kept budget across classes (or groups)."""

from sklearn.base import clone

from ._allocation import allocate_class_counts
from ._base import BaseQuota
from ._error_rates import equal_rates_pvalue, error_rate_spread, error_weights
from ._fixed import BalancedQuota, GivenWeights, ProportionalQuota
from ._metriq import MetriQ
from ._strategy_quota import StrategyQ
from ._subg import SUBG
from ._validation import ValidationPredictions

#: ``quota=`` strings and the quotas they stand for.
QUOTAS = {"proportional": ProportionalQuota, "balanced": BalancedQuota, "subg": SUBG,
          "metriq": MetriQ}


def make_quota(quota):
    """A fresh, unfitted quota from a pruner's ``quota`` parameter.

    Parameters
    ----------
    quota : str, dict or BaseQuota
        A name in :data:`QUOTAS`, a ``{class: weight}`` dict, or a quota
        object (cloned).

    Returns
    -------
    BaseQuota
    """
    if isinstance(quota, str):
        return QUOTAS[quota]()
    if isinstance(quota, dict):
        return GivenWeights(quota)
    return clone(quota)


__all__ = [
    "QUOTAS",
    "BalancedQuota",
    "BaseQuota",
    "GivenWeights",
    "MetriQ",
    "ProportionalQuota",
    "SUBG",
    "StrategyQ",
    "ValidationPredictions",
    "allocate_class_counts",
    "equal_rates_pvalue",
    "error_rate_spread",
    "error_weights",
    "make_quota",
]
