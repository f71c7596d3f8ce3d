"""The public functions of :mod:`skprune.gradients` and their input checks."""

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils._devices import floating_dtype, module_device
from ._autotune import check_route, route_policy
from ._engine import _GhostNorms


def per_sample_grad_norms(
    module, X, y, *, criterion=None, batch_size=256, device=None, parameters=None,
    route="auto",
):
    """Exact L2 norm of every sample's loss gradient over a network's parameters.

    Sample ``i`` gets ``||grad_theta loss(module(X[i]), y[i])||_2`` over all
    trainable parameters ``theta``, computed with the module in eval mode
    (dropout off, batch norm on its running statistics) and batched, at
    about the cost of one forward and one backward pass: the backward pass
    stops at the layers' outputs, and each layer's per-sample squared norms
    follow from its inputs and output gradients. ``Linear``, ``Conv1d``,
    ``Conv2d``, ``Conv3d``, ``Embedding``, ``BatchNorm``, ``LayerNorm`` and
    ``GroupNorm`` layers are handled this way (a layer's per-sample
    gradients are formed, one layer at a time, only where that is cheaper
    than its norm-only formula). Any other layer with parameters, and any
    parameter used outside the layers that hold it, goes through an exact
    but slower per-sample route (``torch.func.vmap(grad)``, or a per-sample
    loop where ``vmap`` fails).

    The module is left as it was: its train/eval state is restored and no
    parameter's ``.grad`` is touched.

    Parameters
    ----------
    module : torch.nn.Module
        A classifier whose output for a batch of ``n`` samples has shape
        ``(n, n_classes)``. It must process samples independently in eval
        mode (batch norm layers need running statistics).
    X : array-like or torch.Tensor of shape (n_samples, ...)
        Inputs, batch dimension first. Floating-point inputs are cast to the
        module's floating-point dtype; integer inputs (token ids) are kept.
    y : array-like of shape (n_samples,)
        Class indices into the module's outputs, ``0 <= y < n_classes``.
    criterion : None, str, or torch.nn loss class or instance, default=None
        Which loss, and hence what the module outputs (a loss class or
        instance must be ``torch.nn.CrossEntropyLoss`` or ``torch.nn.NLLLoss``):

        - ``None`` or ``"cross_entropy"`` (or ``CrossEntropyLoss``): the
          module outputs **logits**; the loss is ``cross_entropy(output, y)``.
        - ``"nll"`` (or ``NLLLoss``, skorch's default criterion): the module
          outputs **probabilities** (e.g. it ends with a softmax); the loss
          is ``nll_loss(log(output + eps), y)`` with ``eps`` the dtype's
          machine epsilon, exactly as skorch's ``NeuralNetClassifier``
          trains it.

        A loss instance keeps its own ``weight``, ``label_smoothing`` and
        ``ignore_index`` settings (per sample: its reduction is ignored).
    batch_size : int, default=256
        Samples per forward/backward pass.
    device : str, torch.device or None, default=None
        Where the batches are sent. ``None`` uses the device of the
        module's parameters. The module itself is not moved.
    parameters : iterable of torch.nn.Parameter, default=None
        Restrict the norm to these parameters of ``module`` (e.g. those of
        the final layer). ``None`` uses every parameter with
        ``requires_grad=True``.
    route : str, default="auto"
        How a layer with several exact routes (convolutions, linear layers
        over sequences) computes its norms: ``"auto"``, ``"estimate"``, or
        one of ``"gram"``, ``"outer"``, ``"grouped"``, ``"shifted"`` and
        ``"pixel_gram"``; every route gives the same norms up to rounding.
        ``"auto"`` times every route that the shape model does not rule
        out, the first time a layer shape (with its device and dtype) is
        seen, and keeps the fastest for the process, as cuDNN's benchmark
        mode does. ``"estimate"`` takes the shape model's
        choice without timing. A route's name forces that route wherever
        it applies (elsewhere the shape model chooses). See Notes.

    Returns
    -------
    norms : ndarray of shape (n_samples,)
        The per-sample gradient norms, in float64.

    Raises
    ------
    ValueError
        If the module's output is not ``(n_samples, n_classes)``, a label is
        not a valid index into it, the output is not finite, probabilities
        are expected but the output is not in ``[0, 1]``, a batch norm
        layer has no running statistics, or ``route`` is unknown.

    See Also
    --------
    GraNdPruner : prunes the samples with the smallest gradient norms.
    skprune.gradients.grad_norm_routes : the route each layer takes.
    skprune.gradients.register_norm_rule : norm rules for one's own layers.

    Notes
    -----
    A layer ``z = W a`` applied at positions ``t`` (sequence steps,
    convolution windows, repeated calls) gets the per-sample gradient
    ``sum_t g_t a_t^T``, ``g = dloss/dz``. Its squared norm is
    ``||g||^2 ||a||^2`` for one position, and otherwise either
    ``sum_{t,s} (a_t . a_s)(g_t . g_s)`` (route ``"gram"``) or the norm of
    the formed gradient (``"outer"``). A convolution's positions are its
    input windows; besides those two routes on the gathered windows, it has
    torch's own weight-gradient kernel with the batch folded into the groups
    (``"grouped"``), for stride 1 one matrix product per kernel offset on
    shifted slices of the flattened padded input (``"shifted"``), and the
    Gram form assembled from the products of input pixels (``"pixel_gram"``,
    for many channels on small maps). Which
    is fastest depends on the shapes, the device and its libraries; under
    ``route="auto"`` it is measured on the first batch of every new layer
    shape (each candidate runs once untimed, then the fastest of up to
    five interleaved timed runs counts) and reused afterwards, so the
    first call in a process costs a few extra runs of the norms of its
    layers. Parameters shared by several layers have their per-layer
    gradients formed and added before the norm is taken.
    The gradients with respect to the layers' outputs are exact only when
    the network treats samples independently; this is checked on the first
    batch, and layers that fail the check go through the general route.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skprune import per_sample_grad_norms
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
    ...                           torch.nn.Linear(8, 3))
    >>> X = np.random.RandomState(0).normal(size=(5, 4)).astype(np.float32)
    >>> y = np.array([0, 1, 2, 1, 0])
    >>> norms = per_sample_grad_norms(net, X, y)
    >>> norms.shape
    (5,)
    >>> loss = torch.nn.functional.cross_entropy(net(torch.tensor(X[:1])),
    ...                                          torch.tensor(y[:1]))
    >>> grads = torch.autograd.grad(loss, list(net.parameters()))
    >>> direct = torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()
    >>> bool(np.isclose(norms[0], direct, rtol=1e-5))
    True
    """
    batches = _batches(module, X, y, batch_size, device)
    return _grad_norms_of_batches(module, batches, criterion=criterion, parameters=parameters,
                                  route=route)


