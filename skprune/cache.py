"""Caching of scores and quota statistics across fits.

Scoring trains query networks and does not depend on ``density`` or
``quota``, so a sweep over those should pay for it once. A result is keyed
on everything that changes it: the data's content, every parameter that
reaches the computation, and the code that runs it (the source files that
define skprune and the user's classes and functions, and the versions of the
libraries underneath). What cannot be keyed (a Dataset that reads files
skprune cannot see, a class without source) is computed without the cache,
with a warning, rather than risk a stale result.

Results are plain arrays. On disk each is one ``.npz`` file, written
atomically and read as data (see :mod:`skprune._cache_files`): a regular
file only, only the arrays its kind of result declares (a :class:`Schema`),
each with its declared dtype and shape, and nothing ever unpickled, so a
cache directory holds no code and a planted file can neither hang nor crash
a fit. It can still hold wrong numbers of the right kind, so keep shared
cache directories writable by their team only (see :ref:`scaling`). An
entry that is not what its kind holds, or fails its check, is recomputed
and replaced, with one warning naming the file.
"""

import functools
import hashlib
import inspect
import os
import sys
import sysconfig
import types
import warnings
from collections import OrderedDict
from pathlib import Path
from threading import Lock

import joblib
import numpy as np
import sklearn
import skorch
import skorch.helper
import torch
from sklearn.base import BaseEstimator

from ._cache_files import BadEntryError, Schema, UnreadableEntryError, read_entry, write_entry
from .exceptions import with_article

#: Most results kept by the in-process cache (``memory=None``); the oldest
#: used entry is dropped first.
PROCESS_CACHE_SIZE = 64

#: The folder under a ``memory`` location that holds skprune's entries.
CACHE_FOLDER = "skprune-cache"

_process_cache = OrderedDict()
_process_cache_lock = Lock()


__all__ = ["CACHE_FOLDER", "PROCESS_CACHE_SIZE", "CacheEntry", "Schema", "UncacheableError",
           "cached_result", "clear_process_cache", "code_identity", "code_versions",
           "fingerprint"]


class UncacheableError(TypeError):
    """An input whose content or code cannot be keyed; its result is not cached."""


def fingerprint(obj):
    """A hash of ``obj`` by content and code, ignoring memory layout.

    Arrays hash by dtype, shape and values, so a C- or F-ordered copy or a
    view of the same values gets the same fingerprint. Tensors hash as
    arrays; classes and functions by the source files that define them;
    estimators by their class and (cloned) parameters; torch Datasets by
    their ``cache_key`` (or, for in-memory datasets such as
    ``TensorDataset``, their tensors; for a torchvision ``ImageFolder`` or
    ``DatasetFolder``, its files' paths, labels, sizes and modification
    times); a skorch ``SliceDataset`` by its Dataset and rows; any other
    object by its class and pickled content.

    Parameters
    ----------
    obj : object

    Returns
    -------
    str

    Raises
    ------
    UncacheableError
        If part of ``obj`` cannot be keyed by content: a Dataset without a
        ``cache_key``, a class or function without readable source, or an
        object that cannot be pickled.
    """
    return joblib.hash(_canonical(obj))


def _canonical(obj):
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return obj
    if isinstance(obj, type):
        return code_identity(obj)
    if isinstance(obj, (types.FunctionType, types.MethodType, types.BuiltinFunctionType)):
        return _function_identity(obj)
    if isinstance(obj, functools.partial):
        return ("partial", _canonical(obj.func), _canonical(obj.args), _canonical(obj.keywords))
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu()
        if tensor.layout != torch.strided:  # sparse: the content is the dense values
            tensor = tensor.to_dense()
        if tensor.dtype == torch.bfloat16:
            # numpy has no bfloat16: the bits are the content.
            return ("bfloat16", _canonical(tensor.view(torch.int16)))
        try:
            obj = tensor.numpy()
        except (TypeError, RuntimeError) as exc:
            raise UncacheableError(
                f"{with_article(tensor.dtype)} tensor cannot be keyed ({exc})") from None
    if isinstance(obj, np.ndarray):
        data = np.ascontiguousarray(obj)
        if not obj.dtype.hasobject:
            # The bytes' digest: several times faster than pickling them
            # through joblib's hasher, which matters for large data.
            try:
                return ("ndarray", obj.dtype.str, obj.shape, hashlib.sha256(data.data).hexdigest())
            except (TypeError, ValueError, BufferError):  # e.g. datetime64: no buffer
                pass
        return ("ndarray", obj.dtype.str, obj.shape, data)
    if isinstance(obj, np.generic):
        return obj
    if hasattr(obj, "iloc") and hasattr(obj, "to_numpy"):
        return ("pandas", _canonical(obj.to_numpy()), tuple(getattr(obj, "columns", ())))
    if isinstance(obj, BaseEstimator):
        params = obj.get_params(deep=False)
        return (code_identity(type(obj)),
                {name: _canonical(value) for name, value in sorted(params.items())})
    if isinstance(obj, (list, tuple)):
        return type(obj).__name__, [_canonical(item) for item in obj]
    if isinstance(obj, dict):
        return "dict", sorted((repr(key), _canonical(value)) for key, value in obj.items())
    if isinstance(obj, torch.utils.data.Dataset):
        return _dataset_identity(obj)
    if isinstance(obj, skorch.helper.SliceDataset):
        # The rows it reads, and which part of each item.
        return ("SliceDataset", _dataset_identity(obj.dataset), _canonical(obj.idx),
                _canonical(np.asarray(obj.indices_)))
    try:
        content = joblib.hash(obj)
    except Exception as exc:
        raise UncacheableError(
            f"{with_article(type(obj).__name__)} object cannot be pickled ({exc})"
        ) from None
    return ("object", code_identity(type(obj)), content)


