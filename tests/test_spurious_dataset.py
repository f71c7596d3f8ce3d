"""Spurious Fashion-MNIST: the drawn attribute, its exact shares, and the shortcut.

The transformation is tested on small synthetic arrays and on miniature IDX
files written here; the tests on the real 70,000 images skip when Debian's
``dataset-fashion-mnist`` is not installed.
"""

import gzip
import struct
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skprune.datasets import (
    DATASETS,
    DatasetNotFoundError,
    _fashion_mnist,
    _spurious,
    load_dataset,
    load_fashion_mnist,
    load_spurious_fashion_mnist,
)
from skprune.datasets._spurious import (
    BORDER_WIDTH,
    MAX_TINT,
    _add_attribute,
    _attribute_levels,
    _draw_attributes,
)

APT_HINT = (
    "Fashion-MNIST files not found: `sudo apt-get install dataset-fashion-mnist` "
    "(or put the four IDX files in ~/skprune_data)"
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test reaches the network or reads a user's data directory."""
    monkeypatch.setattr(_fashion_mnist, "_reachable", lambda url, timeout=2.0: False)
    monkeypatch.delenv("SKPRUNE_DATA", raising=False)


def frame_mask(height=28, width=28):
    mask = np.zeros((height, width), dtype=bool)
    w = BORDER_WIDTH
    mask[:w, :] = mask[-w:, :] = mask[:, :w] = mask[:, -w:] = True
    return mask


# --- the draw of attribute values, on synthetic labels --------------------------


@pytest.mark.parametrize("n_attributes", [2, 3, 4])
@pytest.mark.parametrize("correlation", [0.95, 0.8, 0.5, 1.0, 0.0])
def test_training_draw_has_exact_shares(n_attributes, correlation):
    sizes = np.array([7, 13, 20, 101, 1, 0, 50])
    y = np.repeat(np.arange(sizes.size), sizes)
    np.random.RandomState(1).shuffle(y)
    attributes = _draw_attributes(y, sizes.size, n_attributes, correlation,
                                  np.random.RandomState(0))  # fmt: skip
    assert attributes.dtype == np.int64 and attributes.shape == y.shape
    assert attributes.min() >= 0 and attributes.max() < n_attributes
    for label, size in enumerate(sizes):
        counts = np.bincount(attributes[y == label], minlength=n_attributes)
        own = label % n_attributes
        assert counts[own] == round(correlation * size)
        others = np.delete(counts, own)
        assert others.sum() == size - round(correlation * size)
        assert others.max() - others.min() <= 1  # the rest spread evenly


@pytest.mark.parametrize("n_attributes", [2, 3, 5])
def test_test_draw_is_independent_of_the_class(n_attributes):
    sizes = np.array([10, 11, 12, 1000, 3])
    y = np.repeat(np.arange(sizes.size), sizes)
    attributes = _draw_attributes(y, sizes.size, n_attributes, None, np.random.RandomState(0))
    for label, size in enumerate(sizes):
        counts = np.bincount(attributes[y == label], minlength=n_attributes)
        assert counts.sum() == size and counts.max() - counts.min() <= 1


def test_draw_is_random_within_a_class_and_seeded():
    y = np.repeat(np.arange(2), 100)
    draw = lambda seed: _draw_attributes(y, 2, 2, 0.9, np.random.RandomState(seed))  # noqa: E731
    np.testing.assert_array_equal(draw(0), draw(0))
    assert not np.array_equal(draw(0), draw(1))
    # The minority rows are not simply the last rows of each class.
    minority = np.flatnonzero(draw(0) != y % 2)
    assert minority.size == 20 and not np.array_equal(minority[:10], np.arange(90, 100))


# --- drawing the attribute into images, on synthetic arrays ---------------------


@pytest.mark.parametrize("n_attributes", [2, 3])
def test_border_is_drawn_exactly(n_attributes):
    rng = np.random.RandomState(0)
    images = rng.rand(12, 1, 28, 28).astype(np.float32)
    before = images.copy()
    attributes = np.arange(12) % n_attributes
    out = _add_attribute(images, attributes, n_attributes, "border")
    np.testing.assert_array_equal(images, before)  # the input is left as it is
    assert out.dtype == np.float32 and out.shape == images.shape
    frame = frame_mask()
    assert frame.sum() == 28 * 28 - (28 - 2 * BORDER_WIDTH) ** 2
    for image, attribute in zip(out[:, 0], attributes, strict=True):
        np.testing.assert_array_equal(image[frame], np.float32((attribute + 1) / n_attributes))
    np.testing.assert_array_equal(out[..., ~frame], images[..., ~frame])  # inside untouched


def test_border_depends_on_the_attribute_only():
    # Two images as different as can be (black and white) get the same frame.
    images = np.stack([np.zeros((1, 28, 28)), np.ones((1, 28, 28))]).astype(np.float32)
    for attribute in (0, 1):
        out = _add_attribute(images, np.array([attribute, attribute]), 2, "border")
        np.testing.assert_array_equal(out[0, 0][frame_mask()], out[1, 0][frame_mask()])
    gray, white = _add_attribute(images[:1].repeat(2, 0), np.array([0, 1]), 2, "border")
    assert gray[0, 0, 0] == 0.5 and white[0, 0, 0] == 1.0


def test_tint_lifts_the_background():
    rng = np.random.RandomState(0)
    images = rng.rand(6, 1, 28, 28).astype(np.float32)
    images[:, :, :5] = 0.0  # a black background band
    attributes = np.array([0, 1, 2, 0, 1, 2])
    out = _add_attribute(images, attributes, 3, "tint")
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    tints = MAX_TINT * attributes / 2
    np.testing.assert_allclose(out, tints[:, None, None, None]
                               + (1 - tints[:, None, None, None]) * images, rtol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(out[attributes == 0], images[attributes == 0])
    np.testing.assert_allclose(out[:, 0, :5].reshape(6, -1).max(1), tints, rtol=1e-6)


def test_levels():
    np.testing.assert_allclose(_attribute_levels(2, "border"), [0.5, 1.0])
    np.testing.assert_allclose(_attribute_levels(4, "border"), [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(_attribute_levels(2, "tint"), [0.0, MAX_TINT])


def test_add_attribute_checks_shapes():
    with pytest.raises(ValueError, match="one attribute per image"):
        _add_attribute(np.zeros((3, 1, 28, 28), np.float32), np.zeros(2, int), 2)


# --- the loader on miniature IDX files -------------------------------------------


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_mini_fashion_mnist(directory, n_train=200, n_test=60):
    """The four files, ``n/10`` images per class, random pixels with a black edge."""
    rng = np.random.RandomState(0)
    for stem, n in ((("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), n_train),
                    (("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), n_test)):  # fmt: skip
        images = rng.randint(0, 256, (n, 28, 28))
        images[:, frame_mask()] = 0
        write_idx(directory / f"{stem[0]}.gz", images)
        write_idx(directory / f"{stem[1]}.gz", np.arange(n) % 10)


def test_loader_on_miniature_files(tmp_path):
    write_mini_fashion_mnist(tmp_path)
    data = load_spurious_fashion_mnist(tmp_path, correlation=0.9, random_state=3)
    plain = load_fashion_mnist(tmp_path)
    assert data.name == "spurious-fashion-mnist" and data.class_names == plain.class_names
    assert "random_state=3" in data.DESCR and "worst-group" in data.DESCR
    np.testing.assert_array_equal(data.y_train, plain.y_train)
    assert data.X_train.shape == (200, 1, 28, 28) and data.X_test.shape == (60, 1, 28, 28)
    for key in ("attribute_train", "attribute_test", "groups_train", "groups_test"):
        assert data[key].dtype == np.int64
    np.testing.assert_array_equal(data.groups_train, data.y_train * 2 + data.attribute_train)
    np.testing.assert_array_equal(data.majority_attribute, np.arange(10) % 2)
    for label in range(10):  # 20 images per class: exactly 18 carry the own value
        assert np.sum(data.attribute_train[data.y_train == label] == label % 2) == 18
        assert np.bincount(data.attribute_test[data.y_test == label]).tolist() == [3, 3]
    # Only the frame changed, and to the attribute's level.
    frame = frame_mask()
    np.testing.assert_array_equal(data.X_train[..., ~frame], plain.X_train[..., ~frame])
    levels = _attribute_levels(2, "border")[data.attribute_train]
    expected = levels[:, None].repeat(frame.sum(), 1)
    np.testing.assert_array_equal(data.X_train[:, 0][:, frame], expected)
    assert len(data.group_names) == 20
    assert data.group_names[0] == "T-shirt/top/border 0"
    assert data.group_names[13] == "Shirt/border 1"
    tinted = load_spurious_fashion_mnist(tmp_path, n_attributes=3, attribute="tint")
    assert tinted.group_names[:3] == [f"T-shirt/top/tint {value}" for value in range(3)]
    np.testing.assert_array_equal(tinted.groups_test, tinted.y_test * 3 + tinted.attribute_test)


def test_registry(tmp_path):
    assert DATASETS["spurious-fashion-mnist"] is load_spurious_fashion_mnist
    write_mini_fashion_mnist(tmp_path)
    via_registry = load_dataset("spurious-fashion-mnist", tmp_path)
    direct = load_spurious_fashion_mnist(tmp_path)
    for key in ("X_train", "X_test", "attribute_train", "groups_test"):
        np.testing.assert_array_equal(via_registry[key], direct[key])


def test_missing_files_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_spurious_fashion_mnist(tmp_path, download=False)
    message = str(excinfo.value)
    assert str(tmp_path) in message and "train-images-idx3-ubyte.gz" in message
    assert "apt-get install dataset-fashion-mnist" in message and "SKPRUNE_DATA" in message



def test_missing_files_with_download_allowed(tmp_path, monkeypatch):
    # The registry's call allows downloading into root; when it fails, the
    # message says why (torchvision itself is not imported here).
    tried = []

    def failed_download(directory):
        tried.append(directory)
        return "The download server could not be reached."

    monkeypatch.setattr(_fashion_mnist, "_download", failed_download)
    with pytest.raises(DatasetNotFoundError, match="could not be reached") as excinfo:
        load_dataset("spurious-fashion-mnist", tmp_path)
    assert tried == [tmp_path] and "apt-get install" in str(excinfo.value)


@pytest.mark.parametrize(
    "params, match",
    [({"n_attributes": 1}, "n_attributes must be an integer >= 2"),
     ({"n_attributes": 2.0}, "n_attributes must be an integer"),
     ({"correlation": 1.5}, r"correlation must be a number in \[0, 1\]"),
     ({"correlation": float("nan")}, "correlation must be"),
     ({"attribute": "color"}, "attribute must be one of 'border', 'tint'")],
)  # fmt: skip
def test_invalid_parameters_fail_before_loading(tmp_path, params, match):
    # tmp_path is empty: a ValueError (not DatasetNotFoundError) shows the
    # parameters are checked before any file is looked for.
    with pytest.raises(ValueError, match=match):
        load_spurious_fashion_mnist(tmp_path, **params)


# --- the real dataset -------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion():
    """The real Fashion-MNIST, read once; skips when it is not installed.

    Looked for where the tests' loaders look (``$SKPRUNE_DATA`` unset): in
    Debian's package directory or ``~/skprune_data``.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SKPRUNE_DATA", raising=False)
        try:
            return load_fashion_mnist(download=False)
        except DatasetNotFoundError:
            pytest.skip(APT_HINT)


@pytest.fixture
def load(fashion, monkeypatch):
    """``load_spurious_fashion_mnist`` reading the images from the cached fixture."""
    monkeypatch.setattr(_spurious, "load_fashion_mnist", lambda root=None, download=True: fashion)
    return load_spurious_fashion_mnist


def test_real_shapes_groups_and_exact_shares(load, fashion):
    data = load()
    assert data.X_train.shape == (60000, 1, 28, 28) and data.X_test.shape == (10000, 1, 28, 28)
    assert data.X_train.dtype == np.float32 and data.X_test.dtype == np.float32
    assert data.X_train.min() == 0 and data.X_train.max() == 1
    assert 0 <= data.X_test.min() and data.X_test.max() <= 1
    assert data.y_train.dtype == np.int64 and data.attribute_train.dtype == np.int64
    np.testing.assert_array_equal(data.y_test, fashion.y_test)
    np.testing.assert_array_equal(data.groups_train, data.y_train * 2 + data.attribute_train)
    np.testing.assert_array_equal(data.groups_test, data.y_test * 2 + data.attribute_test)
    assert set(np.unique(data.groups_train)) == set(range(20))
    assert data.group_names[13] == "Shirt/border 1"
    for label in range(10):
        train = data.attribute_train[data.y_train == label]
        own = np.mean(train == label % 2)
        assert abs(own - 0.95) <= 0.02
        assert np.sum(train == label % 2) == round(0.95 * 6000) == 5700  # exact
        test_counts = np.bincount(data.attribute_test[data.y_test == label], minlength=2)
        assert test_counts.tolist() == [500, 500]  # independent of the class
    # Independence in the test set, as a contingency table: P(a | class) = P(a).
    table = np.zeros((10, 2))
    np.add.at(table, (data.y_test, data.attribute_test), 1)
    np.testing.assert_allclose(table / table.sum(1, keepdims=True), 0.5)


def test_real_attribute_is_visible_and_class_blind(load):
    data = load(n_attributes=3, correlation=0.9)
    frame = frame_mask()
    for X, y, attributes in ((data.X_train, data.y_train, data.attribute_train),
                             (data.X_test, data.y_test, data.attribute_test)):  # fmt: skip
        pixels = X[:, 0][:, frame]
        expected = _attribute_levels(3, "border")[attributes]
        # Every frame pixel is the attribute's level: it differs by attribute
        # value (by 1/3 at least) and never by class.
        np.testing.assert_array_equal(pixels, expected[:, None].repeat(frame.sum(), 1))
        for value in range(3):
            per_class = [np.unique(pixels[(attributes == value) & (y == k)]) for k in range(10)]
            assert all(np.array_equal(p, per_class[0]) for p in per_class)
    tinted = load(attribute="tint")
    corner = tinted.X_test[:, 0, 0, 0]  # background in Fashion-MNIST: black unless tinted
    assert np.median(corner[tinted.attribute_test == 1]) == pytest.approx(MAX_TINT)
    assert np.median(corner[tinted.attribute_test == 0]) == 0


def test_real_determinism(load):
    first, again, other = load(random_state=7), load(random_state=7), load(random_state=8)
    for key in ("X_train", "X_test", "attribute_train", "attribute_test", "groups_train"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first.attribute_train, other.attribute_train)
    assert not np.array_equal(first.attribute_test, other.attribute_test)
    assert not np.array_equal(first.X_train, other.X_train)


def test_real_registry_reads_the_files(fashion):
    # The real loader path (no cached images): Fashion-MNIST inside the frame.
    data = load_dataset("spurious-fashion-mnist")
    inside = ~frame_mask()
    np.testing.assert_array_equal(data.X_test[..., inside], fashion.X_test[..., inside])
    np.testing.assert_array_equal(data.y_train, fashion.y_train)
    assert np.bincount(data.groups_train).tolist() == [5700, 300, 300, 5700] * 5


def shortcut_gap(data, n_train=2000):
    """Test accuracy of a logistic regression on majority and on minority groups."""
    rows, _ = train_test_split(np.arange(data.y_train.size), train_size=n_train,
                               stratify=data.groups_train, random_state=0)  # fmt: skip
    with threadpool_limits(1), warnings.catch_warnings():
        # On 2 shared cores, BLAS threads slow lbfgs ten-fold; 100 iterations
        # are enough for the accuracies here, not for convergence.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(max_iter=100)
        model.fit(data.X_train[rows].reshape(n_train, -1), data.y_train[rows])
        correct = model.predict(data.X_test.reshape(len(data.y_test), -1)) == data.y_test
    majority = data.attribute_test == data.majority_attribute[data.y_test]
    return correct[majority].mean(), correct[~majority].mean()


def test_real_shortcut_is_learned(load):
    # A linear model on 2,000 training images: accurate on the groups that
    # dominate training, clearly worse on the minority groups of the test
    # set; without the correlation (0.5) the two are alike.
    majority, minority = shortcut_gap(load())
    assert majority - minority > 0.08
    control_majority, control_minority = shortcut_gap(load(correlation=0.5))
    assert abs(control_majority - control_minority) < 0.04
    assert (majority - minority) - (control_majority - control_minority) > 0.06
