"""Class quotas: how a pruner splits its kept budget across classes."""

from ._allocation import allocate_class_counts
from ._base import BaseQuota
from ._metriq import MetriQ
from ._strategy_quota import StrategyQ
from ._weights import QUOTA_NAMES, quota_weights

__all__ = [
    "QUOTA_NAMES",
    "BaseQuota",
    "MetriQ",
    "StrategyQ",
    "allocate_class_counts",
    "quota_weights",
]
