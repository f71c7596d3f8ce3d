"""Utilities for writing and checking pruners.

Public: :class:`PrunerTags`, the facts a pruning strategy declares in its
``__sklearn_tags__``; :func:`check_pruner_settings` and :func:`check_device`,
which fail before any training for settings that cannot work;
:func:`exit_with_parent` and :func:`worker_initializer`, which end worker
processes (a pruner's ``n_jobs`` runs, your own joblib fan-outs) when their
parent dies; and the module
:mod:`skprune.utils.estimator_checks`, the guarantees every pruner must keep,
as checks to run on your own.

The private modules hold the torch helpers every pruner and quota uses, one
concept each: random states (``_random_state``), devices (``_devices``),
data as torch modules expect it (``_torch_data``) and calling modules and
checking their outputs (``_modules``).
"""

from ._devices import check_device
from ._settings import check_pruner_settings
from ._tags import PrunerTags
from ._workers import exit_with_parent, worker_initializer

__all__ = ["PrunerTags", "check_device", "check_pruner_settings", "exit_with_parent",
           "worker_initializer"]
