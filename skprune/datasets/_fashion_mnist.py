"""Fashion-MNIST from local IDX files, falling back to torchvision's download."""

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from ..exceptions import with_article
from ._base import (
    DATA_ENV,
    DatasetFormatError,
    DatasetNotFoundError,
    check_labels,
    get_data_home,
    make_bunch,
    to_unit_float,
)
from ._idx import read_idx

#: Where Debian's ``dataset-fashion-mnist`` package installs the files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

#: The four files, without their optional ``.gz`` suffix, in the order read.
_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IMAGE_SIZE = (28, 28)

_HOW_TO_GET = (
    "Install Debian's package (`sudo apt-get install dataset-fashion-mnist`, files in "
    f"{DEBIAN_DIR}), or download the four files from "
    "https://github.com/zalandoresearch/fashion-mnist into a directory and pass it as "
    f"`root` or set ${DATA_ENV} to it."
)


def load_fashion_mnist(root=None, *, download=True):
    """Fashion-MNIST: 70,000 28×28 grayscale images of clothing in 10 classes.

    The files are the four IDX files of the original distribution
    (``train-images-idx3-ubyte.gz`` etc.), gzipped or not. They are looked
    for, in this order:

    1. in ``root``, when it is given (and nowhere else);
    2. in ``$SKPRUNE_DATA``, when that environment variable is set;
    3. in ``/usr/share/datasets/fashion-mnist``, where Debian's
       ``dataset-fashion-mnist`` package installs them;
    4. in ``~/skprune_data``, where an earlier download went;
    5. downloaded by torchvision into ``root`` (or the data home of 2./4.),
       only when ``download=True`` and the download server answers within
       two seconds.

    In each directory the files may also lie in a ``fashion-mnist/``
    subdirectory or in torchvision's ``FashionMNIST/raw/`` layout.

    Parameters
    ----------
    root : str or path-like, default=None
        Directory holding the files. ``None`` searches the locations above.
    download : bool, default=True
        Whether torchvision may download the files when they are not found.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train`` (60,000 × 1 × 28 × 28) and ``X_test`` (10,000 × 1 × 28
        × 28): ``float32`` in [0, 1]; ``y_train``, ``y_test``: ``int64``
        labels 0..9; ``class_names`` (``"Shirt"`` is class 6, the hardest);
        ``name`` and ``DESCR``.

    Raises
    ------
    DatasetNotFoundError
        If the files are found nowhere and cannot be downloaded. A
        ``FileNotFoundError``; the message names the missing file.
    DatasetFormatError
        If a file is truncated, corrupted or holds the wrong arrays. A
        ``ValueError``; the message names the file.

    Examples
    --------
    >>> from skprune.datasets import load_fashion_mnist
    >>> data = load_fashion_mnist()  # doctest: +SKIP
    >>> data.X_train.shape, data.class_names[6]  # doctest: +SKIP
    ((60000, 1, 28, 28), 'Shirt')
    """
    if root is not None:
        bases = [Path(root).expanduser()]
    else:
        bases = [Path(os.environ[DATA_ENV])] if os.environ.get(DATA_ENV) else []
        bases += [DEBIAN_DIR, get_data_home()]
    directories = list(dict.fromkeys(d for base in bases for d in _layouts(base)))
    found = [_find_files(directory) for directory in directories]
    for files in found:
        if all(files.values()):
            return _load(files)

    download_to = bases[0] if root is not None else get_data_home()
    if not download:
        reason = "Downloading was not attempted (download=False)."
    else:
        reason = _download(download_to)
        if reason is None:
            files = _find_files(download_to / "FashionMNIST" / "raw")
            if all(files.values()):
                return _load(files)
            reason = "torchvision's download did not produce the expected files."
    raise DatasetNotFoundError(_missing_message(directories, found, reason))


def _layouts(base):
    """The directories under ``base`` where the files may lie."""
    return [base, base / "fashion-mnist", base / "FashionMNIST" / "raw"]


def _find_files(directory):
    """``{file stem: path or None}`` for the four files in ``directory``."""
    files = {}
    for stem in _FILES:
        candidates = (directory / f"{stem}.gz", directory / stem)
        files[stem] = next((path for path in candidates if path.is_file()), None)
    return files


def _missing_message(directories, found, reason):
    # A directory holding some of the files is most likely the one meant:
    # name the file missing there rather than listing every location.
    partial = [
        (d, files) for d, files in zip(directories, found, strict=True) if any(files.values())
    ]
    if partial:
        directory, files = partial[0]
        missing = next(stem for stem, path in files.items() if path is None)
        return (
            f"Fashion-MNIST file {directory / (missing + '.gz')} not found (the "
            f"directory holds only some of the four files). {reason} {_HOW_TO_GET}"
        )
    searched = ", ".join(str(d) for d in directories)
    return (
        f"Fashion-MNIST file {_FILES[0]}.gz not found; looked in {searched}. {reason} {_HOW_TO_GET}"
    )


def _load(files):
    arrays = {stem: read_idx(path) for stem, path in files.items()}
    splits = []
    for images_stem, labels_stem in (_FILES[:2], _FILES[2:]):
        images, labels = arrays[images_stem], arrays[labels_stem]
        images_path, labels_path = files[images_stem], files[labels_stem]
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != _IMAGE_SIZE:
            raise DatasetFormatError(
                f"{images_path} holds {with_article(images.dtype)} array of shape {images.shape}; "
                "expected uint8 images of shape (n, 28, 28). The file is corrupted or "
                "is not the file it is named after: download it again."
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise DatasetFormatError(
                f"{labels_path} holds {with_article(labels.dtype)} array of shape {labels.shape}; "
                "expected uint8 labels of shape (n,). The file is corrupted or is not "
                "the file it is named after: download it again."
            )
        if labels.shape[0] != images.shape[0]:
            raise DatasetFormatError(
                f"{labels_path} holds {labels.shape[0]} labels but {images_path} holds "
                f"{images.shape[0]} images. One of them is truncated or from another "
                "dataset: download both again."
            )
        splits.append(to_unit_float(images[:, np.newaxis]))
        splits.append(check_labels(labels, len(CLASS_NAMES), labels_path))
    return make_bunch(
        "fashion-mnist",
        *splits,
        CLASS_NAMES,
        "Fashion-MNIST (Xiao et al. 2017): 28×28 grayscale images of clothing, "
        "10 classes, 60,000 training and 10,000 test images, scaled to [0, 1].",
    )


def _download(directory):
    """Let torchvision download the files into ``directory``.

    Returns ``None`` on success, else the reason it failed, for the message.
    """
    from torchvision.datasets import FashionMNIST

    url = FashionMNIST.mirrors[0]
    if not _reachable(url):
        return f"torchvision's download server ({url}) could not be reached."
    try:
        FashionMNIST(str(directory), train=True, download=True)
    # Anything from a dropped connection to a checksum mismatch or a full
    # disk: the user needs the same advice whatever the cause.
    except Exception as error:  # noqa: BLE001
        return f"Downloading through torchvision into {directory} failed ({error})."
    return None


def _reachable(url, timeout=2.0):
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds.

    The attempt runs in a daemon thread so that a slow DNS lookup, which
    socket timeouts do not cover, cannot hang the loader either.
    """
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    connected = threading.Event()

    def connect():
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                connected.set()
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return connected.is_set()
