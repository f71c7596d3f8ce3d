"""skprune: robust data pruning for scikit-learn and skorch."""

from ._version import __version__  # noqa: F401  (public)
from .base import DataPruner
from .gradients import per_sample_grad_norms
from .metrics import (
    CLASS_RECALL_SCORING,
    ClassRecallScorer,
    GroupRecallScorer,
    class_recall,
    class_recall_report,
    group_recall_report,
    worst_group_accuracy,
)
from .pipeline import Pipeline, make_pipeline
from .quotas import MetriQ, StrategyQ, allocate_class_counts
from .strategies import (
    AUMPruner,
    CoreSetPruner,
    DynamicUncertaintyPruner,
    EL2NPruner,
    ForgettingPruner,
    GraNdPruner,
    PrototypePruner,
    RandomPruner,
    ScorePruner,
    UncertaintyPruner,
)

__all__ = [
    "AUMPruner",
    "CLASS_RECALL_SCORING",
    "ClassRecallScorer",
    "CoreSetPruner",
    "DataPruner",
    "DynamicUncertaintyPruner",
    "EL2NPruner",
    "ForgettingPruner",
    "GraNdPruner",
    "GroupRecallScorer",
    "MetriQ",
    "Pipeline",
    "PrototypePruner",
    "RandomPruner",
    "ScorePruner",
    "StrategyQ",
    "UncertaintyPruner",
    "allocate_class_counts",
    "class_recall",
    "class_recall_report",
    "group_recall_report",
    "make_pipeline",
    "per_sample_grad_norms",
    "worst_group_accuracy",
]
