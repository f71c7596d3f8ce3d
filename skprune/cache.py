"""Caching of scores and quota statistics across fits.

Scoring trains query networks and does not depend on ``density`` or
``quota``, so a sweep over those should pay for it once. Results are keyed
on a fingerprint of the data and of every parameter that changes them.
"""

import functools
import inspect
import os
import warnings
from collections import OrderedDict
from threading import Lock

import joblib
import numpy as np
import sklearn
import skorch
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_memory

from ._version import __version__

#: Most results kept by the in-process cache (``memory=None``); the oldest
#: used entry is dropped first.
PROCESS_CACHE_SIZE = 64

#: Part of every key: the code that computes a result matters as much as its inputs.
_CODE_VERSIONS = (
    ("skprune", __version__),
    ("torch", torch.__version__),
    ("scikit-learn", sklearn.__version__),
    ("skorch", skorch.__version__),
)

_process_cache = OrderedDict()
_process_cache_lock = Lock()


def fingerprint(obj):
    """A hash of ``obj`` that ignores memory layout.

    Arrays hash by dtype, shape and values, so a C- or F-ordered copy or a
    view of the same values gets the same fingerprint. Tensors hash as
    arrays, estimators by their (cloned) parameters, and any other object by
    its pickled content (joblib.hash).

    Parameters
    ----------
    obj : object

    Returns
    -------
    str
    """
    return joblib.hash(_canonical(obj))


def _canonical(obj):
    if isinstance(obj, type):
        return _class_identity(obj)
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.dtype.str, obj.shape, np.ascontiguousarray(obj))
    if hasattr(obj, "iloc") and hasattr(obj, "to_numpy"):
        return ("pandas", _canonical(obj.to_numpy()), tuple(getattr(obj, "columns", ())))
    if isinstance(obj, BaseEstimator):
        params = clone(obj).get_params(deep=False)
        return (type(obj).__module__, type(obj).__qualname__,
                {name: _canonical(value) for name, value in sorted(params.items())})
    if isinstance(obj, (list, tuple)):
        return type(obj).__name__, [_canonical(item) for item in obj]
    if isinstance(obj, dict):
        return "dict", sorted((repr(key), _canonical(value)) for key, value in obj.items())
    if isinstance(obj, torch.utils.data.Subset):
        return "Subset", _canonical(obj.dataset), _canonical(np.asarray(obj.indices))
    if isinstance(obj, torch.utils.data.TensorDataset):
        return "TensorDataset", [_canonical(tensor) for tensor in obj.tensors]
    return obj


@functools.lru_cache(maxsize=1024)
def _class_identity(cls):
    """A class by its code, not only its name: a module class edited and
    re-imported (or redefined in a notebook) must not reuse old scores.

    Memoized per class object: reading the source parses the class's whole
    module, and an edited class is a new object anyway.
    """
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        # No source to read (built-in, or defined interactively): this class
        # object only, so at worst a result is not reused across processes.
        source = ("id", id(cls))
    return ("class", cls.__module__, cls.__qualname__, source)


def cached_call(memory, key, compute):
    """Return ``compute()``, reusing an earlier result stored under ``key``.

    Parameters
    ----------
    memory : None, str, pathlib.Path or joblib.Memory
        ``None`` keeps results in this process (at most
        :data:`PROCESS_CACHE_SIZE` of them); a path or ``joblib.Memory``
        stores them on disk, shared by processes and runs.
    key : object or None
        Everything the result depends on; hashed with :func:`fingerprint`.
        ``None`` disables caching (e.g. with ``random_state=None``, where a
        result must never be reused).
    compute : callable
        Computes the result; called only on a cache miss.
    """
    if key is None:
        return compute()
    try:
        digest = fingerprint((_CODE_VERSIONS, key))
    except Exception as exc:  # e.g. a Dataset that cannot be pickled
        warnings.warn(
            f"Results are not cached because their inputs cannot be hashed ({exc}).",
            UserWarning,
            stacklevel=3,
        )
        return compute()
    if memory is None:
        with _process_cache_lock:
            if digest in _process_cache:
                _process_cache.move_to_end(digest)
                return _process_cache[digest]
        result = compute()
        with _process_cache_lock:
            _process_cache[digest] = result
            while len(_process_cache) > PROCESS_CACHE_SIZE:
                _process_cache.popitem(last=False)
        return result
    memory = check_memory(os.fspath(memory) if isinstance(memory, os.PathLike) else memory)
    return memory.cache(_call, ignore=["compute"])(digest, compute)


def _call(digest, compute):
    # joblib.Memory hashes ``digest`` only; ``compute`` carries the data.
    return compute()


def clear_process_cache():
    """Forget every result cached in this process with ``memory=None``."""
    with _process_cache_lock:
        _process_cache.clear()