def _dataset_identity(dataset):
    key = getattr(dataset, "cache_key", None)
    if key is not None:
        key = key() if callable(key) else key
        return ("Dataset", code_identity(type(dataset)), _canonical(key))
    if isinstance(dataset, torch.utils.data.Subset):
        return ("Subset", _canonical(dataset.dataset), _canonical(np.asarray(dataset.indices)))
    if isinstance(dataset, torch.utils.data.TensorDataset):
        return ("TensorDataset", [_canonical(tensor) for tensor in dataset.tensors])
    if isinstance(dataset, torch.utils.data.ConcatDataset):
        return ("ConcatDataset", [_canonical(part) for part in dataset.datasets])
    if type(dataset) is skorch.dataset.Dataset:
        return ("skorch.Dataset", _canonical(dataset.X), _canonical(dataset.y))
    folder = _dataset_folder_identity(dataset)
    if folder is not None:
        return folder
    raise UncacheableError(
        f"skprune cannot see the content of {with_article(type(dataset).__name__)} (it may read "
        "its rows from files). Give the Dataset a `cache_key` attribute or method "
        "that changes whenever its content does (for example a hash of its files) "
        "to cache its scores"
    )


def _dataset_folder_identity(dataset):
    """The key of a torchvision ``DatasetFolder`` (``ImageFolder``), or ``None`` for others.

    Its rows are its ``samples``: every file's path and label, with the
    file's size and modification time (an edited or replaced image is a new
    key), and what turns a file into a row (the class's code, the loader and
    the transforms).
    """
    folders = sys.modules.get("torchvision.datasets.folder")
    if folders is None or not isinstance(dataset, folders.DatasetFolder):
        return None
    files = []
    for path, label in dataset.samples:
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise UncacheableError(f"the {type(dataset).__name__} file {path} cannot be "
                                   f"read ({exc})") from None
        files.append((os.fspath(path), _canonical(label), stat.st_size, stat.st_mtime_ns))
    return ("DatasetFolder", code_identity(type(dataset)), files,
            _canonical(dataset.loader), _canonical(dataset.transform),
            _canonical(dataset.target_transform))


def code_identity(obj):
    """The code of a class or function: its name and the source files it comes from.

    A class defined in the user's own code (a script, a notebook, a local
    package) is identified by the content of its defining file and, inside
    a package, of every other source file of that package, so that an edit
    to a helper function or constant it uses is a new identity. A class from
    an installed distribution is identified by its file and the
    distribution's version.

    Where an object's code lives is memoized per object; the files are read
    again whenever one's modification time or size changes, so that a helper
    module edited and reloaded (``importlib.reload``, IPython's autoreload)
    gives the classes that use it a new identity.

    Raises
    ------
    UncacheableError
        If the object has no source that can be read (defined interactively
        in a plain interpreter).
    """
    location = _code_location(obj)
    if location[0] == "user":
        kind, module_name, qualname, path = location
        return (kind, module_name, qualname, _source_tree_digest(path, module_name))
    if location[0] == "installed":
        kind, module_name, qualname, version, path = location
        return (kind, module_name, qualname, version, _file_digest(path))
    return location


