"""The interface every quota implements."""

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator

from .._docstrings import quota_attributes


@quota_attributes("Non-negative density weight of every group, aligned with ``group_labels_``.")
class BaseQuota(BaseEstimator, metaclass=ABCMeta):
    """A rule that gives every group (by default, every class) a density weight.

    A pruner builds a ``PruningContext`` once per fit,
    fits a clone of its quota on it and keeps it as ``quota_``; the weights
    become kept counts per group through
    :func:`~skprune.quotas.allocate_class_counts`. Quotas are estimators, so
    their parameters can be searched over in a pipeline
    (``"pruner__quota__validation"``).

    Subclasses implement ``_weights``; what else they learn (e.g.
    MetriQ's ``class_recall_``) they set there.

    Attributes
    ----------
    {quota_attributes}
    """

    _parameter_constraints = {}

    def fit(self, context):
        """Learn the density weight of every group of ``context``.

        Parameters
        ----------
        context : PruningContext
            The data being pruned and what the pruner derived from it.

        Returns
        -------
        self
        """
        self._validate_params()
        weights = np.asarray(self._weights(context), dtype=float)
        n_groups = context.group_labels.shape[0]
        if weights.shape != (n_groups,):
            raise ValueError(
                f"{type(self).__name__} gave {weights.shape} weights for {n_groups} groups; "
                "a quota gives one weight per group."
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(
                f"{type(self).__name__} gave weights {weights}; density weights must be "
                "finite and non-negative."
            )
        self.weights_ = weights
        self.group_labels_ = context.group_labels
        return self

    @abstractmethod
    def _weights(self, context):
        """Density weight of every group of ``context``, aligned with its ``group_labels``."""

    def _query_validation(self, context, pruner):
        """Validation rows the pruner's query networks should predict for this quota.

        A quota that learns from a model trained on the pruned data (MetriQ)
        returns a :class:`skprune._runs.SharedValidation` here to read its
        recalls from the pruner's own networks (``context.query_predictions``
        at fit time) instead of training networks of its own; ``None``
        (the default) asks for nothing.
        """
        return None

    def _starvation_hint(self):
        """Advice appended to the warning when this quota starves a group."""
        return ""
