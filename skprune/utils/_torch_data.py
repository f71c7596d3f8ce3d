"""Data as torch modules expect it: inputs, class positions, rows of any type, Datasets."""

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import _safe_indexing
from skorch.dataset import Dataset as SkorchDataset
from skorch.helper import SliceDataset

from ..exceptions import with_article


def net_inputs(X):
    """``X`` as a float32 torch module expects it.

    Floating-point arrays of another precision (float64, float16) become
    float32, the dtype of a module's weights (torch refuses to multiply
    mismatched dtypes). Integer arrays are left alone: they may be token ids
    for an embedding; raw uint8 images are reported by
    :func:`describe_forward_error` with the fix. Sparse input becomes a scipy
    CSR *matrix*: skorch densifies sparse batches one row at a time, which
    needs 2-D rows (a row of a sparse array is 1-D). A read-only array (pandas'
    copy-on-write hands those out, e.g. ``np.asarray(df)``) is copied: torch
    warns that it cannot wrap one ("The given NumPy array is not writable").
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    if isinstance(X, np.ndarray) or sp.issparse(X):
        if X.dtype.kind == "f" and X.dtype != np.float32:
            return X.astype(np.float32)
    if isinstance(X, np.ndarray) and not X.flags.writeable:
        return X.copy()
    return X


def describe_forward_error(exc, X, owner):
    """A ``ValueError`` that says which input property a failed forward pass tripped on.

    torch reports a wrong input dtype or width from deep inside a layer
    (``mat1 and mat2 must have the same dtype``, ``shapes cannot be
    multiplied``); this names ``X``'s dtype and shape and the fix instead.
    Returns ``None`` for errors it does not recognise.

    Parameters
    ----------
    exc : Exception
        The error raised by the module's forward pass.
    X : array-like or Dataset
        The data given to the pruner.
    owner : str
        Name of the class whose network failed, used in the message.
    """
    message = str(exc)
    dtype = getattr(X, "dtype", None)
    shape = getattr(X, "shape", None)
    if "dtype" in message or "Expected object of scalar type" in message or (
        "expected scalar type" in message.lower()
    ):
        hint = (" Scale images to floats first, e.g. X.astype('float32') / 255."
                if dtype is not None and np.dtype(dtype).kind in "iub" else "")
        return ValueError(
            f"{owner}'s network cannot take X of dtype {dtype}: its weights are "
            f"float32 (torch said: {message.splitlines()[0]}). Pass float32 "
            f"inputs.{hint}"
        )
    if "shape" in message or "size" in message:
        return ValueError(
            f"{owner}'s network cannot take X of shape {shape}: its first layers "
            f"expect another input size (torch said: {message.splitlines()[0]}). "
            "Give the module the number of features of X (e.g. module__in_features) "
            "or reshape X."
        )
    return None


def net_targets(y):
    """Labels a torch classification loss accepts: class indices ``0 .. n_classes - 1``.

    Labels are replaced by their position among the sorted classes, so that
    integer labels ``1 .. K``, float labels ``1.0 .. K`` and string labels
    all index the network's ``K`` outputs the same way. Labels that already
    are ``0 .. K - 1`` (the common case) are unchanged.
    """
    y = np.asarray(y)
    return np.unique(y, return_inverse=True)[1].astype(np.int64).reshape(-1)


def with_position_labels(X, target):
    """``X`` with ``target`` as its labels, where ``X`` is a Dataset that needs it.

    skorch trains on a Dataset's own labels and ignores the ``y`` given
    beside it. Labels that are not class positions (``1 .. K``, strings, or a
    cross-validation fold without some class) must become positions there
    too, or the loss and every recorded statistic would read other classes
    than the scores do. Arrays (and ``target=None``) leave ``X`` as it is.
    """
    if target is None or not isinstance(X, torch.utils.data.Dataset):
        return X
    return _PositionLabels(X, np.asarray(target, dtype=np.int64))


class _PositionLabels(torch.utils.data.Dataset):
    """A Dataset's rows with their inputs and the given class positions as labels."""

    def __init__(self, dataset, target):
        self.dataset = dataset
        self.target = target

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[index][0], self.target[index]


