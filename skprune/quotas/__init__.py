"""Quotas: how a pruner splits its kept budget across classes (or groups)."""

from sklearn.base import clone

from ._allocation import allocate_class_counts
from ._base import BaseQuota
from ._fixed import BalancedQuota, GivenWeights, ProportionalQuota
from ._metriq import MetriQ, equal_rates_pvalue, error_weights
from ._strategy_quota import StrategyQ
from ._subg import SUBG

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
    "allocate_class_counts",
    "equal_rates_pvalue",
    "error_weights",
    "make_quota",
]