@functools.lru_cache(maxsize=1024)
def _code_location(obj):
    """The identity of code without files, or the file (and package) that holds it."""
    module_name = getattr(obj, "__module__", None) or "?"
    name = (module_name, getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj))))
    module = sys.modules.get(module_name)
    if module_name == "builtins" or (module is None and module_name in sys.builtin_module_names):
        return ("builtin", *name)
    try:
        path = inspect.getsourcefile(obj)
    except (TypeError, OSError):
        path = None
    if path is None or not os.path.isfile(path):
        # A C extension type, or code typed into an interpreter or notebook.
        version = _package_version(module_name)
        if version is not None:
            return ("compiled", *name, version)
        try:
            return ("source", *name, inspect.getsource(obj))
        except (OSError, TypeError):
            raise UncacheableError(
                f"the source of {'.'.join(name)} cannot be read, so results computed "
                "with it cannot be told apart from results of an edited version; define "
                "it in a file"
            ) from None
    path = os.path.realpath(path)
    if _is_installed(path):
        return ("installed", *name, _package_version(module_name), path)
    return ("user", *name, path)


def _function_identity(func):
    code = getattr(func, "__code__", None)
    if code is None:  # a builtin function or method
        return ("builtin-function", getattr(func, "__module__", None),
                getattr(func, "__qualname__", repr(func)))
    closure = tuple(_canonical(cell.cell_contents) for cell in func.__closure__ or ())
    owner = getattr(func, "__self__", None)
    return ("function", code_identity(func), code.co_code, repr(code.co_consts),
            closure, None if owner is None else _canonical(owner))


def _package_version(module_name):
    top = sys.modules.get(module_name.split(".")[0])
    return getattr(top, "__version__", None)


def _is_installed(path):
    roots = {sysconfig.get_paths()[name] for name in ("purelib", "platlib", "stdlib")}
    return any(path.startswith(os.path.realpath(root) + os.sep) for root in roots)


def _source_tree_digest(path, module_name):
    """Digest of a user source file and, inside a package, its package's other files.

    The files are listed and stat-ed on every call (an edited, added or
    removed file is a new digest); only their content digest is memoized,
    on every file's modification time and size.
    """
    path = Path(path)
    depth = module_name.count(".") + (path.name == "__init__.py")
    root = path.parents[depth - 1] if depth else None  # the top-level package
    if root is not None and (root / "__init__.py").is_file():
        files, base = _python_files(str(root)), str(root)
    else:
        files, base = [str(path)], str(path.parent)
    stamps = []
    for file in files:
        stat = os.stat(file)
        stamps.append((file, stat.st_mtime_ns, stat.st_size))
    return _tree_digest(base, tuple(stamps))


def _python_files(root):
    found = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
        found += [os.path.join(directory, name) for name in names if name.endswith(".py")]
    return sorted(found)


@functools.lru_cache(maxsize=256)
def _tree_digest(base, stamps):
    digest = hashlib.sha256()
    for file, mtime_ns, size in stamps:
        digest.update(os.path.relpath(file, base).replace(os.sep, "/").encode())
        digest.update(_file_digest_cached(file, mtime_ns, size).encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=4096)
def _file_digest_cached(path, mtime_ns, size):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def _file_digest(path):
    stat = os.stat(path)
    return _file_digest_cached(path, stat.st_mtime_ns, stat.st_size)


def code_versions():
    """What every key includes: skprune's own source, and the libraries it runs on."""
    return (
        ("skprune", _source_tree_digest(str(Path(__file__).resolve()), __name__)),
        ("torch", torch.__version__),
        ("numpy", np.__version__),
        ("scikit-learn", sklearn.__version__),
        ("skorch", skorch.__version__),
    )


def cached_result(memory, key, compute, *, schema=None, check=None, what="results"):
    """Return ``compute()``, reusing an earlier result stored under ``key``.

    Parameters
    ----------
    memory : None, str, pathlib.Path or joblib.Memory
        ``None`` keeps results in this process (at most
        :data:`PROCESS_CACHE_SIZE` of them); a path, or a ``joblib.Memory``
        (its ``location``), stores them on disk, shared by processes and
        runs. A ``joblib.Memory`` without a location caches nothing.
    key : object or None
        Everything the result depends on besides the code, which is added
        here; hashed with :func:`fingerprint`. ``None`` disables caching
        (e.g. with ``random_state=None``, where a result must never be
        reused).
    compute : callable
        Computes the result, a dict of arrays; called only on a miss.
    schema : Schema, default=None
        The arrays the result holds, with their dtypes and shapes. A stored
        entry is read only if it holds exactly these (anything else is
        recomputed and replaced); a computed result is cast to them. Without
        one, a stored entry's arrays are read whatever they are (still never
        unpickled, and only uncompressed); every caller in skprune gives one.
    check : callable, default=None
        Raises ``ValueError`` for a result that must not be used (semantic
        checks beyond the schema's); a stored entry that fails it is
        recomputed and replaced. Computed results are checked too, before
        they are cast to the schema.
    what : str, default="results"
        What is computed, for warnings (e.g. ``"EL2NPruner scores"``).

    Returns
    -------
    dict of str to ndarray
    """
    entry = CacheEntry(memory, key, schema=schema, check=check, what=what)
    result = entry.load()
    if result is None:
        result = entry.store(compute())
    return result


