"""Norm rules of the normalization layers: batch norm (eval mode), layer norm, group norm.

Each is an elementwise affine map ``y = weight * x_hat + bias`` of a
normalized input ``x_hat``, so a sample's gradients are sums over positions
of ``g * x_hat`` and of ``g``.
"""

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._registry import NormRule, register_norm_rule


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
        dots = torch.linalg.vecdot(g.reshape(n, channels, -1), centered.reshape(n, channels, -1))
        grads["weight"] = dots * scale
    if "bias" in names:
        grads["bias"] = g.reshape(n, channels, -1).sum(2)
    return grads


def _sum_calls(per_call):
    total = per_call[0]
    for grads in per_call[1:]:
        total = {name: total[name] + grads[name] for name in total}
    return total


@register_norm_rule(_BatchNorm)
class BatchNormRule(NormRule):
    """Batch norm in eval mode: a per-channel affine map of the running-statistics z-score.

    The batch is folded into the channels, so that torch's own batch-norm
    backward kernel, in eval mode, gives every sample's per-channel sums in
    one pass over the activation (computing ``x - running_mean`` first, so
    exact even when the mean dwarfs the spread).
    """

    def grads(self, layer, calls, names):
        per_call = []
        for x, g in calls:
            try:
                per_call.append(self._folded_grads(layer, x, g, names))
            except (RuntimeError, NotImplementedError):
                # A device or dtype without that kernel: the same sums, unfused.
                shape = (1, -1) + (1,) * (x.dim() - 2)
                scale = torch.rsqrt(layer.running_var + layer.eps)
                centered = x - layer.running_mean.view(shape)
                per_call.append(_channel_affine_grads(centered, g, names, scale))
        return _sum_calls(per_call)

    @staticmethod
    def _folded_grads(layer, x, g, names):
        n, channels = x.shape[:2]
        folded = (1, n * channels, -1)
        _, weight, bias = torch.ops.aten.native_batch_norm_backward(
            g.reshape(folded), x.reshape(folded), None,
            layer.running_mean.repeat(n), layer.running_var.repeat(n), None, None,
            False, layer.eps, [False, "weight" in names, "bias" in names],
        )
        grads = {}
        if "weight" in names:
            grads["weight"] = weight.view(n, channels)
        if "bias" in names:
            grads["bias"] = bias.view(n, channels)
        return grads


@register_norm_rule(nn.LayerNorm)
class LayerNormRule(NormRule):
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


@register_norm_rule(nn.GroupNorm)
class GroupNormRule(NormRule):
    """Group norm: per-channel affine map of the per-sample, per-group z-score."""

    def grads(self, layer, calls, names):
        per_call = []
        for x, g in calls:
            grouped = x.reshape(x.shape[0], layer.num_groups, -1)
            var, mean = torch.var_mean(grouped, 2, unbiased=False, keepdim=True)
            normalized = (grouped - mean).mul_(torch.rsqrt(var + layer.eps)).view_as(x)
            per_call.append(_channel_affine_grads(normalized, g, names))
        return _sum_calls(per_call)
