"""Quotas whose weights follow from the group sizes, or are given."""

import numpy as np

from .._docstrings import quota_attributes
from ._base import BaseQuota


@quota_attributes("All ones.")
class ProportionalQuota(BaseQuota):
    """Every group keeps the same fraction: stratified pruning (``quota="proportional"``).

    Attributes
    ----------
    {quota_attributes}

    See Also
    --------
    BalancedQuota : every group keeps the same number.
    """

    def _weights(self, context):
        return np.ones(context.group_labels.shape[0])


@quota_attributes("``1 / N_k`` for a group of ``N_k`` rows.")
class BalancedQuota(BaseQuota):
    """Every group keeps the same number of rows, where it has them (``quota="balanced"``).

    Attributes
    ----------
    {quota_attributes}

    See Also
    --------
    ProportionalQuota : every group keeps the same fraction.
    """

    def _weights(self, context):
        return 1.0 / context.group_sizes


@quota_attributes("The given weights, in the order of ``group_labels_``.")
class GivenWeights(BaseQuota):
    """Density weights given per group (a ``quota={group: weight}`` dict).

    Parameters
    ----------
    weights : dict
        A non-negative weight for every group (every class) in the data.

    Attributes
    ----------
    {quota_attributes}
    """

    _parameter_constraints = {"weights": [dict]}

    def __init__(self, weights):
        self.weights = weights

    def _weights(self, context):
        labels = context.group_labels.tolist()
        known = set(labels)
        unknown = [label for label in self.weights if label not in known]
        if unknown:
            raise ValueError(
                f"quota has weights for {unknown}, which are not in the data; it has "
                f"{sorted(known)}."
            )
        missing = [label for label in labels if label not in self.weights]
        if missing:
            raise ValueError(
                f"quota has no weight for {missing}; give a weight for every class (or "
                "group) in the data."
            )
        weights = np.array([self.weights[label] for label in labels], dtype=object)
        try:
            weights = weights.astype(float)
        except (TypeError, ValueError):
            raise ValueError(f"quota weights must be numbers; got {self.weights!r}.") from None
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(
                f"quota weights must be finite and non-negative; got {self.weights!r}."
            )
        return weights