def take_rows(X, indices):
    """Rows ``indices`` of ``X``, in ``X``'s own type.

    A torch Dataset gives a ``Subset`` (no copy), a skorch ``SliceDataset``
    a ``SliceDataset`` of those rows (no copy either), pandas objects keep their
    index, lists stay lists, arrays and sparse matrices are indexed.
    """
    indices = np.asarray(indices)
    if isinstance(X, torch.utils.data.Dataset):
        return torch.utils.data.Subset(X, indices.tolist())
    if isinstance(X, SliceDataset):
        return X[indices.astype(np.intp)]
    if isinstance(X, list):
        return [X[i] for i in indices]
    return _safe_indexing(X, indices)


def batch_length(inputs):
    """Number of samples in a batch of inputs (a tensor, dict or sequence of tensors)."""
    if isinstance(inputs, Mapping):
        return len(next(iter(inputs.values())))
    if isinstance(inputs, (list, tuple)):
        return len(inputs[0])
    return len(inputs)


def is_dataset(X):
    """Whether ``X`` is read row by row: a torch Dataset, or skorch's ``SliceDataset``.

    Such inputs are never validated or copied as arrays; their kept rows come
    back as a ``Subset`` (a Dataset) or a ``SliceDataset`` of the kept rows.
    """
    return isinstance(X, (torch.utils.data.Dataset, SliceDataset))


def check_not_dataset_items(X, owner):
    """Raise where ``X`` is a list of a Dataset's ``(input, label)`` items.

    scikit-learn's ``cross_validate`` and ``GridSearchCV`` index a torch
    Dataset into a list of its items (each fold is ``[dataset[i] for i in
    fold]``), which neither a pruner nor a skorch net can take; skorch's
    ``SliceDataset`` is the wrapper that survives their indexing. A list of
    plain rows (numbers, or arrays of numbers) is left alone.
    """
    if not isinstance(X, list) or not X:
        return
    first = X[0]
    if not isinstance(first, tuple) or len(first) < 2 or not _is_sample(first[0]):
        return
    raise ValueError(
        f"{owner} got X as a list of {len(X)} (input, label) tuples: scikit-learn's "
        "cross_validate and GridSearchCV index a torch Dataset into such a list, which "
        "neither a pruner nor a skorch net can train on. Wrap the Dataset in skorch's "
        "SliceDataset, which they index lazily: cross_validate(pipe, "
        "SliceDataset(dataset), y), with y = dataset.targets (or the labels you mean); "
        "see the user guide's 'Model selection on a torch Dataset'."
    )


def _is_sample(part):
    if isinstance(part, torch.Tensor | np.ndarray):
        return part.ndim >= 1
    return type(part).__module__.startswith("PIL.")


#: How many items of a Dataset without a cheap label column are read to check them.
LABEL_SAMPLE_SIZE = 64


def dataset_labels(dataset):
    """The labels a Dataset's own items carry, where it has them.

    skorch trains on a Dataset's own labels and ignores the ``y`` given beside
    it, so they must agree with ``y``. Where the labels can be read without
    loading the inputs (a ``TensorDataset``, a skorch ``Dataset``, a
    torchvision ``DatasetFolder``/``ImageFolder`` or any torchvision dataset
    with ``targets`` and no ``target_transform``, and ``Subset`` or
    ``ConcatDataset`` of those), every row's is returned. Otherwise up to
    :data:`LABEL_SAMPLE_SIZE` evenly spaced items are read.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset

    Returns
    -------
    positions : ndarray of int or None
        The rows whose labels were read; ``None`` when the items carry no
        scalar label (an item that is not an ``(input, label, ...)`` tuple, or
        whose label is a vector).
    labels : list
        Their labels, as Python scalars.
    """
    n = len(dataset)
    labels = _label_column(dataset)
    if labels is not None:
        return np.arange(n), labels
    positions = np.unique(np.linspace(0, n - 1, min(n, LABEL_SAMPLE_SIZE)).round().astype(int))
    sampled = []
    for position in positions.tolist():
        item = dataset[position]
        if not isinstance(item, tuple | list) or len(item) < 2:
            return None, []
        label = _scalar(item[1])
        if label is None:
            return None, []
        sampled.append(label)
    return positions, sampled


