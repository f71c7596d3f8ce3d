"""Data as torch modules expect it: inputs, class positions, rows of any type."""

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import _safe_indexing


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

    A torch Dataset gives a ``Subset`` (no copy), pandas objects keep their
    index, lists stay lists, arrays and sparse matrices are indexed.
    """
    indices = np.asarray(indices)
    if isinstance(X, torch.utils.data.Dataset):
        return torch.utils.data.Subset(X, indices.tolist())
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
