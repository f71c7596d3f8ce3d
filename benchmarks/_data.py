"""The data a benchmark cell trains and is evaluated on.

Workers load the dataset themselves (once per process) rather than receive
it with every task: a cell then ships a few bytes to a loky or dask worker,
not the training set. The data must therefore be at the same path on every
worker, which is the case on one machine and on a cluster with shared storage.
"""

import functools
import os

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

from skprune.datasets import load_dataset

from ._config import InvalidConfigError
from ._registry import RegistryError, import_object


def load_benchmark_data(dataset, data_root=None, n_train=None):
    """Load a dataset and subsample its training set.

    Parameters
    ----------
    dataset : str
        A name in ``skprune.datasets.DATASETS``, a path to an ``.npz`` file
        holding ``X_train``, ``y_train``, ``X_test`` and ``y_test`` (and
        optionally ``class_names``), or ``module:function`` returning those
        as a dict, a ``Bunch`` or a 4-tuple.
    data_root : str or None
        Where its files are; ``None`` uses the loader's default location.
    n_train : int or None
        Keep a stratified subsample of this many training rows, always the
        same ones (they are part of the benchmark's settings, not of a seed).

    Returns
    -------
    sklearn.utils.Bunch
        ``X_train``, ``y_train``, ``X_test``, ``y_test``, ``class_names`` and
        ``classes`` (the sorted labels).

    Raises
    ------
    FileNotFoundError
        The dataset's files are missing; the message says how to get them.
    ValueError
        A file is damaged (``skprune.datasets.DatasetFormatError``, naming
        it), or ``n_train`` is below the number of classes
        (:class:`~benchmarks._config.InvalidConfigError`).
    """
    # Loaded once per process and file version: an .npz rewritten in place
    # is read again.
    return _load_subsampled(dataset, data_root, n_train, _file_stamp(dataset))


def _file_stamp(path):
    try:
        stat = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=2)
def _load_subsampled(dataset, data_root, n_train, stamp):
    data = _load(dataset, data_root)
    n_classes = len(np.unique(data.y_train))
    if n_train is not None and n_train < n_classes:
        raise InvalidConfigError(
            f"n_train={n_train} is below the number of classes of {dataset!r} "
            f"({n_classes}): a stratified subsample keeps at least one row per class. "
            f"Use --n-train {n_classes} or more."
        )
    if n_train is not None and n_train < len(data.y_train):
        # Stratified by group where the data has groups, so that a small
        # minority group is not left out.
        kept, _ = train_test_split(
            np.arange(len(data.y_train)), train_size=n_train,
            stratify=data.get("groups_train", data.y_train), random_state=0,
        )
        kept = np.sort(kept)
        for name in ("X_train", "y_train", "groups_train", "attribute_train"):
            if name in data:
                data[name] = data[name][kept]
    data.classes = np.unique(np.concatenate([data.y_train, data.y_test]))
    if "groups_train" in data:
        for part in ("train", "test"):
            groups = np.asarray(data.get(f"groups_{part}", ())).reshape(-1)
            if groups.shape[0] != len(data[f"y_{part}"]):
                raise InvalidConfigError(
                    f"--dataset {dataset}: groups_{part} must give one group per row of "
                    f"y_{part} (a dataset with groups_train needs groups_test too)."
                )
            data[f"groups_{part}"] = groups
    return data


def split_test_set(y_test, seed, how="stratified", groups=None):
    """Split the test set in halves, per class: MetriQ validation and evaluation.

    MetriQ measures class recall on one half; every cell's metrics come from
    the other (the paper's protocol).

    Parameters
    ----------
    y_test : ndarray of shape (n_test,)
    seed : int
    how : {"stratified", "ordered"}, default="stratified"
        ``"stratified"``: half of every class at random, a new split for
        every seed, like everything else a seed controls. ``"ordered"``: the
        first half of every class (rounded down) in dataset order, whatever
        the seed, as the DRoP authors split.
    groups : ndarray of shape (n_test,), default=None
        Halve every group instead of every class.

    Returns
    -------
    validation, evaluation : ndarray of int
        Sorted row positions of the two halves.
    """
    if how == "ordered" or groups is not None:
        # Half of every stratum, rounded down, in dataset order or shuffled
        # by the seed. (Groups can be tiny, a minority group of one row, which
        # train_test_split's stratification refuses.)
        strata = y_test if groups is None else groups
        rng = None if how == "ordered" else np.random.RandomState(seed)
        validation = []
        for label in np.unique(strata):
            rows = np.flatnonzero(strata == label)
            rows = rows if rng is None else rng.permutation(rows)
            validation.append(rows[: len(rows) // 2])
        validation = np.sort(np.concatenate(validation))
        return validation, np.setdiff1d(np.arange(len(y_test)), validation)
    validation, evaluation = train_test_split(
        np.arange(len(y_test)), test_size=0.5, stratify=y_test, random_state=seed
    )
    return np.sort(validation), np.sort(evaluation)


_FIELDS = ("X_train", "y_train", "X_test", "y_test")


def _load(dataset, data_root):
    """The dataset as a new ``Bunch`` (loaders may cache and share theirs)."""
    if dataset.endswith(".npz"):
        try:
            with np.load(dataset, allow_pickle=False) as stored:
                loaded = {name: stored[name] for name in stored.files}
        except FileNotFoundError:
            raise FileNotFoundError(
                f"--dataset {dataset}: no such file. Give the path of an .npz file holding "
                f"{', '.join(_FIELDS)}."
            ) from None
        except (OSError, ValueError) as exc:
            raise InvalidConfigError(
                f"--dataset {dataset} is not a readable .npz file ({exc}); write it with "
                f"numpy.savez({', '.join(f'{name}=...' for name in _FIELDS)})."
            ) from None
        return _checked(loaded, dataset)
    if ":" in dataset:
        try:
            loaded = import_object(dataset, "--dataset")()
        except RegistryError as exc:
            raise InvalidConfigError(str(exc)) from None
        if isinstance(loaded, tuple) and len(loaded) == 4:
            loaded = dict(zip(_FIELDS, loaded, strict=True))
        if not isinstance(loaded, dict):
            raise InvalidConfigError(
                f"--dataset {dataset} must return a dict (or Bunch) with {', '.join(_FIELDS)}, "
                f"or a tuple of those four; got {type(loaded).__name__}."
            )
        return _checked(dict(loaded), dataset)
    return Bunch(**load_dataset(dataset, root=data_root))


def _checked(loaded, source):
    missing = [name for name in _FIELDS if name not in loaded]
    if missing:
        raise InvalidConfigError(
            f"--dataset {source} lacks {', '.join(missing)}; it needs {', '.join(_FIELDS)}."
        )
    data = Bunch(**loaded)
    for part in ("train", "test"):
        X, y = np.asarray(data[f"X_{part}"]), np.asarray(data[f"y_{part}"]).reshape(-1)
        if X.shape[0] != y.shape[0]:
            raise InvalidConfigError(
                f"--dataset {source}: X_{part} has {X.shape[0]} rows but y_{part} has "
                f"{y.shape[0]} labels."
            )
        if X.dtype.kind == "f" and X.dtype != np.float32:
            X = X.astype(np.float32)
        if X.dtype.kind not in "fiub":
            raise InvalidConfigError(
                f"--dataset {source}: X_{part} must be numeric; got dtype {X.dtype}."
            )
        data[f"X_{part}"], data[f"y_{part}"] = X, y
    data.setdefault("name", source)
    return data
