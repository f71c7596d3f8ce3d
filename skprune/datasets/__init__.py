"""Image datasets of the paper's benchmarks, as NCHW arrays.

Every loader returns a :class:`sklearn.utils.Bunch` with ``X_train``,
``y_train``, ``X_test``, ``y_test`` (``float32`` images in [0, 1], shape
(n, channels, height, width), and ``int64`` labels), ``class_names``,
``name`` and ``DESCR``. A missing file raises :class:`DatasetNotFoundError`
(a ``FileNotFoundError``), a truncated or corrupted one
:class:`DatasetFormatError` (a ``ValueError``); both messages name the file
and say how to get it. :func:`load_spurious_fashion_mnist`, a group-robustness
benchmark, adds attributes and groups (class × attribute) to its ``Bunch``.
"""

from ._base import DATA_ENV, DatasetFormatError, DatasetNotFoundError, get_data_home
from ._cifar import load_cifar10, load_cifar100
from ._digits import load_digits_images
from ._fashion_mnist import load_fashion_mnist
from ._registry import DATASETS, load_dataset
from ._spurious import load_spurious_fashion_mnist
from ._tiny_imagenet import load_tiny_imagenet

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "get_data_home",
    "load_cifar10",
    "load_cifar100",
    "load_dataset",
    "load_digits_images",
    "load_fashion_mnist",
    "load_spurious_fashion_mnist",
    "load_tiny_imagenet",
]
