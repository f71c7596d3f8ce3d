"""Per-sample parameter gradients of single layers, from what the layer saw.

When per-sample losses are summed, row ``i`` of the gradient with respect to
a layer's output is the gradient of sample ``i``'s own loss (as long as the
network treats samples independently). Each sample's gradient with respect to
the layer's parameters then follows from that row and the layer's input row
``i`` alone, so no backward pass through the parameters is needed, and for
Linear, Conv and Embedding layers not even the per-sample gradients
themselves: only their squared norms ("ghost norms"). How the norms of a
weight applied at many positions (a convolution's windows, a sequence's
steps) are computed is in :mod:`skprune._weight_routes`.

A rule receives the layer, the list of its calls as ``(input, output_grad)``
pairs (a layer called several times has several), and the names of the
parameters wanted. :meth:`LayerRule.sq_norms` returns one squared norm per
sample and parameter; :meth:`LayerRule.grads` the per-sample gradients
themselves, which a caller needs when one parameter is shared by several
layers (their contributions add up before the norm is taken).
"""

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._weight_routes import (
    concat_positions,
    conv_weight_grads,
    conv_weight_sq_norms,
    outer_grads,
    sq_norms,
    weight_sq_norms,
)


class LayerRule:
    """How one kind of layer turns its inputs and output gradients into gradients."""

    def accepts(self, layer, x, n):
        """Whether input ``x`` has a layout this rule handles, with ``n`` samples first."""
        return isinstance(x, torch.Tensor) and x.dim() >= 2 and x.shape[0] == n

    def grads(self, layer, calls, names):
        """Per-sample gradients: ``{name: tensor of shape (n, *param.shape)}``."""
        raise NotImplementedError

    def sq_norms(self, layer, calls, names):
        """Per-sample squared gradient norms: ``{name: tensor of shape (n,)}``."""
        return {name: sq_norms(grad) for name, grad in self.grads(layer, calls, names).items()}


class LinearRule(LayerRule):
    """``nn.Linear`` on inputs of shape ``(n, ..., in_features)``."""

    @staticmethod
    def _positions(calls):
        # (n, 1 group, features, positions); every middle dimension is a position.
        n = calls[0][0].shape[0]
        a = concat_positions([x.reshape(n, -1, x.shape[-1]).mT.unsqueeze(1) for x, _ in calls])
        g = concat_positions([g.reshape(n, -1, g.shape[-1]).mT.unsqueeze(1) for _, g in calls])
        return a, g

    def sq_norms(self, layer, calls, names):
        if len(calls) == 1 and calls[0][0].dim() == 2:
            # One position per sample: the gradient g a^T has norm |g| |a|.
            x, g = calls[0]
            g_sq = sq_norms(g)
            norms = {"weight": sq_norms(x) * g_sq} if "weight" in names else {}
            if "bias" in names:
                norms["bias"] = g_sq
            return norms
        a, g = self._positions(calls)
        norms = {}
        if "weight" in names:
            norms["weight"] = weight_sq_norms(a, g)
        if "bias" in names:
            norms["bias"] = sq_norms(g.sum(3))
        return norms

    def grads(self, layer, calls, names):
        a, g = self._positions(calls)
        grads = {}
        if "weight" in names:
            grads["weight"] = outer_grads(a, g).squeeze(1)
        if "bias" in names:
            grads["bias"] = g.sum(3).squeeze(1)
        return grads


class ConvRule(LayerRule):
    """``nn.Conv1d``, ``Conv2d`` and ``Conv3d`` (any padding mode, stride, dilation, groups).

    The weight's norms take the cheapest of the routes of
    :mod:`skprune._weight_routes`, chosen from the layer's shapes.
    """

    def __init__(self, spatial_dims):
        self.spatial_dims = spatial_dims

    def accepts(self, layer, x, n):
        return super().accepts(layer, x, n) and x.dim() == self.spatial_dims + 2

    def sq_norms(self, layer, calls, names):
        norms = {}
        if "weight" in names:
            norms["weight"] = conv_weight_sq_norms(layer, calls)
        if "bias" in names:
            norms["bias"] = sq_norms(self._bias_grads(calls))
        return norms

    @staticmethod
    def _bias_grads(calls):
        return sum(g.flatten(2).sum(2) for _, g in calls)

    def grads(self, layer, calls, names):
        grads = {}
        if "weight" in names:
            grads["weight"] = conv_weight_grads(layer, calls)
        if "bias" in names:
            grads["bias"] = self._bias_grads(calls)
        return grads