def _label_column(dataset):
    """Every row's label, read without loading inputs, or ``None`` where that is not known."""
    if isinstance(dataset, torch.utils.data.TensorDataset):
        if len(dataset.tensors) < 2 or dataset.tensors[1].dim() != 1:
            return None
        return dataset.tensors[1].tolist()
    if type(dataset).__getitem__ is SkorchDataset.__getitem__:
        y = dataset.y
        if y is None or type(dataset).transform is not SkorchDataset.transform:
            return None
        y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
        return y.tolist() if y.ndim == 1 else None
    if isinstance(dataset, torch.utils.data.Subset):
        parent = _label_column(dataset.dataset)
        return None if parent is None else [parent[i] for i in np.asarray(dataset.indices)]
    if isinstance(dataset, torch.utils.data.ConcatDataset):
        parts = [_label_column(part) for part in dataset.datasets]
        return None if any(part is None for part in parts) else [x for p in parts for x in p]
    return _torchvision_targets(dataset)


def _torchvision_targets(dataset):
    # torchvision datasets keep their labels in `targets` and apply
    # `target_transform` in __getitem__; a subclass that overrides
    # __getitem__ may return anything.
    getitem = type(dataset).__getitem__
    if not getattr(getitem, "__module__", "").startswith("torchvision."):
        return None
    targets = getattr(dataset, "targets", None)
    if targets is None or getattr(dataset, "target_transform", None) is not None:
        return None
    targets = np.asarray(targets.cpu() if isinstance(targets, torch.Tensor) else targets)
    return targets.tolist() if targets.ndim == 1 and len(targets) == len(dataset) else None


def _scalar(label):
    """A label as a Python scalar, or ``None`` for a vector (one-hot or soft) label."""
    if isinstance(label, torch.Tensor):
        return label.item() if label.numel() == 1 else None
    if isinstance(label, np.ndarray):
        return label.item() if label.size == 1 else None
    if isinstance(label, np.generic):
        return label.item()
    if isinstance(label, bool | int | float | str):
        return label
    return None


def check_dataset_labels(dataset, y, owner):
    """Raise a ``ValueError`` where a Dataset's own labels disagree with ``y``.

    A pruner selects rows by ``y``; a skorch net trains on the Dataset's own
    labels. Every row is compared where the labels can be read cheaply, a
    sample of rows otherwise (:func:`dataset_labels`). Reading items may run
    random transforms: call it with the global random states preserved.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
    y : ndarray of shape (n_samples,)
        The validated labels given beside it.
    owner : str
        Name of the pruner, for the message.
    """
    positions, labels = dataset_labels(dataset)
    if positions is None or not len(positions):
        return
    given = y[positions]
    own = np.asarray(labels)
    if own.dtype.kind in "biuf" and given.dtype.kind in "biuf":
        differ = own != given
    else:
        differ = np.array([a != b for a, b in zip(labels, given.tolist(), strict=True)])
    if not differ.any():
        return
    first = int(np.flatnonzero(differ)[0])
    checked = ("every row" if len(positions) == len(y)
               else f"{len(positions)} evenly spaced rows")
    raise ValueError(
        f"The labels of X, {with_article(type(dataset).__name__)} whose items carry their "
        f"own labels, disagree with y: {int(differ.sum())} of {checked} differ (row "
        f"{int(positions[first])}: the Dataset says {labels[first]!r}, y says "
        f"{given[first].item()!r}). {owner} selects rows by y, but a skorch net trains on "
        "the Dataset's own labels. Pass the Dataset's labels as y (for a torchvision "
        "dataset, y = dataset.targets), or, to train on y, wrap the inputs in "
        "skorch.helper.SliceDataset(dataset), whose items are the inputs alone."
    )