def grad_norm_routes(module, X, y, *, criterion=None, device=None, parameters=None,
                     route="auto"):
    """The route each layer's norms take in :func:`per_sample_grad_norms`, on one batch.

    Parameters
    ----------
    module : torch.nn.Module
    X : array-like or torch.Tensor of shape (n_samples, ...)
        One batch (all of it is processed at once).
    y : array-like of shape (n_samples,)
    criterion, device, parameters, route
        As in :func:`per_sample_grad_norms`. With ``route="auto"`` the
        routes are measured if this process has not seen these layer
        shapes yet.

    Returns
    -------
    routes : dict
        ``{layer name: route}`` for every layer (named as in
        ``module.named_modules()``) with parameters in the norm: the name of
        the route chosen for a layer with several (``"gram"``, ``"outer"``,
        ``"grouped"``, ``"shifted"``, ``"pixel_gram"``), ``"rule"`` for a
        layer whose rule has a single route, and ``"general"`` for the
        general per-sample route.

    See Also
    --------
    per_sample_grad_norms : the norms themselves.

    Examples
    --------
    >>> import torch
    >>> from skprune.gradients import grad_norm_routes
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(),
    ...                           torch.nn.Linear(4 * 6 * 6, 3))
    >>> X, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    >>> grad_norm_routes(net, X, y, route="gram")
    {'0': 'gram', '2': 'rule'}
    """
    X, target = _checked_inputs(module, X, y, batch_size=1)
    X, device = _cast(module, X, device)
    names = {layer: name for name, layer in module.named_modules()}
    log = {}
    kind, loss = _per_sample_loss(criterion)
    check_route(route)
    with torch.enable_grad(), route_policy(route, log), \
            _GhostNorms(module, kind, loss, parameters) as ghost:
        ghost.batch_sq_norms(X.to(device), target.to(device))
        plan = ghost.plan
    routes = {names[layer]: log.get(layer, "rule") for layer in plan.layers}
    for name in plan.general:
        routes[name.rpartition(".")[0]] = "general"
    return {name: routes[name] for name in names.values() if name in routes}


