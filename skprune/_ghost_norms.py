"""Per-sample parameter gradients of single layers, from what the layer saw.

When per-sample losses are summed, row ``i`` of the gradient with respect to
a layer's output is the gradient of sample ``i``'s own loss (as long as the
network treats samples independently). Each sample's gradient with respect to
the layer's parameters then follows from that row and the layer's input row
``i`` alone, so no backward pass through the parameters is needed, and for
Linear, Conv and Embedding layers not even the per-sample gradients
themselves: only their squared norms ("ghost norms").

A rule receives the layer, the list of its calls as ``(input, output_grad)``
pairs (a layer called several times has several), and the names of the
parameters wanted. :meth:`LayerRule.sq_norms` returns one squared norm per
sample and parameter; :meth:`LayerRule.grads` the per-sample gradients
themselves, which a caller needs when one parameter is shared by several
layers (their contributions add up before the norm is taken).
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


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
        return {
            name: grad.flatten(1).pow(2).sum(1)
            for name, grad in self.grads(layer, calls, names).items()
        }


def outer_sum_sq_norms(a, g):
    """Squared Frobenius norms of ``sum_t g[..., t] a[..., t]^T``, summed over groups.

    ``a`` has shape ``(n, groups, d_a, T)`` and ``g`` ``(n, groups, d_g, T)``:
    the gradient of a weight applied at ``T`` positions (sequence steps,
    convolution windows, repeated calls) is that sum of outer products. Of
    the two exact routes, the cheaper one is taken: the Gram form
    ``sum_{t,s} (a_t . a_s)(g_t . g_s)`` costs ``T^2 (d_a + d_g)`` per
    sample and group, forming the gradient ``T d_a d_g``.
    """
    positions, d_a, d_g = a.shape[3], a.shape[2], g.shape[2]
    if positions == 1:
        return (a.pow(2).sum((2, 3)) * g.pow(2).sum((2, 3))).sum(1)
    if positions * positions * (d_a + d_g) < (positions + 1) * d_a * d_g:
        gram_a = torch.matmul(a.mT, a)
        gram_g = torch.matmul(g.mT, g)
        return (gram_a * gram_g).sum((1, 2, 3))
    return torch.matmul(g, a.mT).pow(2).sum((1, 2, 3))


def _concat_positions(tensors):
    # A layer called several times contributes like one call over all the
    # positions of all calls; avoid the copy in the usual single-call case.
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=-1)


class LinearRule(LayerRule):
    """``nn.Linear`` on inputs of shape ``(n, ..., in_features)``."""

    @staticmethod
    def _positions(calls):
        # (n, 1 group, features, positions); every middle dimension is a position.
        n = calls[0][0].shape[0]
        a = _concat_positions([x.reshape(n, -1, x.shape[-1]).mT.unsqueeze(1) for x, _ in calls])
        g = _concat_positions([g.reshape(n, -1, g.shape[-1]).mT.unsqueeze(1) for _, g in calls])
        return a, g

    def sq_norms(self, layer, calls, names):
        if len(calls) == 1 and calls[0][0].dim() == 2:
            # One position per sample: the gradient g a^T has norm |g| |a|.
            x, g = calls[0]
            g_sq = g.pow(2).sum(1)
            norms = {"weight": x.pow(2).sum(1) * g_sq} if "weight" in names else {}
            if "bias" in names:
                norms["bias"] = g_sq
            return norms
        a, g = self._positions(calls)
        norms = {}
        if "weight" in names:
            norms["weight"] = outer_sum_sq_norms(a, g)
        if "bias" in names:
            norms["bias"] = g.sum(3).pow(2).sum((1, 2))
        return norms

    def grads(self, layer, calls, names):
        a, g = self._positions(calls)
        grads = {}
        if "weight" in names:
            grads["weight"] = torch.matmul(g, a.mT).squeeze(1)
        if "bias" in names:
            grads["bias"] = g.sum(3).squeeze(1)
        return grads


class ConvRule(LayerRule):
    """``nn.Conv1d`` and ``nn.Conv2d`` (any padding mode, stride, dilation, groups)."""

    def __init__(self, spatial_dims):
        self.spatial_dims = spatial_dims

    def accepts(self, layer, x, n):
        return super().accepts(layer, x, n) and x.dim() == self.spatial_dims + 2

    def _padded(self, layer, x):
        """The input as the convolution reads it, and the padding still to apply."""
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            # The layer pads explicitly (reflect, circular, or asymmetric "same").
            mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
            x = F.pad(x, layer._reversed_padding_repeated_twice, mode=mode)
            return x, (0,) * self.spatial_dims
        return x, layer.padding

    def _patches(self, layer, x):
        """Input windows of shape ``(n, groups, in_channels / groups * kernel, L)``."""
        x, padding = self._padded(layer, x)
        kernel, stride, dilation = layer.kernel_size, layer.stride, layer.dilation
        if self.spatial_dims == 1:
            # unfold is 2-D only: a 1-D signal is an image of height 1.
            x = x.unsqueeze(2)
            kernel, stride = (1, kernel[0]), (1, stride[0])
            dilation, padding = (1, dilation[0]), (0, padding[0])
        patches = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
        return patches.view(x.shape[0], layer.groups, -1, patches.shape[-1])

    def _weight_grads(self, layer, calls):
        # Every sample's weight gradient at once: a convolution's weight
        # gradient with the batch folded into the channels and one group per
        # sample (and per layer group), computed by torch's own conv kernels.
        weight_grad = nn.grad.conv1d_weight if self.spatial_dims == 1 else nn.grad.conv2d_weight
        total = None
        for x, g in calls:
            n = x.shape[0]
            x, padding = self._padded(layer, x)
            grads = weight_grad(
                x.reshape(1, -1, *x.shape[2:]),
                (n * layer.out_channels, *layer.weight.shape[1:]),
                g.reshape(1, -1, *g.shape[2:]),
                stride=layer.stride, padding=padding, dilation=layer.dilation,
                groups=n * layer.groups,
            ).view(n, *layer.weight.shape)
            total = grads if total is None else total + grads
        return total

    def sq_norms(self, layer, calls, names):
        n, groups = calls[0][0].shape[0], layer.groups
        norms = {}
        if "weight" in names:
            positions = sum(g[0].numel() for _, g in calls) // layer.out_channels
            d_a = layer.weight[0].numel()
            d_g = layer.out_channels // groups
            if positions * positions * (d_a + d_g) < (positions + 1) * d_a * d_g:
                a = _concat_positions([self._patches(layer, x) for x, _ in calls])
                g = _concat_positions([g.reshape(n, groups, d_g, -1) for _, g in calls])
                norms["weight"] = outer_sum_sq_norms(a, g)
            else:
                norms["weight"] = self._weight_grads(layer, calls).flatten(1).pow(2).sum(1)
        if "bias" in names:
            norms["bias"] = self._bias_grads(calls).pow(2).sum(1)
        return norms

    @staticmethod
    def _bias_grads(calls):
        return sum(g.flatten(2).sum(2) for _, g in calls)

    def grads(self, layer, calls, names):
        grads = {}
        if "weight" in names:
            grads["weight"] = self._weight_grads(layer, calls)
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
            normalized = (x - layer.running_mean.view(shape)) * torch.rsqrt(
                layer.running_var.view(shape) + layer.eps
            )
            per_call.append(_affine_grads(normalized, g, tuple(range(2, x.dim())), names))
        return _sum_calls(per_call)


class LayerNormRule(LayerRule):
    """Layer norm over the trailing ``normalized_shape`` dimensions."""

    def accepts(self, layer, x, n):
        return super().accepts(layer, x, n) and x.dim() > len(layer.normalized_shape)

    def grads(self, layer, calls, names):
        per_call = []
        for x, g in calls:
            normalized_dims = tuple(range(x.dim() - len(layer.normalized_shape), x.dim()))
            mean = x.mean(normalized_dims, keepdim=True)
            var = x.var(normalized_dims, unbiased=False, keepdim=True)
            normalized = (x - mean) * torch.rsqrt(var + layer.eps)
            reduce_dims = tuple(range(1, x.dim() - len(layer.normalized_shape)))
            per_call.append(_affine_grads(normalized, g, reduce_dims, names))
        return _sum_calls(per_call)


class GroupNormRule(LayerRule):
    """Group norm: per-channel affine map of the per-sample, per-group z-score."""

    def grads(self, layer, calls, names):
        per_call = []
        for x, g in calls:
            grouped = x.reshape(x.shape[0], layer.num_groups, -1)
            mean = grouped.mean(2, keepdim=True)
            var = grouped.var(2, unbiased=False, keepdim=True)
            normalized = ((grouped - mean) * torch.rsqrt(var + layer.eps)).view_as(x)
            per_call.append(_affine_grads(normalized, g, tuple(range(2, x.dim())), names))
        return _sum_calls(per_call)


#: Layer classes with a rule. A subclass only qualifies if it keeps the
#: class's ``forward``: a rule reproduces that exact computation.
_RULES = (
    (nn.Linear, LinearRule()),
    (nn.Conv1d, ConvRule(1)),
    (nn.Conv2d, ConvRule(2)),
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
