"""The engine behind :func:`skprune.per_sample_grad_norms`: hooks, checks, general route.

Per batch, one forward pass records the input of every layer that has a norm
rule (:mod:`skprune.gradients._registry`), and one backward pass of the summed per-sample
losses gives the gradients with respect to those layers' outputs, never with
respect to the parameters. A rule turns each layer's (input, output
gradient) pairs into its parameters' per-sample squared norms.

Those gradients are sample ``i``'s own only where the network treats samples
independently and the hooks saw every use of a parameter. :class:`_GhostNorms`
checks both: the first batch's layout check sends layers whose samples
interact to the general route, and a parameter used in any way other than
through recorded calls of its layers (read directly, tied across layers that
are not all recorded) goes there too. The general route computes exact
per-sample gradients of the whole network for just those parameters, with
``torch.func.vmap(grad)``, or a per-sample loop where ``vmap`` fails.
"""

import contextlib
from collections import defaultdict
from collections.abc import Mapping

import torch
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parameter import is_lazy
from torch.utils._pytree import tree_map

from ..utils._modules import check_class_outputs, forward
from ._registry import rule_for
from ._routes import sq_norms as row_sq_norms

#: Samples the first batch's layout check runs on.
_CHECK_SAMPLES = 4
#: A first batch of at most this many samples is checked on its own graph.
_IN_GRAPH_CHECK = 2 * _CHECK_SAMPLES


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
        self._probes = None
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
        if self._probes is not None:
            # A probed pass hands every output downstream as a copy and
            # watches the copies: one modified in place marks a layer whose
            # output must be copied, found without running again.
            copy = output.clone()
            self._probes.append((layer, copy, copy._version))
            return copy
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
        n = target.shape[0]
        # A first batch of a few samples is checked on its own graph: a
        # separate pass over some of them would cost about as much.
        check_in_graph = first and 1 < n <= _IN_GRAPH_CHECK
        if first:
            self._set_up_module(inputs)
            if n > _IN_GRAPH_CHECK:
                with _one_cpu_thread(target.device):
                    self._check_per_sample(inputs, target)
        output = (self._probed_forward(inputs) if check_in_graph
                  else self._forward_recorded(inputs))
        check_class_outputs(output, target, self.kind, warn_probabilities=first)
        losses = self.loss(output, target)
        if check_in_graph:
            self._check_rows(losses[0], n, retain_graph=True)
        sq_norms = torch.zeros(n, dtype=torch.float64, device=target.device)
        total = losses.sum()
        self.plan = _Plan()
        if not total.requires_grad:
            return sq_norms
        uses = _parameter_uses(total.grad_fn)
        plan = self.plan = self._plan(uses, n)

        calls = [call for layer in plan.layers for call in self._calls[layer]]
        if calls:
            grads = torch.autograd.grad(
                total, [call.output for call in calls], allow_unused=True
            )
            for call, grad in zip(calls, grads, strict=True):
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
                parts.append(row_sq_norms(grad))
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
            if rule is None or name not in rule.parameters or layer in self._not_per_sample:
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
        output = self._probed_forward(inputs)
        check_class_outputs(output, target[:n], self.kind)
        self._check_rows(self.loss(output, target[:n])[0], n, retain_graph=False)

    def _probed_forward(self, inputs):
        """A recorded forward pass that also finds the layers whose outputs are modified in place.

        Every recorded output goes downstream as a copy, and the copies are
        watched: one modified in place marks a layer whose output must be
        copied from then on.
        """
        self._probes = []
        try:
            output = self._forward_recorded(inputs)
        finally:
            probes, self._probes = self._probes, None
        self._copy_output.update(
            layer for layer, copy, version in probes if copy._version != version
        )
        return output

    def _check_rows(self, first_loss, n, retain_graph):
        """Send to the general route every layer whose rows but row 0 reach ``first_loss``."""
        calls = [(layer, call) for layer, calls in self._calls.items() for call in calls]
        if not calls or not first_loss.requires_grad:
            return
        grads = torch.autograd.grad(
            first_loss, [call.output for _, call in calls], allow_unused=True,
            retain_graph=retain_graph,
        )
        for (layer, call), grad in zip(calls, grads, strict=True):
            if call.output.shape[0] != n or (grad is not None and bool(grad[1:].any())):
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
            sq_norms = sum(row_sq_norms(grad) for grad in grads.values())
        except (RuntimeError, NotImplementedError):
            # Some operations have no vmap rule; a per-sample loop always works.
            sq_norms = self._loop_sq_norms(inputs, target, list(params.values()))
        return sq_norms.detach().to(torch.float64)

    def _loop_sq_norms(self, inputs, target, params):
        sq_norms = []
        for i in range(target.shape[0]):
            one = tree_map(lambda tensor, i=i: tensor[i:i + 1], inputs)
            loss = self.loss(forward(self.module, one), target[i:i + 1]).sum()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            zero = torch.zeros((), dtype=loss.dtype, device=loss.device)
            sq_norms.append(sum((g.pow(2).sum() for g in grads if g is not None), zero))
        return torch.stack(sq_norms)


@contextlib.contextmanager
def _one_cpu_thread(device):
    """Inside, torch's CPU operations run on one thread (the layout check's few samples).

    Threads do not speed up operations on a few samples, and when other
    processes share the cores every multi-threaded operation waits for all
    its threads to be scheduled: for the check's many tiny operations, tens
    to hundreds of milliseconds.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
