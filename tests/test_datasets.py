"""Loaders: happy paths on miniature files written here, and clear errors."""

import gzip
import os
import pickle
import struct
import time

import numpy as np
import pytest
from PIL import Image

from skprune.datasets import (
    DATASETS,
    DatasetFormatError,
    DatasetNotFoundError,
    _fashion_mnist,
    get_data_home,
    load_cifar10,
    load_cifar100,
    load_dataset,
    load_digits_images,
    load_fashion_mnist,
    load_tiny_imagenet,
)

FASHION_FILES = _fashion_mnist._FILES
REAL_REACHABLE = _fashion_mnist._reachable


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test reaches the network or reads a user's data directory."""
    monkeypatch.setattr(_fashion_mnist, "_reachable", lambda url, timeout=2.0: False)
    monkeypatch.delenv("SKPRUNE_DATA", raising=False)


def assert_clean_error(excinfo, *fragments):
    """The message names what it should, and no library traceback is chained."""
    message = str(excinfo.value)
    for fragment in fragments:
        assert str(fragment) in message
    error = excinfo.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


# --- scikit-learn digits -------------------------------------------------------


def test_digits_images():
    data = load_digits_images(test_size=0.2, random_state=1)
    assert data.X_train.shape == (1437, 1, 8, 8) and data.X_test.shape == (360, 1, 8, 8)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.X_train.min() == 0 and data.X_train.max() == 1
    assert data.class_names == [str(digit) for digit in range(10)]
    # Stratified: every class keeps its share in the test set.
    assert np.bincount(data.y_test).min() >= 35
    again = load_digits_images(test_size=0.2, random_state=1)
    np.testing.assert_array_equal(data.X_test, again.X_test)


# --- Fashion-MNIST (IDX) -------------------------------------------------------


def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else array.dtype).tobytes()


def write_fashion_mnist(directory, n_train=6, n_test=4, compress=True, overrides=None):
    """The four IDX files with random images; ``overrides`` maps a stem to raw bytes."""
    rng = np.random.RandomState(0)
    arrays = {
        FASHION_FILES[0]: rng.randint(0, 256, (n_train, 28, 28)),
        FASHION_FILES[1]: np.arange(n_train) % 10,
        FASHION_FILES[2]: rng.randint(0, 256, (n_test, 28, 28)),
        FASHION_FILES[3]: np.arange(n_test)[::-1] % 10,
    }
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stem, array in arrays.items():
        content = (overrides or {}).get(stem, idx_bytes(array))
        path = directory / (f"{stem}.gz" if compress else stem)
        path.write_bytes(gzip.compress(content) if compress else content)
        paths[stem] = path
    return arrays, paths


def test_fashion_mnist_from_root(tmp_path):
    arrays, _ = write_fashion_mnist(tmp_path)
    data = load_fashion_mnist(tmp_path)
    assert data.X_train.shape == (6, 1, 28, 28) and data.X_test.shape == (4, 1, 28, 28)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_allclose(data.X_train[:, 0] * 255, arrays[FASHION_FILES[0]], atol=1e-4)
    np.testing.assert_array_equal(data.y_test, arrays[FASHION_FILES[3]])
    assert data.class_names[6] == "Shirt" and len(data.class_names) == 10
    assert data.name == "fashion-mnist"


def test_fashion_mnist_torchvision_layout_uncompressed(tmp_path):
    write_fashion_mnist(tmp_path / "FashionMNIST" / "raw", compress=False)
    assert load_fashion_mnist(tmp_path).X_test.shape == (4, 1, 28, 28)


