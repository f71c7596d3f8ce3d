"""Pruning strategies: each one only defines how samples are scored.

A strategy is one module here and one entry in ``__all__`` below: skprune
exports it, the API reference lists it, and the common tests check it.
"""

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

# In the order of the API reference: the paper's strategies, then the others.
__all__ = [
    "RandomPruner",
    "EL2NPruner",
    "GraNdPruner",
    "ForgettingPruner",
    "DynamicUncertaintyPruner",
    "CoreSetPruner",
    "PrototypePruner",
    "UncertaintyPruner",
    "AUMPruner",
    "ScorePruner",
]
