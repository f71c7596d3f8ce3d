"""Loaders by name, for command lines and benchmark presets."""

from ._cifar import load_cifar10, load_cifar100
from ._digits import load_digits_images
from ._fashion_mnist import load_fashion_mnist
from ._spurious import load_spurious_fashion_mnist
from ._tiny_imagenet import load_tiny_imagenet

#: Dataset name -> loader.
DATASETS = {
    "digits": load_digits_images,
    "fashion-mnist": load_fashion_mnist,
    "spurious-fashion-mnist": load_spurious_fashion_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "tiny-imagenet": load_tiny_imagenet,
}


def load_dataset(name, root=None):
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`: ``"digits"``, ``"fashion-mnist"``,
        ``"spurious-fashion-mnist"``, ``"cifar10"``, ``"cifar100"`` or
        ``"tiny-imagenet"``. ``"spurious-fashion-mnist"`` is
        :func:`load_spurious_fashion_mnist` with its defaults.
    root : str or path-like, default=None
        Directory holding the dataset's files; see each loader for where
        ``None`` looks. Ignored by ``"digits"``, which ships with
        scikit-learn.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train``, ``y_train``, ``X_test``, ``y_test`` (``float32`` NCHW
        images in [0, 1] and ``int64`` labels), ``class_names``, ``name``
        and ``DESCR``. ``"spurious-fashion-mnist"`` adds its attributes and
        groups (``attribute_train``, ``groups_train``, ``group_names``, ...).

    Examples
    --------
    >>> from skprune.datasets import load_dataset
    >>> data = load_dataset("digits")
    >>> data.X_train.dtype, data.X_train.shape[1:]
    (dtype('float32'), (1, 8, 8))
    >>> load_dataset("mnist")
    Traceback (most recent call last):
    ...
    ValueError: Unknown dataset 'mnist'. Valid names: 'cifar10', 'cifar100', 'digits', ...
    """
    if name not in DATASETS:
        valid = ", ".join(repr(valid_name) for valid_name in sorted(DATASETS))
        raise ValueError(f"Unknown dataset {name!r}. Valid names: {valid}.")
    if name == "digits":
        return load_digits_images()
    return DATASETS[name](root)
