"""Turning a pruner's ``quota`` parameter into class density weights."""

import numpy as np

from ._base import BaseQuota

QUOTA_NAMES = ("proportional", "balanced", "metriq")


def quota_weights(quota, pruner, X, y, classes, seed):
    """Density weights for ``quota``, one per class in ``classes``.

    Parameters
    ----------
    quota : {"proportional", "balanced", "metriq"}, dict or BaseQuota
        The pruner's ``quota`` parameter (not ``None``).
    pruner, X, y, classes, seed
        As in :meth:`BaseQuota.class_weights`.

    Returns
    -------
    weights : ndarray of shape (n_classes,)
    attributes : dict
        Fitted attributes the quota adds to the pruner.
    """
    class_sizes = np.array([np.count_nonzero(y == label) for label in classes])
    if isinstance(quota, str):
        if quota == "proportional":
            return np.ones(classes.size), {}
        if quota == "balanced":
            return 1.0 / class_sizes, {}
        if quota == "metriq":
            from ._metriq import MetriQ

            return MetriQ().class_weights(pruner, X, y, classes, seed)
        raise ValueError(
            f"Unknown quota {quota!r}; use one of {QUOTA_NAMES}, None, a dict "
            "{class: weight}, MetriQ(...) or StrategyQ(...)."
        )
    if isinstance(quota, dict):
        return _dict_weights(quota, classes), {}
    if isinstance(quota, BaseQuota):
        return quota.class_weights(pruner, X, y, classes, seed)
    raise TypeError(f"quota must be None, a string, a dict or a quota object; got {quota!r}.")


def _dict_weights(quota, classes):
    known = set(classes.tolist())
    unknown = [label for label in quota if label not in known]
    if unknown:
        raise ValueError(
            f"quota has weights for classes {unknown} that are not in y; y has "
            f"classes {sorted(known)}."
        )
    missing = [label for label in classes.tolist() if label not in quota]
    if missing:
        raise ValueError(
            f"quota has no weight for classes {missing}; give a weight for every class in y."
        )
    weights = np.array([quota[label] for label in classes.tolist()], dtype=object)
    try:
        weights = weights.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"quota weights must be numbers; got {quota!r}.") from None
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(
            f"quota weights must be finite and non-negative; got {quota!r}."
        )
    return weights
