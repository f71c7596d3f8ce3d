"""The data a benchmark cell trains and is evaluated on.

Workers load the dataset themselves (once per process) rather than receive
it with every task: a cell then ships a few bytes to a loky or dask worker,
not the training set. The data must therefore be at the same path on every
worker, which is the case on one machine and on a cluster with shared storage.
"""

import functools

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

from skprune.datasets import load_dataset

from ._config import InvalidConfigError


@functools.lru_cache(maxsize=2)
def load_benchmark_data(dataset, data_root=None, n_train=None):
    """Load a dataset from ``skprune.datasets`` and subsample its training set.

    Parameters
    ----------
    dataset : str
        A name in ``skprune.datasets.DATASETS``.
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
    loaded = load_dataset(dataset, root=data_root)
    # A new Bunch: the loader may cache and share the one it returns.
    data = Bunch(**loaded)
    n_classes = len(np.unique(data.y_train))
    if n_train is not None and n_train < n_classes:
        raise InvalidConfigError(
            f"n_train={n_train} is below the number of classes of {dataset!r} "
            f"({n_classes}): a stratified subsample keeps at least one row per class. "
            f"Use --n-train {n_classes} or more."
        )
    if n_train is not None and n_train < len(data.y_train):
        kept, _ = train_test_split(
            np.arange(len(data.y_train)), train_size=n_train,
            stratify=data.y_train, random_state=0,
        )
        kept = np.sort(kept)
        data.X_train, data.y_train = data.X_train[kept], data.y_train[kept]
    data.classes = np.unique(np.concatenate([data.y_train, data.y_test]))
    return data


def split_test_set(y_test, seed):
    """Split the test set in halves, per class: MetriQ validation and evaluation.

    MetriQ measures class recall on one half; every cell's metrics come from
    the other (the paper's protocol). The split changes with the seed, like
    everything else a seed controls.

    Parameters
    ----------
    y_test : ndarray of shape (n_test,)
    seed : int

    Returns
    -------
    validation, evaluation : ndarray of int
        Sorted row positions of the two halves.
    """
    validation, evaluation = train_test_split(
        np.arange(len(y_test)), test_size=0.5, stratify=y_test, random_state=seed
    )
    return np.sort(validation), np.sort(evaluation)
