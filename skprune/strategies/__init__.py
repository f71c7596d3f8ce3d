"""Pruning strategies: each one only defines how samples are scored."""

from ._aum import AUMPruner
from ._coreset import CoreSetPruner
from ._dynamic_uncertainty import DynamicUncertaintyPruner
from ._el2n import EL2NPruner
from ._forgetting import ForgettingPruner
from ._grand import GraNdPruner
from ._prototype import PrototypePruner
from ._random_pruner import RandomPruner
from ._score_pruner import ScorePruner
from ._uncertainty import UncertaintyPruner

__all__ = [
    "AUMPruner",
    "CoreSetPruner",
    "DynamicUncertaintyPruner",
    "EL2NPruner",
    "ForgettingPruner",
    "GraNdPruner",
    "PrototypePruner",
    "RandomPruner",
    "ScorePruner",
    "UncertaintyPruner",
]
