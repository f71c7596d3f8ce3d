"""Where tensors and modules live: resolving and checking devices."""

from collections.abc import Mapping

import torch
from torch.nn.parameter import is_lazy


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

    Parameters
    ----------
    device : str, torch.device or None
        A device as a skorch net takes it (``"cpu"``, ``"cuda:1"``, ``"auto"``).

    Raises
    ------
    ValueError
        Naming the device and what to use instead.

    Examples
    --------
    >>> from skprune.utils import check_device
    >>> check_device("cpu")
    >>> check_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: device='gpu' is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'.
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


def inputs_device(inputs):
    """The device of a batch of inputs (a tensor, dict or sequence of tensors)."""
    if isinstance(inputs, Mapping):
        inputs = next(iter(inputs.values()))
    elif isinstance(inputs, (list, tuple)):
        inputs = inputs[0]
    return inputs.device