class EmbeddingRule(LayerRule):
    """``nn.Embedding``: a sample's gradient adds its output-gradient rows per token.

    The gradient of row ``v`` of the table is the sum of the output gradients
    at the positions where the sample looks up ``v``, so only the rows a
    sample uses are formed (``padding_idx`` rows get no gradient;
    ``scale_grad_by_freq`` divides by the count within each call of the
    sample, as a batch of that sample alone would).
    """

    def accepts(self, layer, x, n):
        return (
            isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[0] == n
            and not x.is_floating_point()
        )

    def _rows(self, layer, calls):
        """Flat keys ``sample * num_embeddings + token`` and their gradient rows."""
        n, vocabulary = calls[0][0].shape[0], layer.num_embeddings
        keys, rows = [], []
        offsets = torch.arange(n, device=calls[0][0].device).unsqueeze(1) * vocabulary
        for x, g in calls:
            key = (x.reshape(n, -1).long() + offsets).flatten()
            g = g.reshape(key.shape[0], -1)
            if layer.padding_idx is not None:
                g = g * (x.reshape(-1) != layer.padding_idx).unsqueeze(1).to(g.dtype)
            if layer.scale_grad_by_freq:
                _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
                g = g / counts[inverse].unsqueeze(1).to(g.dtype)
            keys.append(key)
            rows.append(g)
        key, g = torch.cat(keys), torch.cat(rows)
        unique, inverse = torch.unique(key, return_inverse=True)
        summed = g.new_zeros(unique.shape[0], g.shape[1]).index_add_(0, inverse, g)
        return unique, summed

    def sq_norms(self, layer, calls, names):
        if "weight" not in names:
            return {}
        n = calls[0][0].shape[0]
        keys, rows = self._rows(layer, calls)
        samples = torch.div(keys, layer.num_embeddings, rounding_mode="floor")
        norms = rows.new_zeros(n).index_add_(0, samples, rows.pow(2).sum(1))
        return {"weight": norms}

    def grads(self, layer, calls, names):
        if "weight" not in names:
            return {}
        n = calls[0][0].shape[0]
        keys, rows = self._rows(layer, calls)
        table = rows.new_zeros(n * layer.num_embeddings, layer.embedding_dim)
        return {"weight": table.index_add_(0, keys, rows).view(n, *layer.weight.shape)}


def _affine_grads(normalized, g, reduce_dims, names):
    # Per-sample gradients of an elementwise affine map y = w * x_hat + b.
    grads = {}
    if "weight" in names:
        grads["weight"] = (g * normalized).sum(reduce_dims) if reduce_dims else g * normalized
    if "bias" in names:
        grads["bias"] = g.sum(reduce_dims) if reduce_dims else g
    return grads


def _channel_affine_grads(centered, g, names, scale=None):
    # The same map with one weight per channel of an (n, channels, ...) input,
    # x_hat = centered * scale: the per-channel scale, if any, is applied to
    # the per-channel sums rather than to the whole activation.
    n, channels = g.shape[:2]
    scale = 1 if scale is None else scale.view(1, channels)
    if centered.dim() == 2:
        return _affine_grads(centered * scale, g, (), names)
    grads = {}
    if "weight" in names:
        # A batched dot product over the positions: one operation, where a
        # product and a sum are two passes over the whole activation.
        dots = torch.bmm(g.reshape(n * channels, 1, -1), centered.reshape(n * channels, -1, 1))
        grads["weight"] = dots.view(n, channels) * scale
    if "bias" in names:
        grads["bias"] = g.reshape(n, channels, -1).sum(2)
    return grads


def _sum_calls(per_call):
    total = per_call[0]
    for grads in per_call[1:]:
        total = {name: total[name] + grads[name] for name in total}
    return total


class BatchNormRule(LayerRule):
    """Batch norm in eval mode: a per-channel affine map of the running-statistics z-score."""

    def grads(self, layer, calls, names):
        per_call = []
        for x, g in calls:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            scale = torch.rsqrt(layer.running_var + layer.eps)
            # x - mean first: exact even when the mean dwarfs the spread.
            centered = x - layer.running_mean.view(shape)
            per_call.append(_channel_affine_grads(centered, g, names, scale))
        return _sum_calls(per_call)


class LayerNormRule(LayerRule):
    """Layer norm over the trailing ``normalized_shape`` dimensions."""

    def accepts(self, layer, x, n):
        return super().accepts(layer, x, n) and x.dim() > len(layer.normalized_shape)

    def grads(self, layer, calls, names):
        per_call = []
        for x, g in calls:
            normalized_dims = tuple(range(x.dim() - len(layer.normalized_shape), x.dim()))
            var, mean = torch.var_mean(x, normalized_dims, unbiased=False, keepdim=True)
            normalized = (x - mean).mul_(torch.rsqrt(var + layer.eps))
            reduce_dims = tuple(range(1, x.dim() - len(layer.normalized_shape)))
            per_call.append(_affine_grads(normalized, g, reduce_dims, names))
        return _sum_calls(per_call)


class GroupNormRule(LayerRule):
    """Group norm: per-channel affine map of the per-sample, per-group z-score."""

    def grads(self, layer, calls, names):
        per_call = []
        for x, g in calls:
            grouped = x.reshape(x.shape[0], layer.num_groups, -1)
            var, mean = torch.var_mean(grouped, 2, unbiased=False, keepdim=True)
            normalized = (grouped - mean).mul_(torch.rsqrt(var + layer.eps)).view_as(x)
            per_call.append(_channel_affine_grads(normalized, g, names))
        return _sum_calls(per_call)


#: Layer classes with a rule. A subclass only qualifies if it keeps the
#: class's ``forward``: a rule reproduces that exact computation.
_RULES = (
    (nn.Linear, LinearRule()),
    (nn.Conv1d, ConvRule(1)),
    (nn.Conv2d, ConvRule(2)),
    (nn.Conv3d, ConvRule(3)),
    (_BatchNorm, BatchNormRule()),
    (nn.LayerNorm, LayerNormRule()),
    (nn.GroupNorm, GroupNormRule()),
    (nn.Embedding, EmbeddingRule()),
)

#: The parameter names every rule knows; any other direct parameter of a
#: layer (e.g. from the old ``weight_norm``) is left to the general route.
RULE_PARAMETERS = frozenset({"weight", "bias"})


def rule_for(layer):
    """The :class:`LayerRule` for ``layer``, or ``None`` when it has none."""
    for cls, rule in _RULES:
        if isinstance(layer, cls) and type(layer).forward is cls.forward:
            return rule
    return None
