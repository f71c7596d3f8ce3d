"""Small torch helpers shared by the pruners, the quotas and the gradient norms.

Everything here is about moving data between scikit-learn's world (arrays,
pandas, labels of any type) and torch's (tensors, ``int64`` class indices,
devices), and about leaving the caller's random state as it was.
"""

import random
import warnings
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import _safe_indexing
from torch.nn.parameter import is_lazy

#: Outputs whose true-class probabilities skprune knows how to read.
OUTPUT_KINDS = ("probabilities", "logits")


# Random state ---------------------------------------------------------------


@contextmanager
def preserved_random_state():
    """Context that restores the global torch (CPU and CUDA), numpy and Python RNGs.

    Whatever runs inside may draw from or reseed the global generators (a
    ``DataLoader`` draws its base seed from torch's, user callbacks may use
    numpy's); the caller finds them exactly as it left them.
    """
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


@contextmanager
def seeded(seed):
    """Context in which the global torch, numpy and Python RNGs are seeded, then restored.

    Parameters
    ----------
    seed : int
    """
    seed = int(seed)
    with preserved_random_state():
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        yield


def run_seeds(seed, n_runs):
    """The seed of each of ``n_runs`` independent runs, derived from ``seed``.

    Parameters
    ----------
    seed : int
    n_runs : int

    Returns
    -------
    list of int
        Non-negative seeds below ``2**31``.
    """
    return [int(np.random.SeedSequence([int(seed), run]).generate_state(1)[0] >> 1)
            for run in range(n_runs)]


# Devices and batches ---------------------------------------------------------


