"""Fashion-MNIST with a visible attribute that correlates with the class in training.

A group-robustness benchmark in the style of Colored MNIST and Waterbirds:
every image carries a drawn attribute (a border or a background tint) whose
value, in the training set, mostly follows the class, and in the test set is
independent of it. A model that learns the attribute instead of the garment
(a *shortcut*) does well on average and fails on the minority groups, the
class × attribute combinations that are rare in training.
"""

import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._fashion_mnist import load_fashion_mnist

#: Width in pixels of the frame drawn by ``attribute="border"``.
BORDER_WIDTH = 2

#: Background intensity of the brightest tint drawn by ``attribute="tint"``.
MAX_TINT = 0.5

_ATTRIBUTES = ("border", "tint")


def load_spurious_fashion_mnist(
    root=None, *, n_attributes=2, correlation=0.95, attribute="border", random_state=0,
    download=True,
):  # fmt: skip
    """Fashion-MNIST where a drawn attribute correlates with the class in training.

    A group-robustness benchmark: every image gets an attribute value
    ``a`` in ``0 .. n_attributes - 1``, drawn into the image so that a
    small MLP or CNN picks it up at once. Class ``k``'s *own* attribute
    value is ``k % n_attributes``.

    - **Training set**: in every class, exactly
      ``round(correlation * n_k)`` of its ``n_k`` images carry the class's
      own value; the others carry the other values, spread over them as
      evenly as possible (counts differ by at most one). Which images get
      which value is drawn at random.
    - **Test set**: the attribute is independent of the class: every class
      has its images spread evenly over all ``n_attributes`` values
      (counts differ by at most one), at random.

    The groups are the class × attribute pairs, ``group = class *
    n_attributes + attribute``. A group whose attribute is its class's own
    value is a *majority* group; the others are *minority* groups, with
    ``1 - correlation`` of the class's training images between them. A model
    that learned the shortcut (the attribute rather than the garment)
    reaches a high average accuracy and fails on the minority groups: read
    its worst-group accuracy, e.g. with ``groups_test``.

    What is drawn, on the ``float32`` images in [0, 1] (with ``L =
    n_attributes``):

    - ``attribute="border"``: the outer frame of ``BORDER_WIDTH`` = 2
      pixels (rows 0-1 and 26-27, columns 0-1 and 26-27) is overwritten
      with the intensity ``(a + 1) / L``: for ``L = 2``, a gray (0.5) or a
      white (1.0) frame. The frame's pixels depend on the attribute only,
      never on the class (whatever the garment had there is replaced).
    - ``attribute="tint"``: the image ``x`` becomes ``t + (1 - t) * x``
      with ``t = MAX_TINT * a / (L - 1)`` (``MAX_TINT`` = 0.5): value 0
      leaves the image as it is, value ``L - 1`` lifts the black background
      to gray 0.5 and keeps the garment's contrast, compressed.

    The images are read with :func:`load_fashion_mnist`, from the same
    places.

    Parameters
    ----------
    root : str or path-like, default=None
        Directory holding Fashion-MNIST's four IDX files. ``None`` searches
        ``$SKPRUNE_DATA``, ``/usr/share/datasets/fashion-mnist`` (Debian's
        ``dataset-fashion-mnist`` package) and ``~/skprune_data``, as
        :func:`load_fashion_mnist` does.
    n_attributes : int, default=2
        Number of attribute values, at least 2.
    correlation : float, default=0.95
        Share of every class's training images that carry the class's own
        attribute value, in [0, 1]. ``1 / n_attributes`` makes the attribute
        (nearly) independent of the class in training too; 1 leaves the
        minority groups empty in training.
    attribute : {"border", "tint"}, default="border"
        What is drawn: a frame whose intensity encodes the value, or a
        background tint (see above).
    random_state : int, RandomState instance or None, default=0
        Seeds which images get which attribute value, in training and test.
        The same ``int`` gives the same dataset every time.
    download : bool, default=True
        Whether torchvision may download Fashion-MNIST when the files are
        not found (see :func:`load_fashion_mnist`).

    Returns
    -------
    data : sklearn.utils.Bunch
        What :func:`load_fashion_mnist` returns, with the attribute drawn
        into the images, plus:

        - ``X_train`` (60,000 × 1 × 28 × 28), ``X_test`` (10,000 × 1 × 28 ×
          28): ``float32`` in [0, 1]; ``y_train``, ``y_test``: ``int64``
          labels 0..9; ``class_names``; ``name`` is
          ``"spurious-fashion-mnist"``; ``DESCR``;
        - ``attribute_train``, ``attribute_test``: ``int64`` attribute
          values in ``0 .. n_attributes - 1``;
        - ``groups_train``, ``groups_test``: ``int64`` group ids,
          ``class * n_attributes + attribute``;
        - ``group_names``: one name per group id, e.g. ``"Shirt/border 1"``
          for group ``6 * 2 + 1 = 13``;
        - ``majority_attribute``: ``int64`` array, the own attribute value
          of every class (``arange(10) % n_attributes``). Minority test rows
          are ``attribute_test != majority_attribute[y_test]``.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    DatasetNotFoundError
        If the Fashion-MNIST files are found nowhere (a
        ``FileNotFoundError``; the message names the missing file and how
        to get it).
    DatasetFormatError
        If a Fashion-MNIST file is truncated or corrupted.

    See Also
    --------
    load_fashion_mnist : The images without the attribute.

    Examples
    --------
    >>> from skprune.datasets import load_spurious_fashion_mnist
    >>> data = load_spurious_fashion_mnist(random_state=0)  # doctest: +SKIP

    With Debian's ``dataset-fashion-mnist`` installed, ``data.X_train`` has
    shape (60000, 1, 28, 28) and ``data.X_test`` (10000, 1, 28, 28);
    ``data.groups_train`` holds ids 0..19, and 5,700 of each class's 6,000
    training images carry its own value. ``data.group_names[13]`` is
    ``"Shirt/border 1"``, a minority group (shirt is class 6, whose own
    value is 0); in the test set it holds 500 of the 1,000 shirts.
    """
    n_attributes, correlation = _check_params(n_attributes, correlation, attribute)
    fashion = load_fashion_mnist(root, download=download)
    rng = check_random_state(random_state)
    n_classes = len(fashion.class_names)
    attribute_train = _draw_attributes(
        fashion.y_train, n_classes, n_attributes, correlation, rng
    )
    attribute_test = _draw_attributes(fashion.y_test, n_classes, n_attributes, None, rng)
    group_names = [
        f"{class_name}/{attribute} {value}"
        for class_name in fashion.class_names
        for value in range(n_attributes)
    ]
    return Bunch(
        X_train=_add_attribute(fashion.X_train, attribute_train, n_attributes, attribute),
        y_train=fashion.y_train,
        X_test=_add_attribute(fashion.X_test, attribute_test, n_attributes, attribute),
        y_test=fashion.y_test,
        class_names=list(fashion.class_names),
        name="spurious-fashion-mnist",
        DESCR=_describe(n_attributes, correlation, attribute, random_state),
        attribute_train=attribute_train,
        attribute_test=attribute_test,
        groups_train=fashion.y_train * n_attributes + attribute_train,
        groups_test=fashion.y_test * n_attributes + attribute_test,
        group_names=group_names,
        majority_attribute=np.arange(n_classes, dtype=np.int64) % n_attributes,
    )