class CacheEntry:
    """One result's place in the cache: look it up, then store it if missing.

    :func:`cached_result` in two steps, for callers that compute several
    missing results together (for example in parallel) between the lookups
    and the stores.

    Parameters
    ----------
    memory, key, schema, check, what
        As in :func:`cached_result`.
    """

    def __init__(self, memory, key, *, schema=None, check=None, what="results"):
        self.schema = schema
        self.check = check
        self.what = what
        self.digest = self.path = None
        # Whether the stored entry was found damaged, and is to be replaced.
        self._replace = False
        if key is None:
            return
        try:
            self.digest = fingerprint((code_versions(), key))
        except UncacheableError as exc:
            warnings.warn(f"{what} are not cached: {exc}.", UserWarning, stacklevel=3)
            return
        if memory is not None:
            location = _location(memory)
            if location is None:
                self.digest = None
            else:
                self.path = location / CACHE_FOLDER / f"{self.digest}.npz"

    def load(self):
        """The stored result, checked, or ``None`` on a miss."""
        if self.digest is None:
            return None
        if self.path is None:
            with _process_cache_lock:
                stored = _process_cache.get(self.digest)
                if stored is not None:
                    _process_cache.move_to_end(self.digest)
            return None if stored is None else {name: value.copy()
                                                for name, value in stored.items()}
        try:
            stored = read_entry(self.path, self.schema)
            if stored is None:
                return None
            if self.schema is None:
                stored = {name: np.asarray(value) for name, value in stored.items()}
            if self.check is not None:
                self.check(stored)
            return stored
        except UnreadableEntryError as exc:
            # Most likely another user's valid entry: replacing it would only
            # make it unreadable to them in turn.
            warnings.warn(
                f"Cannot read the cache entry {self.path} of {self.what} ({exc.strerror}); "
                "recomputing them without replacing it. A cache shared by several users "
                "needs a setgid group directory (see the scaling guide's 'memory on a "
                "shared file system').", UserWarning, stacklevel=3)
        except (BadEntryError, ValueError, TypeError) as exc:
            self._replace = True
            warnings.warn(f"Ignoring the cache entry {self.path} of {self.what}: {exc}. "
                          "Recomputing them and replacing the entry.", UserWarning, stacklevel=3)
        except OSError as exc:  # e.g. EIO on a network file system
            warnings.warn(f"Cannot read the cache entry {self.path} of {self.what} ({exc}); "
                          "recomputing them.", UserWarning, stacklevel=3)
        return None

    def store(self, result):
        """Check a computed result, store it (unless uncacheable) and return it."""
        result = {name: np.asarray(value) for name, value in result.items()}
        if self.check is not None:
            self.check(result)
        if self.schema is not None:
            result = self.schema.conform(result)
        if self.digest is None:
            return result
        if self.path is not None:
            try:
                write_entry(self.path, result, replace=self._replace)
            except OSError as exc:
                # A full disk or a read-only cache loses the reuse, not the result.
                warnings.warn(f"Could not write the cache entry {self.path} ({exc}); "
                              "continuing without storing it.", UserWarning, stacklevel=3)
            return result
        with _process_cache_lock:
            self._remember(result)
        return result

    def _remember(self, result):
        _process_cache[self.digest] = {name: value.copy() for name, value in result.items()}
        while len(_process_cache) > PROCESS_CACHE_SIZE:
            _process_cache.popitem(last=False)


def _location(memory):
    if isinstance(memory, (str, os.PathLike)):
        return Path(os.path.expanduser(os.fspath(memory)))
    location = getattr(memory, "location", None)
    return None if location is None else Path(os.path.expanduser(os.fspath(location)))


def clear_process_cache():
    """Forget every result cached in this process with ``memory=None``."""
    with _process_cache_lock:
        _process_cache.clear()
