"""CIFAR-10 and CIFAR-100 from the "python version" pickles (torchvision's format)."""

import pickle

import numpy as np

from ..exceptions import with_article
from ._base import (
    DatasetFormatError,
    DatasetNotFoundError,
    check_labels,
    get_data_home,
    make_bunch,
    to_unit_float,
)

_IMAGE_SHAPE = (3, 32, 32)

#: Layout of each variant: folder, train and test batch files, meta file,
#: the keys of labels and class names, number of classes, download URL.
_VARIANTS = {
    "cifar10": dict(
        title="CIFAR-10",
        folder="cifar-10-batches-py",
        train=[f"data_batch_{i}" for i in range(1, 6)],
        test=["test_batch"],
        meta="batches.meta",
        labels_key="labels",
        names_key="label_names",
        n_classes=10,
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        torchvision="CIFAR10",
    ),
    "cifar100": dict(
        title="CIFAR-100",
        folder="cifar-100-python",
        train=["train"],
        test=["test"],
        meta="meta",
        labels_key="fine_labels",
        names_key="fine_label_names",
        n_classes=100,
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        torchvision="CIFAR100",
    ),
}

#: The only globals a CIFAR pickle needs: numpy's array reconstructors and
#: the codec Python 2 pickles use for bytes. Anything else (a pickle can
#: name any callable) is refused rather than run.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


def load_cifar10(root=None):
    """CIFAR-10: 60,000 32×32 colour images in 10 classes.

    Reads the "CIFAR-10 python version" (``cifar-10-python.tar.gz``,
    extracted), the format torchvision's ``CIFAR10`` downloads.

    Parameters
    ----------
    root : str or path-like, default=None
        Directory holding the extracted ``cifar-10-batches-py`` folder (or
        that folder itself). ``None`` uses ``$SKPRUNE_DATA``, else
        ``~/skprune_data``.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train`` (50,000 × 3 × 32 × 32) and ``X_test`` (10,000 × 3 × 32 ×
        32): ``float32`` in [0, 1]; ``y_train``, ``y_test``: ``int64``
        labels 0..9; ``class_names`` from ``batches.meta``; ``name`` and
        ``DESCR``.

    Raises
    ------
    DatasetNotFoundError
        If a batch file is missing (a ``FileNotFoundError`` naming it).
    DatasetFormatError
        If a file is truncated, corrupted or holds the wrong arrays (a
        ``ValueError`` naming it).

    Examples
    --------
    >>> from skprune.datasets import load_cifar10
    >>> data = load_cifar10("~/data")  # doctest: +SKIP
    >>> data.X_train.shape, data.class_names[:2]  # doctest: +SKIP
    ((50000, 3, 32, 32), ['airplane', 'automobile'])
    """
    return _load_cifar("cifar10", root)


def load_cifar100(root=None):
    """CIFAR-100: 60,000 32×32 colour images in 100 (fine) classes.

    Reads the "CIFAR-100 python version" (``cifar-100-python.tar.gz``,
    extracted), the format torchvision's ``CIFAR100`` downloads. Labels are
    the 100 fine classes.

    Parameters
    ----------
    root : str or path-like, default=None
        Directory holding the extracted ``cifar-100-python`` folder (or that
        folder itself). ``None`` uses ``$SKPRUNE_DATA``, else
        ``~/skprune_data``.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train`` (50,000 × 3 × 32 × 32) and ``X_test`` (10,000 × 3 × 32 ×
        32): ``float32`` in [0, 1]; ``y_train``, ``y_test``: ``int64``
        labels 0..99; ``class_names`` from ``meta``; ``name`` and ``DESCR``.

    Raises
    ------
    DatasetNotFoundError
        If a file is missing (a ``FileNotFoundError`` naming it).
    DatasetFormatError
        If a file is truncated, corrupted or holds the wrong arrays (a
        ``ValueError`` naming it).

    Examples
    --------
    >>> from skprune.datasets import load_cifar100
    >>> data = load_cifar100("~/data")  # doctest: +SKIP
    >>> data.X_test.shape, len(data.class_names)  # doctest: +SKIP
    ((10000, 3, 32, 32), 100)
    """
    return _load_cifar("cifar100", root)


