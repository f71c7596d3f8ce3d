"""TinyImageNet from the standard ``tiny-imagenet-200`` folder."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._base import (
    DatasetFormatError,
    DatasetNotFoundError,
    get_data_home,
    make_bunch,
    to_unit_float,
)

_FOLDER = "tiny-imagenet-200"
_IMAGE_SIZE = 64
_IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
_HOW_TO_GET = (
    "Download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it into the "
    "directory passed as `root`."
)


def load_tiny_imagenet(root=None):
    """TinyImageNet: 64×64 colour images in 200 classes.

    Reads the standard ``tiny-imagenet-200`` folder: ``wnids.txt`` (the
    classes), ``words.txt`` (their names, optional), ``train/<wnid>/images/``
    (500 images per class) and ``val/images/`` with ``val/val_annotations.txt``.
    The labelled validation set (10,000 images) is returned as the test set,
    as usual, since the official test labels are not public. Classes are
    numbered in sorted ``wnid`` order, as torchvision's ``ImageFolder`` does.

    Decoding the 110,000 images takes a while (threads help); the float32
    arrays take about 5 GB of memory.

    Parameters
    ----------
    root : str or path-like, default=None
        Directory holding the ``tiny-imagenet-200`` folder (or that folder
        itself). ``None`` uses ``$SKPRUNE_DATA``, else ``~/skprune_data``.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train`` (100,000 × 3 × 64 × 64) and ``X_test`` (10,000 × 3 × 64
        × 64): ``float32`` in [0, 1]; ``y_train``, ``y_test``: ``int64``
        labels 0..199; ``class_names`` (first name in ``words.txt``, else
        the wnid); ``wnids``; ``name`` and ``DESCR``.

    Raises
    ------
    DatasetNotFoundError
        If a file or folder is missing (a ``FileNotFoundError`` naming it).
    DatasetFormatError
        If an image cannot be decoded or is not 64×64, or an annotation
        names an unknown class (a ``ValueError`` naming the file).

    Examples
    --------
    >>> from skprune.datasets import load_tiny_imagenet
    >>> data = load_tiny_imagenet("~/data")  # doctest: +SKIP
    >>> data.X_train.shape, data.X_test.shape  # doctest: +SKIP
    ((100000, 3, 64, 64), (10000, 3, 64, 64))
    """
    root = get_data_home(root)
    folder = root if (root / "wnids.txt").is_file() else root / _FOLDER
    wnids_path = _existing(folder / "wnids.txt")
    wnids = sorted(_read_lines(wnids_path))
    if not wnids or len(set(wnids)) != len(wnids):
        raise DatasetFormatError(
            f"{wnids_path} must list each class id (wnid) once; it lists "
            f"{len(wnids)} ids of which {len(set(wnids))} are distinct. {_HOW_TO_GET}"
        )
    label_of = {wnid: label for label, wnid in enumerate(wnids)}

    train_paths, train_labels = [], []
    for wnid in wnids:
        images_dir = _existing(folder / "train" / wnid / "images")
        paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not paths:
            raise DatasetNotFoundError(f"No images found in {images_dir}. {_HOW_TO_GET}")
        train_paths += paths
        train_labels += [label_of[wnid]] * len(paths)

    annotations = _existing(folder / "val" / "val_annotations.txt")
    test_paths, test_labels = [], []
    for line_number, line in enumerate(_read_lines(annotations), start=1):
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 2 or fields[1] not in label_of:
            raise DatasetFormatError(
                f"{annotations}, line {line_number}: expected '<image file>\\t<wnid>\\t...' "
                f"with a wnid listed in {wnids_path}; got {line!r}. The file is "
                f"corrupted. {_HOW_TO_GET}"
            )
        test_paths.append(_existing(folder / "val" / "images" / fields[0]))
        test_labels.append(label_of[fields[1]])

    data = make_bunch(
        "tiny-imagenet",
        to_unit_float(_read_images(train_paths)),
        np.asarray(train_labels, dtype=np.int64),
        to_unit_float(_read_images(test_paths)),
        np.asarray(test_labels, dtype=np.int64),
        _class_names(folder / "words.txt", wnids),
        "TinyImageNet (Le & Yang 2015): 64×64 colour images, 200 classes, 100,000 "
        "training images and 10,000 labelled validation images (returned as the "
        "test set), scaled to [0, 1].",
    )
    data.wnids = wnids
    return data


def _existing(path):
    if not path.exists():
        raise DatasetNotFoundError(f"TinyImageNet file {path} not found. {_HOW_TO_GET}")
    return path


def _read_lines(path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetFormatError(
            f"{path} is not a text file; it is corrupted. {_HOW_TO_GET}"
        ) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _class_names(words_path, wnids):
    """First name of every class in ``words.txt``; the wnid where it has none."""
    names = {}
    if words_path.is_file():
        for line in _read_lines(words_path):
            wnid, _, words = line.partition("\t")
            names[wnid] = words.split(",")[0].strip()
    return [names.get(wnid) or wnid for wnid in wnids]


def _read_images(paths):
    images = np.empty((len(paths), 3, _IMAGE_SIZE, _IMAGE_SIZE), dtype=np.uint8)

    def read(index):
        images[index] = _read_image(paths[index])

    # PIL releases the GIL while decoding, so threads decode in parallel.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        try:
            # list() re-raises the first error of any worker here.
            list(pool.map(read, range(len(paths))))
        except BaseException:
            # Report a damaged image now, not after decoding the rest.
            pool.shutdown(cancel_futures=True)
            raise
    return images


def _read_image(path):
    from PIL import Image

    try:
        with Image.open(path) as image:
            # A few TinyImageNet images are grayscale: give them three channels.
            pixels = np.asarray(image.convert("RGB"))
    # PIL reports damaged files as OSError (truncated, unidentified),
    # SyntaxError (broken PNG chunks) or ValueError.
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetFormatError(
            f"{path} is not a readable image ({error}); it is truncated or corrupted. {_HOW_TO_GET}"
        ) from None
    if pixels.shape != (_IMAGE_SIZE, _IMAGE_SIZE, 3):
        raise DatasetFormatError(
            f"{path} is {pixels.shape[1]}×{pixels.shape[0]} pixels; TinyImageNet images "
            f"are {_IMAGE_SIZE}×{_IMAGE_SIZE}. {_HOW_TO_GET}"
        )
    return pixels.transpose(2, 0, 1)