def _checked_inputs(module, X, y, batch_size):
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}.")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    X = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    target = _as_targets(y)
    if X.dim() == 0 or X.shape[0] != target.shape[0]:
        raise ValueError(
            f"X and y have different lengths: X has shape {tuple(X.shape)} and y has "
            f"{target.shape[0]} labels. Pass one label per sample (batch dimension first)."
        )
    return X, target


def _cast(module, X, device):
    """``X`` in the module's floating-point dtype, and the device the batches go to."""
    dtype = floating_dtype(module)
    if X.is_floating_point() and dtype is not None:
        X = X.to(dtype)
    return X, module_device(module) if device is None else torch.device(device)


def _batches(module, X, y, batch_size, device):
    X, target = _checked_inputs(module, X, y, batch_size)
    X, device = _cast(module, X, device)
    return (
        (X[start:start + batch_size].to(device), target[start:start + batch_size].to(device))
        for start in range(0, X.shape[0], batch_size)
    )


def _grad_norms_of_batches(module, batches, *, criterion=None, parameters=None, route="auto"):
    """:func:`per_sample_grad_norms` over ``(inputs, targets)`` batches on the right device.

    ``inputs`` may be a tensor or a dict of tensors (passed as keyword
    arguments, as skorch does). Returns an ndarray of float64 norms.
    """
    kind, loss = _per_sample_loss(criterion)
    check_route(route)
    sq_norms = []
    # Gradients are needed even when the caller runs under torch.no_grad().
    with torch.enable_grad(), route_policy(route), \
            _GhostNorms(module, kind, loss, parameters) as ghost:
        for inputs, target in batches:
            sq_norms.append(ghost.batch_sq_norms(inputs, target))
    if not sq_norms:
        return np.zeros(0)
    return torch.cat(sq_norms).clamp_min(0).sqrt().cpu().numpy()


def _per_sample_loss(criterion):
    """``(kind, loss)``: ``kind`` is ``"logits"`` or ``"probabilities"``,
    ``loss(output, target)`` gives one loss per sample."""
    if isinstance(criterion, type) and issubclass(criterion, (nn.CrossEntropyLoss, nn.NLLLoss)):
        criterion = criterion()
    if criterion is None or (isinstance(criterion, str) and criterion == "cross_entropy"):
        return "logits", lambda output, target: F.cross_entropy(output, target, reduction="none")
    if isinstance(criterion, str) and criterion == "nll":
        return "probabilities", lambda output, target: F.nll_loss(
            _log_probabilities(output), target, reduction="none"
        )
    if isinstance(criterion, (nn.CrossEntropyLoss, nn.NLLLoss)):
        per_sample = copy.copy(criterion)
        per_sample.reduction = "none"
        if isinstance(criterion, nn.CrossEntropyLoss):
            return "logits", per_sample
        return "probabilities", lambda output, target: per_sample(
            _log_probabilities(output), target
        )
    raise ValueError(
        "criterion must be None or 'cross_entropy' (the module outputs logits), 'nll' "
        "(the module outputs probabilities), or a torch.nn.CrossEntropyLoss or "
        f"torch.nn.NLLLoss class or instance; got {criterion!r}."
    )


def _log_probabilities(output):
    # skorch's NeuralNetClassifier trains NLLLoss on log(p + eps); the same
    # loss keeps the gradient finite for a probability of exactly 0.
    return torch.log(output + torch.finfo(output.dtype).eps)


def _as_targets(y):
    y = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    if y.dim() != 1:
        raise ValueError(f"y must be 1-D class indices; got shape {tuple(y.shape)}.")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        if y.is_floating_point() and bool((y == y.round()).all()):
            return y.long()
        raise ValueError(f"y must hold integer class indices; got dtype {y.dtype}.")
    return y.long()