def _load_cifar(variant, root):
    spec = _VARIANTS[variant]
    root = get_data_home(root)
    folder = root if (root / spec["meta"]).is_file() else root / spec["folder"]
    how_to_get = (
        f"Download {spec['url']} and extract it into {root} (or call "
        f"torchvision.datasets.{spec['torchvision']}({str(root)!r}, download=True))."
    )
    paths = [folder / name for name in [spec["meta"], *spec["train"], *spec["test"]]]
    for path in paths:
        if not path.is_file():
            raise DatasetNotFoundError(f"{spec['title']} file {path} not found. {how_to_get}")

    meta = _unpickle(paths[0], how_to_get)
    class_names = _field(meta, spec["names_key"], paths[0], how_to_get)
    if len(class_names) != spec["n_classes"]:
        raise DatasetFormatError(
            f"{paths[0]} lists {len(class_names)} class names; {spec['title']} has "
            f"{spec['n_classes']}. The file is corrupted or from another dataset. "
            f"{how_to_get}"
        )
    class_names = [_as_str(name) for name in class_names]

    n_train = len(spec["train"])
    train = [_read_batch(path, spec, how_to_get) for path in paths[1 : 1 + n_train]]
    test = [_read_batch(path, spec, how_to_get) for path in paths[1 + n_train :]]
    X_train = to_unit_float(np.concatenate([images for images, _ in train]))
    y_train = np.concatenate([labels for _, labels in train])
    X_test = to_unit_float(np.concatenate([images for images, _ in test]))
    y_test = np.concatenate([labels for _, labels in test])
    return make_bunch(
        variant,
        X_train,
        y_train,
        X_test,
        y_test,
        class_names,
        f"{spec['title']} (Krizhevsky 2009): 32×32 colour images, {spec['n_classes']} "
        "classes, 50,000 training and 10,000 test images, scaled to [0, 1].",
    )


def _read_batch(path, spec, how_to_get):
    batch = _unpickle(path, how_to_get)
    data = np.asarray(_field(batch, "data", path, how_to_get))
    labels = _field(batch, spec["labels_key"], path, how_to_get)
    n_values = int(np.prod(_IMAGE_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != n_values:
        raise DatasetFormatError(
            f"{path} holds 'data' of type {data.dtype} and shape {data.shape}; expected "
            f"uint8 of shape (n, {n_values}). The file is corrupted. {how_to_get}"
        )
    labels = check_labels(labels, spec["n_classes"], path)
    if labels.shape[0] != data.shape[0]:
        raise DatasetFormatError(
            f"{path} holds {data.shape[0]} images but {labels.shape[0]} labels. The "
            f"file is corrupted. {how_to_get}"
        )
    # Rows are stored channel by channel (1,024 red, green, blue values),
    # which is already NCHW.
    return data.reshape(-1, *_IMAGE_SHAPE), labels


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load global {module}.{name}")


def _unpickle(path, how_to_get):
    """The dict stored in a CIFAR pickle, keys as ``str``."""
    try:
        with open(path, "rb") as file:
            # The originals are Python 2 pickles: latin-1 maps their byte
            # strings one-to-one, as numpy expects.
            content = _CifarUnpickler(file, encoding="latin1").load()
    # A truncated or corrupted pickle can fail in many ways (EOFError,
    # UnpicklingError, ValueError, ...); all mean the same to the user.
    except Exception as error:  # noqa: BLE001
        raise DatasetFormatError(
            f"{path} is not a readable CIFAR pickle ({type(error).__name__}: {error}); "
            f"it is truncated or corrupted. {how_to_get}"
        ) from None
    if not isinstance(content, dict):
        raise DatasetFormatError(
            f"{path} holds {with_article(type(content).__name__)}, not the dict of a CIFAR batch. "
            f"The file is corrupted or from another dataset. {how_to_get}"
        )
    return {_as_str(key): value for key, value in content.items()}


def _field(content, key, path, how_to_get):
    if key not in content:
        raise DatasetFormatError(
            f"{path} has no {key!r} entry (it has {sorted(content)}). The file is "
            f"corrupted or from another dataset. {how_to_get}"
        )
    return content[key]


def _as_str(value):
    return value.decode("latin1") if isinstance(value, bytes) else str(value)
