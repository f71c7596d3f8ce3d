"""skprune: robust data pruning for scikit-learn and skorch."""

from . import quotas, strategies
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
from .pipeline import Pipeline, corrected_epochs, make_pipeline

# Every pruner and quota is public from here too, so that a new one is
# exported by its own subpackage's __all__ alone.
from .quotas import *  # noqa: F403
from .strategies import *  # noqa: F403

__all__ = [
    "CLASS_RECALL_SCORING",
    "ClassRecallScorer",
    "DataPruner",
    "GroupRecallScorer",
    "Pipeline",
    "class_recall",
    "class_recall_report",
    "corrected_epochs",
    "group_recall_report",
    "make_pipeline",
    "per_sample_grad_norms",
    "worst_group_accuracy",
]
__all__ += quotas.__all__
__all__ += strategies.__all__