def test_fashion_mnist_search_order(tmp_path, monkeypatch):
    write_fashion_mnist(tmp_path / "env" / "fashion-mnist", n_train=3)
    write_fashion_mnist(tmp_path / "debian", n_train=5)
    monkeypatch.setattr(_fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    assert load_fashion_mnist().X_train.shape[0] == 5
    monkeypatch.setenv("SKPRUNE_DATA", str(tmp_path / "env"))
    assert load_fashion_mnist().X_train.shape[0] == 3


def test_fashion_mnist_missing_everywhere(tmp_path, monkeypatch):
    monkeypatch.setattr(_fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("SKPRUNE_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_fashion_mnist()
    assert isinstance(excinfo.value, FileNotFoundError)
    assert_clean_error(
        excinfo, "train-images-idx3-ubyte.gz", tmp_path / "empty", "no-debian",
        "apt-get install dataset-fashion-mnist", "could not be reached",
    )  # fmt: skip


def test_fashion_mnist_missing_file_in_root(tmp_path):
    _, paths = write_fashion_mnist(tmp_path)
    paths[FASHION_FILES[3]].unlink()
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_fashion_mnist(tmp_path, download=False)
    assert_clean_error(excinfo, paths[FASHION_FILES[3]], "apt-get install", "download=False")


def test_fashion_mnist_downloads_through_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets

    class FakeFashionMNIST:
        mirrors = ["http://example.invalid/"]

        def __init__(self, root, train=True, download=False):
            write_fashion_mnist(tmp_path / "home" / "FashionMNIST" / "raw", n_train=2)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    monkeypatch.setattr(_fashion_mnist, "_reachable", lambda url, timeout=2.0: True)
    monkeypatch.setattr(_fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("SKPRUNE_DATA", str(tmp_path / "home"))
    assert load_fashion_mnist().X_train.shape == (2, 1, 28, 28)


def test_fashion_mnist_failed_download(tmp_path, monkeypatch):
    import torchvision.datasets

    class BrokenFashionMNIST:
        mirrors = ["http://example.invalid/"]

        def __init__(self, root, train=True, download=False):
            raise RuntimeError("connection reset")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", BrokenFashionMNIST)
    monkeypatch.setattr(_fashion_mnist, "_reachable", lambda url, timeout=2.0: True)
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_fashion_mnist(tmp_path)
    assert_clean_error(excinfo, "connection reset", "train-images-idx3-ubyte.gz")


def test_reachable_fails_fast_without_a_server():
    start = time.perf_counter()
    # Nothing listens on the discard port of this machine.
    assert not REAL_REACHABLE("http://127.0.0.1:9/", timeout=1.0)
    assert time.perf_counter() - start < 0.5


def test_fashion_mnist_truncated_file(tmp_path):
    _, paths = write_fashion_mnist(tmp_path)
    path = paths[FASHION_FILES[0]]
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DatasetFormatError) as excinfo:
        load_fashion_mnist(tmp_path)
    assert isinstance(excinfo.value, ValueError)
    assert_clean_error(excinfo, path, "truncated")


def test_fashion_mnist_truncated_idx_data(tmp_path):
    images = np.zeros((6, 28, 28), dtype=np.uint8)
    _, paths = write_fashion_mnist(tmp_path, overrides={FASHION_FILES[0]: idx_bytes(images)[:-100]})
    with pytest.raises(DatasetFormatError) as excinfo:
        load_fashion_mnist(tmp_path)
    assert_clean_error(excinfo, paths[FASHION_FILES[0]], "truncated", "(6, 28, 28)")


@pytest.mark.parametrize(
    "stem, content, expected",
    [
        (FASHION_FILES[0], None, "not a readable gzip file"),
        (FASHION_FILES[0], b"\x08\x03\x00\x00" + bytes(100), "not an IDX file"),
        (FASHION_FILES[0], idx_bytes(np.zeros((6, 27, 27))), "expected uint8 images"),
        (FASHION_FILES[1], idx_bytes(np.zeros((6, 28, 28))), "expected uint8 labels"),
        (FASHION_FILES[1], idx_bytes(np.array([0, 1, 2, 3, 4, 10])), "labels in [0, 9]"),
        (FASHION_FILES[3], idx_bytes(np.arange(3)), "holds 3 labels but"),
        (FASHION_FILES[3], idx_bytes(np.arange(4)) + b"extra", "trailing bytes"),
    ],
    ids=["not-gzip", "bad-magic", "image-size", "labels-rank", "label-range",
         "count-mismatch", "trailing-bytes"],
)  # fmt: skip
def test_fashion_mnist_corrupted_file(tmp_path, stem, content, expected):
    _, paths = write_fashion_mnist(tmp_path, overrides={stem: content or b""})
    if content is None:
        paths[stem].write_bytes(b"this is not gzip")
    with pytest.raises(DatasetFormatError) as excinfo:
        load_fashion_mnist(tmp_path)
    assert_clean_error(excinfo, paths[stem], expected)


@pytest.mark.skipif(
    not _fashion_mnist.DEBIAN_DIR.is_dir(),
    reason="Debian's dataset-fashion-mnist package is not installed",
)
def test_fashion_mnist_from_debian_package():
    data = load_fashion_mnist(download=False)
    assert data.X_train.shape == (60000, 1, 28, 28) and data.X_test.shape == (10000, 1, 28, 28)
    assert data.X_train.dtype == np.float32 and 0 <= data.X_train.min() < data.X_train.max() <= 1
    np.testing.assert_array_equal(np.bincount(data.y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(data.y_test), np.full(10, 1000))


# --- CIFAR (python pickles) ----------------------------------------------------


def dump(path, content, byte_keys):
    if byte_keys:  # as in the original Python 2 pickles
        content = {key.encode(): value for key, value in content.items()}
    with open(path, "wb") as file:
        pickle.dump(content, file, protocol=2)


def write_cifar(root, variant, n=4, byte_keys=True):
    rng = np.random.RandomState(0)
    if variant == "cifar10":
        folder, n_classes = root / "cifar-10-batches-py", 10
        batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        labels_key, meta = "labels", {"label_names": [f"class{k}" for k in range(10)]}
        meta_name = "batches.meta"
    else:
        folder, n_classes = root / "cifar-100-python", 100
        batches = ["train", "test"]
        labels_key = "fine_labels"
        meta = {"fine_label_names": [f"fine{k}" for k in range(100)],
                "coarse_label_names": [f"coarse{k}" for k in range(20)]}  # fmt: skip
        meta_name = "meta"
    folder.mkdir(parents=True)
    dump(folder / meta_name, meta, byte_keys)
    contents = {}
    for name in batches:
        content = {
            "data": rng.randint(0, 256, (n, 3072)).astype(np.uint8),
            labels_key: [int(label) for label in rng.randint(0, n_classes, n)],
        }
        dump(folder / name, content, byte_keys)
        contents[name] = content
    return folder, contents


@pytest.mark.parametrize("byte_keys", [True, False])
def test_cifar10(tmp_path, byte_keys):
    folder, contents = write_cifar(tmp_path, "cifar10", byte_keys=byte_keys)
    data = load_cifar10(tmp_path)
    assert data.X_train.shape == (20, 3, 32, 32) and data.X_test.shape == (4, 3, 32, 32)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    first = contents["data_batch_1"]["data"][0]
    np.testing.assert_allclose(data.X_train[0] * 255, first.reshape(3, 32, 32), atol=1e-4)
    np.testing.assert_array_equal(data.y_test, contents["test_batch"]["labels"])
    assert data.class_names == [f"class{k}" for k in range(10)]
    # The extracted folder itself works as root too.
    np.testing.assert_array_equal(load_cifar10(folder).y_train, data.y_train)


def test_cifar100(tmp_path):
    _, contents = write_cifar(tmp_path, "cifar100")
    data = load_cifar100(tmp_path)
    assert data.X_train.shape == (4, 3, 32, 32) and len(data.class_names) == 100
    np.testing.assert_array_equal(data.y_train, contents["train"]["fine_labels"])
    assert data.class_names[99] == "fine99" and data.name == "cifar100"


def test_cifar_missing_file(tmp_path):
    folder, _ = write_cifar(tmp_path, "cifar10")
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_cifar10(tmp_path)
    assert_clean_error(excinfo, folder / "data_batch_3", "cifar-10-python.tar.gz")
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_cifar100(tmp_path / "nowhere")
    assert_clean_error(excinfo, "cifar-100-python", "cifar-100-python.tar.gz")


def test_cifar_default_root_is_data_home(tmp_path, monkeypatch):
    write_cifar(tmp_path, "cifar100")
    monkeypatch.setenv("SKPRUNE_DATA", str(tmp_path))
    assert get_data_home() == tmp_path
    assert load_cifar100().X_test.shape == (4, 3, 32, 32)


def test_cifar_truncated_file(tmp_path):
    folder, _ = write_cifar(tmp_path, "cifar10")
    path = folder / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DatasetFormatError) as excinfo:
        load_cifar10(tmp_path)
    assert_clean_error(excinfo, path, "truncated or corrupted")


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("test_batch", b"\x80\x02garbage", "not a readable CIFAR pickle"),
        ("test_batch", {"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}, "(n, 3072)"),
        ("test_batch", {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 10]},
         "labels in [0, 9]"),
        ("test_batch", {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1]},
         "4 images but 2 labels"),
        ("test_batch", {"data": np.zeros((4, 3072), np.uint8)}, "no 'labels' entry"),
        ("test_batch", [1, 2, 3], "not the dict of a CIFAR batch"),
        ("batches.meta", {"label_names": ["a"] * 9}, "lists 9 class names"),
        ("data_batch_1", {"data": _RunsCode(), "labels": []}, "refused to load global"),
    ],
    ids=["garbage", "data-shape", "label-range", "count-mismatch", "no-labels",
         "not-a-dict", "class-names", "code-in-pickle"],
)  # fmt: skip
def test_cifar_corrupted_file(tmp_path, name, content, expected):
    folder, _ = write_cifar(tmp_path, "cifar10")
    if isinstance(content, bytes):
        (folder / name).write_bytes(content)
    else:
        with open(folder / name, "wb") as file:
            pickle.dump(content, file)
    with pytest.raises(DatasetFormatError) as excinfo:
        load_cifar10(tmp_path)
    assert_clean_error(excinfo, folder / name, expected)


# --- TinyImageNet (folder of JPEGs) --------------------------------------------

WNIDS = ["n02", "n01", "n03"]  # listed unsorted, as the real wnids.txt is


def save_image(path, color, size=64, mode="RGB", fmt="JPEG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    value = color if mode == "RGB" else color[0]
    Image.new(mode, (size, size), value).save(path, format=fmt)


def color_of(label):
    return (40 + 80 * label, 200 - 60 * label, 100)


def write_tiny_imagenet(root, n_train=2):
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    words = [f"{wnid}\tname of {wnid}, synonym" for wnid in WNIDS] + ["n99\tunused"]
    (folder / "words.txt").write_text("\n".join(words) + "\n")
    for wnid in WNIDS:
        label = sorted(WNIDS).index(wnid)
        for i in range(n_train):
            save_image(folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", color_of(label))
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    annotations = []
    for i, wnid in enumerate(["n03", "n01", "n02", "n01"]):
        label = sorted(WNIDS).index(wnid)
        mode = "L" if i == 0 else "RGB"  # some TinyImageNet images are grayscale
        save_image(folder / "val" / "images" / f"val_{i}.JPEG", color_of(label), mode=mode)
        annotations.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    return folder


def test_tiny_imagenet(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    data = load_tiny_imagenet(tmp_path)
    assert data.X_train.shape == (6, 3, 64, 64) and data.X_test.shape == (4, 3, 64, 64)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.y_train, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(data.y_test, [2, 0, 1, 0])
    assert data.wnids == ["n01", "n02", "n03"]
    assert data.class_names == ["name of n01", "name of n02", "name of n03"]
    for image, label in zip(data.X_train, data.y_train, strict=True):
        mean_color = image.mean(axis=(1, 2)) * 255
        np.testing.assert_allclose(mean_color, color_of(label), atol=3)
    gray = data.X_test[0]
    np.testing.assert_allclose(gray[0], gray[2])
    # The tiny-imagenet-200 folder itself works as root too.
    np.testing.assert_array_equal(load_tiny_imagenet(folder).y_test, data.y_test)


def test_tiny_imagenet_without_words(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    (folder / "words.txt").unlink()
    assert load_tiny_imagenet(tmp_path).class_names == ["n01", "n02", "n03"]


@pytest.mark.parametrize(
    "missing", ["wnids.txt", "val/val_annotations.txt", "val/images/val_2.JPEG", "train/n02"]
)
def test_tiny_imagenet_missing_file(tmp_path, missing):
    folder = write_tiny_imagenet(tmp_path)
    path = folder / missing
    if path.is_dir():
        for image in (path / "images").iterdir():
            image.unlink()
        (path / "images").rmdir()
        path = path / "images"
    else:
        path.unlink()
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_tiny_imagenet(tmp_path)
    assert_clean_error(excinfo, path, "tiny-imagenet-200.zip")


def test_tiny_imagenet_truncated_image(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    path = folder / "train" / "n03" / "images" / "n03_1.JPEG"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetFormatError) as excinfo:
        load_tiny_imagenet(tmp_path)
    assert_clean_error(excinfo, path, "truncated or corrupted")


@pytest.mark.parametrize("damage", ["garbage", "size", "annotation", "wnids"])
def test_tiny_imagenet_corrupted(tmp_path, damage):
    folder = write_tiny_imagenet(tmp_path)
    if damage == "garbage":
        path, expected = folder / "val" / "images" / "val_1.JPEG", "not a readable image"
        path.write_bytes(b"GIF89a but not really")
    elif damage == "size":
        path, expected = folder / "train" / "n01" / "images" / "n01_0.JPEG", "32×32 pixels"
        save_image(path, (0, 0, 0), size=32)
    elif damage == "annotation":
        path, expected = folder / "val" / "val_annotations.txt", "line 2"
        path.write_text("val_0.JPEG\tn01\t0\t0\t1\t1\nval_1.JPEG\tn77\t0\t0\t1\t1\n")
    else:
        path, expected = folder / "wnids.txt", "of which 2 are distinct"
        path.write_text("n01\nn02\nn01\n")
    with pytest.raises(DatasetFormatError) as excinfo:
        load_tiny_imagenet(tmp_path)
    assert_clean_error(excinfo, path, expected)


# --- registry ------------------------------------------------------------------


def test_registry(tmp_path):
    assert set(DATASETS) == {"digits", "fashion-mnist", "cifar10", "cifar100", "tiny-imagenet",
                             "spurious-fashion-mnist"}
    assert load_dataset("digits").X_train.shape[1:] == (1, 8, 8)
    write_cifar(tmp_path, "cifar10")
    assert load_dataset("cifar10", root=tmp_path).name == "cifar10"
    write_fashion_mnist(tmp_path)
    assert load_dataset("fashion-mnist", tmp_path).X_train.shape == (6, 1, 28, 28)


def test_registry_unknown_name():
    with pytest.raises(ValueError, match="'cifar10', 'cifar100', 'digits'"):
        load_dataset("imagenet")
