"""Pruning strategies: each one only defines how samples are scored."""

from ._dynamic_uncertainty import DynamicUncertaintyPruner
from ._el2n import EL2NPruner
from ._forgetting import ForgettingPruner
from ._grand import GraNdPruner
from ._random_pruner import RandomPruner

__all__ = [
    "DynamicUncertaintyPruner",
    "EL2NPruner",
    "ForgettingPruner",
    "GraNdPruner",
    "RandomPruner",
]
