"""What every loader shares: its errors, where data lives, and the result it returns."""

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

#: Environment variable naming the directory where datasets are looked for
#: (and downloaded to) when no ``root`` is given.
DATA_ENV = "SKPRUNE_DATA"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is missing; the message names it and says how to get it."""


class DatasetFormatError(ValueError):
    """A dataset file is truncated, corrupted or not in the expected format.

    The message names the file.
    """


def get_data_home(data_home=None):
    """The directory where datasets are looked for when no ``root`` is given.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Returned as it is when given. Otherwise ``$SKPRUNE_DATA`` when that
        environment variable is set, else ``~/skprune_data``.

    Returns
    -------
    data_home : pathlib.Path

    Examples
    --------
    >>> from skprune.datasets import get_data_home
    >>> str(get_data_home("/data/images"))
    '/data/images'
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    return Path(os.environ.get(DATA_ENV) or Path.home() / "skprune_data").expanduser()


def to_unit_float(images):
    """``uint8`` images as ``float32`` in [0, 1], without a float64 intermediate."""
    images = images.astype(np.float32)
    images /= 255.0
    return images


def check_labels(labels, n_classes, path):
    """Labels as ``int64``; a ``DatasetFormatError`` naming ``path`` if out of range."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetFormatError(
            f"{path} holds labels of shape {labels.shape} and type {labels.dtype}; "
            "expected a one-dimensional sequence of integer class labels. The file "
            "is corrupted: download it again."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetFormatError(
            f"{path} holds labels from {labels.min()} to {labels.max()}; expected "
            f"labels in [0, {n_classes - 1}]. The file is corrupted: download it again."
        )
    return labels.astype(np.int64)


def make_bunch(name, X_train, y_train, X_test, y_test, class_names, descr):
    """The result every loader returns."""
    return Bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        class_names=list(class_names),
        name=name,
        DESCR=descr,
    )