def _check_params(n_attributes, correlation, attribute):
    if (
        not isinstance(n_attributes, numbers.Integral)
        or isinstance(n_attributes, bool)
        or n_attributes < 2
    ):
        raise ValueError(f"n_attributes must be an integer >= 2; got {n_attributes!r}.")
    if (
        not isinstance(correlation, numbers.Real)
        or isinstance(correlation, bool)
        or not 0 <= correlation <= 1
    ):
        raise ValueError(f"correlation must be a number in [0, 1]; got {correlation!r}.")
    if attribute not in _ATTRIBUTES:
        valid = ", ".join(repr(name) for name in _ATTRIBUTES)
        raise ValueError(f"attribute must be one of {valid}; got {attribute!r}.")
    return int(n_attributes), float(correlation)


def _balanced(values, n, rng):
    """``n`` draws of ``values``, as evenly spread as possible, the extras at random.

    Every value occurs ``n // len(values)`` or one more time; which values
    get the ``n % len(values)`` extra occurrences is drawn from ``rng``.
    Returned grouped by value (the caller assigns them to shuffled rows).
    """
    values = np.asarray(values, dtype=np.int64)
    counts = np.full(values.size, n // values.size)
    counts[rng.permutation(values.size)[: n % values.size]] += 1
    return np.repeat(values, counts)


def _draw_attributes(y, n_classes, n_attributes, correlation, rng):
    """One attribute value per row of ``y``, exact shares per class.

    With a ``correlation``, ``round(correlation * n_k)`` rows of class ``k``
    get ``k % n_attributes`` and the rest the other values, evenly
    (:func:`_balanced`). With ``correlation=None`` every class's rows are
    spread evenly over all values: the attribute is independent of the
    class. Which rows get which value is drawn from ``rng``, class by class
    in label order.
    """
    y = np.asarray(y)
    attributes = np.empty(y.shape[0], dtype=np.int64)
    all_values = np.arange(n_attributes)
    for label in range(n_classes):
        rows = rng.permutation(np.flatnonzero(y == label))
        if correlation is None:
            values = _balanced(all_values, rows.size, rng)
        else:
            own = label % n_attributes
            n_own = int(round(correlation * rows.size))
            others = all_values[all_values != own]
            values = np.concatenate([
                np.full(n_own, own, dtype=np.int64),
                _balanced(others, rows.size - n_own, rng),
            ])
        attributes[rows] = values
    return attributes


def _attribute_levels(n_attributes, attribute):
    """The intensity drawn for each attribute value: frame gray or background tint."""
    values = np.arange(n_attributes, dtype=np.float32)
    if attribute == "border":
        return (values + 1) / n_attributes
    return MAX_TINT * values / (n_attributes - 1)


def _add_attribute(images, attributes, n_attributes, attribute="border"):
    """``images`` (NCHW, ``float32`` in [0, 1]) with each row's attribute drawn in.

    Returns a new ``float32`` array; ``images`` is left as it is.
    ``"border"`` overwrites the outer ``BORDER_WIDTH`` pixels of every
    channel with ``(a + 1) / n_attributes``; ``"tint"`` maps ``x`` to ``t +
    (1 - t) * x`` with ``t = MAX_TINT * a / (n_attributes - 1)``.
    """
    images = np.asarray(images, dtype=np.float32)
    attributes = np.asarray(attributes)
    if images.ndim != 4 or attributes.shape != images.shape[:1]:
        raise ValueError(
            f"Expected NCHW images and one attribute per image; got images of shape "
            f"{images.shape} and attributes of shape {attributes.shape}."
        )
    levels = _attribute_levels(n_attributes, attribute)[attributes][:, None, None, None]
    if attribute == "border":
        out = images.copy()
        w = BORDER_WIDTH
        frame = np.zeros(images.shape[2:], dtype=bool)
        frame[:w, :] = frame[-w:, :] = frame[:, :w] = frame[:, -w:] = True
        out[..., frame] = levels[..., 0]
        return out
    out = images * (1 - levels)
    out += levels
    return np.clip(out, 0.0, 1.0, out=out)


def _describe(n_attributes, correlation, attribute, random_state):
    if attribute == "border":
        drawn = (
            f"a {BORDER_WIDTH}-pixel frame of intensity (a + 1) / {n_attributes} "
            "replaces the image's outer pixels"
        )
    else:
        drawn = (
            f"the image x becomes t + (1 - t) x with background tint "
            f"t = {MAX_TINT} * a / {n_attributes - 1}"
        )
    return (
        "Spurious Fashion-MNIST: Fashion-MNIST (Xiao et al. 2017) with an attribute "
        f"a in 0..{n_attributes - 1} drawn into every 28×28 image ({attribute}: {drawn}). "
        f"Class k's own value is k % {n_attributes}; in training, round({correlation} * n_k) "
        "images of every class carry it and the rest the other values evenly; in the test "
        "set the attribute is independent of the class (even per class). Groups are "
        f"class × attribute (id = class * {n_attributes} + a); minority groups (a class with "
        "another value than its own) are where a shortcut-learning model fails: report "
        f"worst-group accuracy. random_state={random_state!r}."
    )
