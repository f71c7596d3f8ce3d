"""Exact per-sample gradient norms of a classification network.

GraNd scores a sample by the norm of its loss gradient over all the
network's parameters. Computing every sample's gradient (a backward pass
per sample, ``torch.func.vmap(grad)``, or Opacus) costs 5 to 250 times a
plain forward and backward pass. Here one forward pass records every layer's
input, one backward pass gives the gradients with respect to the layers'
outputs (never with respect to the parameters), and each layer's per-sample
squared norms are computed from those two ("ghost norms"; see
:mod:`skprune._ghost_norms`). Layers without such a rule, and parameters
used in ways the hooks cannot attribute, go through an exact general route.
"""

import copy
from collections import defaultdict
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parameter import is_lazy
from torch.utils._pytree import tree_map

from ._ghost_norms import RULE_PARAMETERS, rule_for
from ._torch_utils import check_class_outputs, floating_dtype, forward, module_device

__all__ = ["per_sample_grad_norms"]


def per_sample_grad_norms(
    module, X, y, *, criterion=None, batch_size=256, device=None, parameters=None
):
    """Exact L2 norm of every sample's loss gradient over a network's parameters.

    Sample ``i`` gets ``||grad_theta loss(module(X[i]), y[i])||_2`` over all
    trainable parameters ``theta``, computed with the module in eval mode
    (dropout off, batch norm on its running statistics) and batched, at
    about the cost of one forward and one backward pass: the backward pass
    stops at the layers' outputs, and each layer's per-sample squared norms
    follow from its inputs and output gradients. ``Linear``, ``Conv1d``,
    ``Conv2d``, ``Embedding``, ``BatchNorm``, ``LayerNorm`` and
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

    Returns
    -------
    norms : ndarray of shape (n_samples,)
        The per-sample gradient norms, in float64.

    Raises
    ------
    ValueError
        If the module's output is not ``(n_samples, n_classes)``, a label is
        not a valid index into it, the output is not finite, probabilities
        are expected but the output is not in ``[0, 1]``, or a batch norm
        layer has no running statistics.

    See Also
    --------
    GraNdPruner : prunes the samples with the smallest gradient norms.

    Notes
    -----
    A layer ``z = W a`` applied at positions ``t`` (sequence steps,
    convolution windows, repeated calls) gets the per-sample gradient
    ``sum_t g_t a_t^T``, ``g = dloss/dz``. Its squared norm is
    ``||g||^2 ||a||^2`` for one position, and otherwise either
    ``sum_{t,s} (a_t . a_s)(g_t . g_s)`` or the norm of the formed
    gradient, whichever is cheaper. Parameters shared by several layers have
    their per-layer gradients formed and added before the norm is taken.
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
    dtype = floating_dtype(module)
    if X.is_floating_point() and dtype is not None:
        X = X.to(dtype)
    device = module_device(module) if device is None else torch.device(device)
    batches = (
        (X[start:start + batch_size].to(device), target[start:start + batch_size].to(device))
        for start in range(0, X.shape[0], batch_size)
    )
    return _grad_norms_of_batches(module, batches, criterion=criterion, parameters=parameters)


def _grad_norms_of_batches(module, batches, *, criterion=None, parameters=None):
    """:func:`per_sample_grad_norms` over ``(inputs, targets)`` batches on the right device.

    ``inputs`` may be a tensor or a dict of tensors (passed as keyword
    arguments, as skorch does). Returns an ndarray of float64 norms.
    """
    kind, loss = _per_sample_loss(criterion)
    sq_norms = []
    # Gradients are needed even when the caller runs under torch.no_grad().
    with torch.enable_grad(), _GhostNorms(module, kind, loss, parameters) as ghost:
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


#: Samples the first batch's layout check runs on.
_CHECK_SAMPLES = 4


class _Call:
    """One recorded call of a layer: its input, output, and their versions."""

    __slots__ = ("input", "input_version", "output", "output_version", "grad")

    def __init__(self, input, output):
        self.input = input
        self.input_version = input._version
        self.output = output
        self.output_version = output._version
        self.grad = None


class _GhostNorms:
    """Per-batch squared gradient norms of one module; a context that installs hooks.

    Inside the context the module is in eval mode and forward hooks record
    the calls of every layer that has a rule. Outside it, the module's
    per-layer train/eval state is restored and the hooks are gone.
    """

    def __init__(self, module, kind, loss, parameters):
        self.module = module
        self.kind = kind
        self.loss = loss
        self.parameters = parameters

    def __enter__(self):
        self._training = {layer: layer.training for layer in self.module.modules()}
        self.module.eval()
        self._hooks = []
        self._calls = defaultdict(list)
        self._recording = False
        self._set_up = False
        # Layers whose outputs the network modifies in place (e.g. a ReLU with
        # inplace=True): they hand a copy downstream so that the recorded
        # output stays the one whose gradient the rule needs.
        self._copy_output = set()
        # Layers whose recorded calls a rule cannot use: dimension 0 is not
        # the sample dimension, samples interact, or the output is unreliable.
        self._not_per_sample = set()
        return self

    def __exit__(self, *exc_info):
        for hook in self._hooks:
            hook.remove()
        for layer, training in self._training.items():
            layer.train(training)
        self._calls = None
        return False

    def _set_up_module(self, inputs):
        if any(is_lazy(p) for p in self.module.parameters()):
            # Lazy layers (e.g. LazyLinear) only create their weights in a
            # first forward pass.
            with torch.no_grad():
                forward(self.module, inputs)
        for layer in self.module.modules():
            if isinstance(layer, _BatchNorm) and layer.running_mean is None:
                raise ValueError(
                    f"{type(layer).__name__} layer without running statistics "
                    "(track_running_stats=False) normalizes every sample with the "
                    "statistics of its whole batch, so per-sample gradients are not "
                    "defined. Use track_running_stats=True."
                )
        wanted = None
        if self.parameters is not None:
            wanted = {id(p) for p in self.parameters}
            if not wanted <= {id(p) for p in self.module.parameters()}:
                raise ValueError("parameters must be parameters of module.")
        # A parameter registered in several layers (weight tying) has one
        # owner per registration.
        self._owners = defaultdict(list)
        self._rules = {}
        for layer in self.module.modules():
            for name, param in layer._parameters.items():
                if param is None or not param.requires_grad:
                    continue
                if wanted is not None and id(param) not in wanted:
                    continue
                self._owners[id(param)].append((layer, name))
            rule = rule_for(layer)
            if rule is not None:
                self._rules[layer] = rule
                self._hooks.append(layer.register_forward_hook(self._record))
        self._named = {id(param): (name, param) for name, param in self.module.named_parameters()}
        self._set_up = True

    def _record(self, layer, args, output):
        if not self._recording:
            return None
        if not (args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor)):
            return None
        if not output.requires_grad:
            return None
        self._calls[layer].append(_Call(args[0], output))
        if layer in self._copy_output:
            return output.clone()
        return None

    def _forward_recorded(self, inputs):
        while True:
            self._calls = defaultdict(list)
            self._recording = True
            try:
                output = forward(self.module, inputs)
            finally:
                self._recording = False
            modified = {
                layer
                for layer, calls in self._calls.items()
                for call in calls
                if call.output._version != call.output_version
            }
            if not modified:
                return output
            if modified <= self._copy_output:
                # Modified even though a copy went downstream (e.g. by another
                # hook): the recorded output cannot be trusted, so these layers
                # go to the general route.
                self._not_per_sample |= modified
                return output
            # Run the batch again, with those outputs copied before use.
            self._copy_output |= modified

    def batch_sq_norms(self, inputs, target):
        """Squared per-sample gradient norms of one batch, as float64."""
        first = not self._set_up
        if first:
            self._set_up_module(inputs)
            if target.shape[0] > 1:
                self._check_per_sample(inputs, target)
        n = target.shape[0]
        output = self._forward_recorded(inputs)
        check_class_outputs(output, target, self.kind, warn_probabilities=first)
        losses = self.loss(output, target)
        sq_norms = torch.zeros(n, dtype=torch.float64, device=target.device)
        total = losses.sum()
        if not total.requires_grad:
            return sq_norms
        uses = _parameter_uses(total.grad_fn)
        plan = self._plan(uses, n)

        calls = [call for layer in plan.layers for call in self._calls[layer]]
        if calls:
            grads = torch.autograd.grad(
                total, [call.output for call in calls], allow_unused=True
            )
            for call, grad in zip(calls, grads):
                call.grad = torch.zeros_like(call.output) if grad is None else grad
        parts = []
        with torch.no_grad():
            for layer, names in plan.ghost.items():
                pairs = [(call.input, call.grad) for call in self._calls[layer]]
                parts.extend(self._rules[layer].sq_norms(layer, pairs, names).values())
            for owners in plan.shared:
                grad = None
                for layer, name in owners:
                    pairs = [(call.input, call.grad) for call in self._calls[layer]]
                    part = self._rules[layer].grads(layer, pairs, {name})[name]
                    grad = part if grad is None else grad + part
                parts.append(grad.flatten(1).pow(2).sum(1))
            if parts:
                sq_norms += torch.stack(parts).to(torch.float64).sum(0)
        if plan.general:
            sq_norms += self._general_sq_norms(inputs, target, plan.general)
        for calls_of_layer in self._calls.values():
            for call in calls_of_layer:
                call.grad = None
        return sq_norms

    def _plan(self, uses, n):
        """Split the used parameters into ghost, shared and general routes."""
        plan = _Plan()
        for key, owners in self._owners.items():
            n_uses = uses.get(key, 0)
            if n_uses == 0:
                continue
            if self._rule_covers(owners, n_uses, n):
                if len(owners) == 1:
                    layer, name = owners[0]
                    plan.ghost.setdefault(layer, set()).add(name)
                else:
                    plan.shared.append(owners)
                plan.layers.update(layer for layer, _ in owners)
            else:
                name, param = self._named[key]
                plan.general[name] = param
        return plan

    def _rule_covers(self, owners, n_uses, n):
        # A rule accounts for a parameter only if every use of it in the
        # graph is one recorded call of a layer holding it; any other use
        # (a parameter read directly in some forward, a call the hook could
        # not record) leaves it to the general route.
        recorded = 0
        for layer, name in owners:
            rule = self._rules.get(layer)
            if rule is None or name not in RULE_PARAMETERS or layer in self._not_per_sample:
                return False
            for call in self._calls.get(layer, ()):
                if call.input._version != call.input_version or call.output.shape[0] != n:
                    return False
                if not rule.accepts(layer, call.input, n):
                    return False
            recorded += len(self._calls.get(layer, ()))
        return recorded == n_uses

    def _check_per_sample(self, inputs, target):
        # The first sample's loss must only reach row 0 of every recorded
        # layer output. Otherwise dimension 0 is not the sample dimension
        # there (a sequence-first layout) or samples interact, and row i of
        # the summed loss's gradient is not sample i's own: such layers go
        # to the general route. A few samples show it as well as a batch.
        n = min(target.shape[0], _CHECK_SAMPLES)
        inputs = tree_map(lambda tensor: tensor[:n], inputs)
        output = self._forward_recorded(inputs)
        check_class_outputs(output, target[:n], self.kind)
        first_loss = self.loss(output, target[:n])[0]
        calls = [(layer, call) for layer, calls in self._calls.items() for call in calls]
        if not calls or not first_loss.requires_grad:
            return
        grads = torch.autograd.grad(
            first_loss, [call.output for _, call in calls], allow_unused=True
        )
        for (layer, call), grad in zip(calls, grads):
            if call.output.shape[0] != n or (grad is not None and bool(grad[1:].ne(0).any())):
                self._not_per_sample.add(layer)

    def _general_sq_norms(self, inputs, target, params):
        """Exact squared norms for ``params`` from per-sample gradients of the whole network."""
        detached = {name: param.detach() for name, param in params.items()}

        def sample_loss(values, sample_inputs, sample_target):
            one = tree_map(lambda tensor: tensor.unsqueeze(0), sample_inputs)
            if isinstance(one, Mapping):
                output = torch.func.functional_call(self.module, values, (), one)
            else:
                output = torch.func.functional_call(self.module, values, (one,))
            return self.loss(output, sample_target.unsqueeze(0)).sum()

        try:
            grads = torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0))(
                detached, inputs, target
            )
            sq_norms = sum(grad.flatten(1).pow(2).sum(1) for grad in grads.values())
        except (RuntimeError, NotImplementedError):
            # Some operations have no vmap rule; a per-sample loop always works.
            sq_norms = self._loop_sq_norms(inputs, target, list(params.values()))
        return sq_norms.detach().to(torch.float64)

    def _loop_sq_norms(self, inputs, target, params):
        sq_norms = []
        for i in range(target.shape[0]):
            one = tree_map(lambda tensor: tensor[i:i + 1], inputs)
            loss = self.loss(forward(self.module, one), target[i:i + 1]).sum()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            zero = torch.zeros((), dtype=loss.dtype, device=loss.device)
            sq_norms.append(sum((g.pow(2).sum() for g in grads if g is not None), zero))
        return torch.stack(sq_norms)


class _Plan:
    """Which route computes each used parameter's share of the norms."""

    def __init__(self):
        self.ghost = {}  # layer -> names of its unshared parameters
        self.shared = []  # [(layer, name), ...] per parameter held by several layers
        self.general = {}  # name in the module -> parameter
        self.layers = set()  # layers whose output gradients the first two routes need


def _parameter_uses(grad_fn):
    """How many graph operations read each leaf tensor (by ``id``), back from ``grad_fn``."""
    uses = defaultdict(int)
    seen = {grad_fn}
    stack = [grad_fn]
    while stack:
        node = stack.pop()
        for next_node, _ in node.next_functions:
            if next_node is None:
                continue
            variable = getattr(next_node, "variable", None)
            if variable is not None:
                uses[id(variable)] += 1
            elif next_node not in seen:
                seen.add(next_node)
                stack.append(next_node)
    return uses