def resolve_device(device):
    """Turn ``"auto"`` into ``"cuda"`` when CUDA is available, else ``"cpu"``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_device(device):
    """Raise a ``ValueError`` naming ``device`` when this machine has no such device.

    Called before a network is built, so that a missing GPU is reported as
    the estimator's parameter rather than as a driver error deep in torch.
    ``None`` (skorch: leave data and modules where they are) and ``"auto"``
    always exist.
    """
    if device is None or device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' "
                         "or 'cuda:<index>'.") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}, but CUDA is not available on this machine; "
                             "use device='auto' (CUDA where there is one) or 'cpu'.")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}, but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s); use an index "
                             "below that, or device='auto'.")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but MPS is not available on this machine; use "
                         "device='auto' or 'cpu'.")


@contextmanager
def eval_mode(module):
    """Context in which ``module`` is in eval mode without gradients, then as it was.

    Scoring and prediction passes read the network as it would predict:
    dropout off, batch norm on its running statistics.
    """
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(training)


def forward(module, inputs):
    """Call ``module`` the way skorch does: a dict of inputs becomes keyword arguments."""
    if isinstance(inputs, Mapping):
        return module(**inputs)
    return module(inputs)


def module_device(module):
    """The device of a module's first parameter or buffer (CPU when it has none)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def floating_dtype(module):
    """The dtype of a module's first initialized floating-point tensor, or ``None``."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point() and not is_lazy(tensor):
            return tensor.dtype
    return None


def batch_length(inputs):
    """Number of samples in a batch of inputs (a tensor, dict or sequence of tensors)."""
    if isinstance(inputs, Mapping):
        return len(next(iter(inputs.values())))
    if isinstance(inputs, (list, tuple)):
        return len(inputs[0])
    return len(inputs)


def inputs_device(inputs):
    """The device of a batch of inputs (a tensor, dict or sequence of tensors)."""
    if isinstance(inputs, Mapping):
        inputs = next(iter(inputs.values()))
    elif isinstance(inputs, (list, tuple)):
        inputs = inputs[0]
    return inputs.device


# Data as torch modules expect it -----------------------------------------------


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


def final_linear(module, inputs, owner):
    """The ``torch.nn.Linear`` layer called last when ``module`` runs on ``inputs``.

    Its input is the network's penultimate representation (the embedding
    that CoreSet and prototype scores use) and its parameters the "last
    layer" of GraNd's cheap variant.

    Parameters
    ----------
    module : torch.nn.Module
    inputs : tensor or dict of tensors
        One batch, on the module's device.
    owner : str
        What needs the layer, used in the error message.
    """
    called = []
    hooks = [
        layer.register_forward_hook(lambda layer, args, output: called.append(layer))
        for layer in module.modules()
        if isinstance(layer, torch.nn.Linear)
    ]
    try:
        with eval_mode(module):
            forward(module, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    if not called:
        raise ValueError(
            f"{owner} reads the final torch.nn.Linear layer of the network, but "
            f"{type(module).__name__} calls none. End the module with a torch.nn.Linear "
            "classifier layer."
        )
    return called[-1]


# Checks of a module's output ----------------------------------------------------


def output_kind(criterion):
    """What a skorch classifier's module outputs, judged from its criterion.

    skorch's ``NeuralNetClassifier`` applies ``log`` to the module's output
    before an ``NLLLoss``, so with that criterion (its default) the module
    outputs probabilities; ``CrossEntropyLoss`` applies the softmax itself,
    so the module outputs logits. Other criteria leave it open.

    Parameters
    ----------
    criterion : torch loss class or instance

    Returns
    -------
    kind : {"probabilities", "logits"} or None
        ``None`` when the criterion does not tell.

    Examples
    --------
    >>> import torch
    >>> from skprune.callbacks import output_kind
    >>> output_kind(torch.nn.NLLLoss), output_kind(torch.nn.CrossEntropyLoss())
    ('probabilities', 'logits')
    """
    criterion_type = criterion if isinstance(criterion, type) else type(criterion)
    if not isinstance(criterion_type, type):
        return None
    if issubclass(criterion_type, torch.nn.NLLLoss):
        return "probabilities"
    if issubclass(criterion_type, torch.nn.CrossEntropyLoss):
        return "logits"
    return None


def require_output_kind(criterion, owner):
    """:func:`output_kind` of ``criterion``, or a ``ValueError`` that gives the fix.

    Parameters
    ----------
    criterion : torch loss class or instance
    owner : str
        Name of the class that reads the output, used in the message.
    """
    kind = output_kind(criterion)
    if kind is None:
        name = getattr(criterion, "__name__", type(criterion).__name__)
        raise ValueError(
            f"{owner} reads class probabilities from the network's output and needs to "
            "know whether the module outputs probabilities or logits: use "
            "criterion=torch.nn.NLLLoss (skorch's default; the module ends with a "
            "softmax) or criterion=torch.nn.CrossEntropyLoss (the module outputs "
            f"logits); got criterion={name}."
        )
    return kind


def check_class_outputs(output, target, kind, *, warn_probabilities=False):
    """Raise a ``ValueError`` unless ``output`` holds class scores for ``target``.

    Parameters
    ----------
    output : object
        What the module returned for a batch.
    target : torch.Tensor of shape (n,)
        The batch's class indices.
    kind : {"logits", "probabilities"}
    warn_probabilities : bool, default=False
        Warn when logits are expected but every row looks like a probability
        distribution.
    """
    n = target.shape[0]
    if isinstance(output, torch.Tensor):
        output = output.detach()
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != n:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"The module must output one row of class scores per sample, of shape "
            f"(n_samples, n_classes); for a batch of {n} samples it returned {shape}. "
            "Flatten or pool to (n_samples, n_classes) in the module's forward."
        )
    n_classes = output.shape[1]
    check_labels(target, n_classes)
    if not torch.isfinite(output).all():
        raise ValueError(
            "The module's output contains NaN or infinite values; scores computed "
            "from it would be meaningless. Check the inputs and the network's "
            "weights."
        )
    if kind == "probabilities":
        if n and (float(output.min()) < 0 or float(output.max()) > 1 + 1e-4):
            raise ValueError(
                "The loss assumes that the module outputs probabilities (NLLLoss, "
                "skorch's default criterion, is applied to their log), but the output "
                f"has values in [{float(output.min()):.3g}, {float(output.max()):.3g}]. "
                "If the module outputs logits, use criterion=torch.nn.CrossEntropyLoss "
                "(for per_sample_grad_norms, criterion='cross_entropy'); otherwise end "
                "the module with a softmax."
            )
    elif warn_probabilities and n and n_classes > 1 and _looks_like_probabilities(output):
        warnings.warn(
            "The loss assumes that the module outputs logits (CrossEntropyLoss), but "
            "every output row is non-negative and sums to 1, like probabilities. If the "
            "module ends with a softmax, use criterion=torch.nn.NLLLoss "
            "(criterion='nll').",
            UserWarning,
            stacklevel=3,
        )


def check_labels(target, n_classes):
    """Raise a ``ValueError`` unless every label indexes one of ``n_classes`` outputs."""
    if target.shape[0] == 0:
        return
    low, high = (int(bound) for bound in torch.aminmax(torch.as_tensor(target)))
    if low < 0 or high >= n_classes:
        raise ValueError(
            f"Labels must index the module's {n_classes} outputs (0 to {n_classes - 1}); "
            f"got class indices from {low} to {high}. Give the module one output per "
            "class (e.g. module__n_classes or the size of its last layer)."
        )


def _looks_like_probabilities(output):
    sums = output.sum(1)
    return bool((output >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-4))
