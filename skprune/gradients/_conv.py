"""Norm rule of ``nn.Conv1d``, ``Conv2d`` and ``Conv3d``, and the routes of a convolution's weight.

A convolution applies its weight at every window of its input; one sample's
weight gradient is ``sum_t g_t a_t^T`` over the windows ``t`` (per group).
Its squared norm has five exact routes, the first two of
:mod:`skprune.gradients._routes` on the gathered windows, and three that
read the input in place:

``"gram"``
    The Gram form, on the input windows gathered into a matrix (strided
    views, copied once).
``"outer"``
    Each sample's gradient formed by one batched matrix product of its
    output gradient and gathered windows.
``"grouped"``
    torch's convolution weight-gradient kernel with the batch folded into
    the groups. Reads the input in place; cheap for grouped convolutions
    with few channels per group (depthwise), where gathered windows would
    outnumber the multiply-adds.
``"shifted"``
    For stride 1: the padded input, flattened, holds the window entries of
    kernel offset ``o`` at every position as one contiguous slice shifted by
    ``o``, once the output gradient is laid out on the padded map's grid
    (zeros where the grid has no output). One batched matrix product per
    kernel offset, with no window gathered.
``"pixel_gram"``
    The Gram form without gathering windows: two windows' dot product
    ``a_t . a_s`` is the sum, over the kernel offsets ``o``, of the dot
    products of the input pixels at ``t + o`` and ``s + o``, so the products
    of every pair of (padded) input pixels, taken once, give all of them by
    strided slices. Cheap for many channels on small maps (the deep layers
    of VGG and ResNet), where it needs about ``1 / kernel size`` of the
    Gram route's multiply-adds. For layers called once per batch.

The fastest is measured once per layer shape
(:mod:`skprune.gradients._autotune`); :func:`conv_route_costs`, the shape
model, orders the candidates and leaves out hopeless ones. It ranks only
the routes it knows (those of earlier versions): ``"gram"``, ``"outer"``,
and ``"grouped"`` for grouped convolutions. For an ungrouped convolution
``"grouped"`` is a ``batch``-group convolution unlike any the layer itself
runs, often the fastest route (oneDNN reads the input in place), but
executed very slowly for some shapes (many channels on tiny maps); the
shifted route's many small products are fast or slow depending on the
library's kernels. These and the pixel Gram route are taken when measured,
or when forced.
"""

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ._autotune import Route, route_key, run_route
from ._registry import NormRule, register_norm_rule
from ._routes import (
    ELEMENT_COST,
    GATHER_COST,
    concat_positions,
    gram_sq_norms,
    outer_grads,
    route_costs,
    sq_norms,
    with_launches,
)

_WEIGHT_GRAD = {1: nn.grad.conv1d_weight, 2: nn.grad.conv2d_weight, 3: nn.grad.conv3d_weight}
#: The routes that form per-sample gradients (the others only give norms).
GRADIENT_ROUTES = ("outer", "grouped")


@register_norm_rule(nn.Conv1d, nn.Conv2d, nn.Conv3d)
class ConvRule(NormRule):
    """Convolutions, with any padding mode, stride, dilation and groups.

    The weight's norms take the fastest of the routes of
    :mod:`skprune.gradients._conv`.
    """

    def accepts(self, layer, x, n):
        return super().accepts(layer, x, n) and x.dim() == len(layer.kernel_size) + 2

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


def conv_route_costs(layer, calls):
    """The shape model: ``{route: (cost, chunk)}`` for every route that applies.

    Takes the layer and its recorded ``(input, output_grad)`` calls; costs
    are in multiply-add units (see :func:`skprune.gradients._routes.route_costs`).
    """
    x = calls[0][0]
    n, kernel = x.shape[0], math.prod(layer.kernel_size)
    fan_in = layer.in_channels // layer.groups * kernel
    fan_out = layer.out_channels // layer.groups
    positions = sum(g[0].numel() for _, g in calls) // layer.out_channels
    costs = route_costs(
        n, layer.groups, fan_in, fan_out, positions, gather=not _windows_are_input(layer),
        input_size=x[0].numel(), itemsize=x.element_size(),
    )
    if _shifts_apply(layer):
        padded = sum(math.prod(_padded_shape(layer, x)) for x, _ in calls)
        span = sum(_span(layer, x, g) for x, g in calls)
        grads = n * layer.groups * fan_in * fan_out
        products = n * layer.groups * fan_in * fan_out * span
        # The padded input and the gradient on its grid, copied once; the
        # per-offset gradients, written and read back.
        elements = n * layer.in_channels * padded + n * layer.out_channels * span + grads
        launches = 3 + kernel * len(calls)
        costs["shifted"] = with_launches(
            products + ELEMENT_COST * elements, launches, n, elements * x.element_size()
        )
    if len(calls) == 1:
        pixels = math.prod(_padded_shape(layer, x))
        per_group = n * layer.groups
        grams = per_group * (pixels * pixels + 2 * positions * positions)
        products = per_group * (pixels * pixels * layer.in_channels // layer.groups
                                + positions * positions * (fan_out + 1))
        # Every pixel pair's product written once; the windows' products
        # summed from strided slices, one per kernel offset of each
        # dimension, which the cache serves as poorly as a gather.
        offsets = sum(layer.kernel_size)
        elements = grams + per_group * offsets * pixels * positions
        costs["pixel_gram"] = with_launches(
            products + GATHER_COST * elements, 4 + offsets, n, grams * x.element_size()
        )
    return costs


def conv_weight_sq_norms(layer, calls):
    """Per-sample squared norms of a convolution's weight gradient, by the fastest route.

    Parameters
    ----------
    layer : torch.nn.Conv1d, Conv2d or Conv3d
    calls : list of (torch.Tensor, torch.Tensor)
        The layer's input and output gradient at each call, samples first.

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    costs = conv_route_costs(layer, calls)
    compute = {
        "gram": _gram_sq_norms,
        "outer": lambda layer, calls: sq_norms(_formed_grads(layer, calls, "outer", False)),
        "grouped": lambda layer, calls: sq_norms(_formed_grads(layer, calls, "grouped", False)),
        "shifted": _shifted_sq_norms,
        "pixel_gram": _pixel_gram_sq_norms,
    }
    routes = [
        Route(name, cost,
              lambda name=name, chunk=chunk: _in_chunks(compute[name], layer, calls, chunk),
              ranked=_ranked(layer, name))
        for name, (cost, chunk) in sorted(costs.items(), key=lambda item: item[1][0])
    ]
    return run_route(layer, _key("conv-norms", layer, calls), routes)


def conv_weight_grads(layer, calls):
    """Per-sample weight gradients of a convolution, of shape ``(n, *weight.shape)``.

    Takes the parameters of :func:`conv_weight_sq_norms`, by the fastest of
    the routes that form gradients (``"outer"`` and ``"grouped"``). The
    batch is not split into chunks: the caller keeps the whole result.
    """
    costs = conv_route_costs(layer, calls)
    routes = [
        Route(name, costs[name][0],
              lambda name=name: _formed_grads(layer, calls, name, weight_order=True),
              ranked=_ranked(layer, name))
        for name in sorted(GRADIENT_ROUTES, key=lambda name: costs[name][0])
    ]
    return run_route(layer, _key("conv-grads", layer, calls), routes)


def _ranked(layer, route):
    """Whether the shape model ranks ``route`` for ``layer`` (see the module's docstring)."""
    return route in ("gram", "outer") or (route == "grouped" and layer.groups > 1)


def _key(kind, layer, calls):
    hyper_parameters = (
        type(layer).__name__, layer.in_channels, layer.out_channels, layer.kernel_size,
        layer.stride, layer.padding, layer.dilation, layer.groups, layer.padding_mode,
    )
    return route_key(kind, hyper_parameters, [tensor for call in calls for tensor in call])


def _in_chunks(compute, layer, calls, chunk):
    n = calls[0][0].shape[0]
    if chunk >= n:
        return compute(layer, calls)
    return torch.cat([
        compute(layer, [(x[start:start + chunk], g[start:start + chunk]) for x, g in calls])
        for start in range(0, n, chunk)
    ])


def _gram_sq_norms(layer, calls):
    # One layout for every call: the Gram matrix pairs their windows.
    channels_last = _channels_last(layer, calls)
    n, groups = calls[0][0].shape[0], layer.groups
    a = concat_positions([_windows(layer, x, channels_last) for x, _ in calls])
    g = concat_positions([g.reshape(n, groups, -1, g[0, 0].numel()) for _, g in calls])
    return gram_sq_norms(a, g)


def _formed_grads(layer, calls, route, weight_order):
    """Per-sample weight gradients, entries in the weight's order only if ``weight_order``.

    The ``"outer"`` route with channels-last windows forms them as (kernel
    offset, channel); putting them back in the weight's (channel, kernel
    offset) order costs a copy of them all, which norms do not need.
    """
    channels_last = _channels_last(layer, calls)
    total = None
    for x, g in calls:
        n = x.shape[0]
        if route == "outer":
            a = _windows(layer, x, channels_last)
            grads = outer_grads(a, g.reshape(n, layer.groups, -1, g[0, 0].numel()))
            if channels_last and weight_order:
                grads = grads.view(n, layer.out_channels, *layer.kernel_size, -1).movedim(-1, 2)
            if weight_order:
                grads = grads.reshape(n, *layer.weight.shape)
        else:
            grads = _grouped_weight_grads(layer, x, g)
        total = grads if total is None else total + grads
    return total


def _windows_are_input(layer):
    return (
        all(k == 1 for k in layer.kernel_size) and all(s == 1 for s in layer.stride)
        and not any(layer._reversed_padding_repeated_twice)
    )


def _padded(layer, x):
    """The input with every padding the convolution applies; always exact."""
    padding = layer._reversed_padding_repeated_twice
    if not any(padding):
        return x
    mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
    return F.pad(x, padding, mode=mode)


def _channels_last(layer, calls):
    """Whether to gather the windows channel innermost, rather than map row innermost.

    A strided copy is fast when its innermost loop is long: along a row of
    the map for few channels on a large map, along the channels for many
    channels on a small map. Windows that are the input itself are not
    copied at all in the first order.
    """
    width = calls[0][1].shape[-1]  # of the output map
    return layer.in_channels // layer.groups >= 2 * width and not _windows_are_input(layer)


def _windows(layer, x, channels_last):
    """The input windows, of shape ``(n, groups, in_channels / groups * kernel, T)``.

    One strided view of the padded input, copied once (unless it is the
    input itself). Flattened as (channel, kernel offset), or as (kernel
    offset, channel) if ``channels_last``.
    """
    n, channels = x.shape[:2]
    per_group = channels // layer.groups
    kernel, stride, dilation = layer.kernel_size, layer.stride, layer.dilation
    padding = layer._reversed_padding_repeated_twice
    if channels_last and layer.padding_mode == "zeros":
        # Padded straight into channels-last order: the copy transposes too.
        x = F.pad(x.movedim(1, -1), (0, 0, *padding)).movedim(-1, 1)
    else:
        x = _padded(layer, x)
    out = [
        (length - step * (k - 1) - 1) // s + 1
        for length, k, s, step in zip(x.shape[2:], kernel, stride, dilation, strict=True)
    ]
    batch_stride, channel_stride, *strides = x.stride()
    offsets = [st * step for st, step in zip(strides, dilation, strict=True)]
    steps = [st * s for st, s in zip(strides, stride, strict=True)]
    if channels_last:
        view = x.as_strided(
            (n, layer.groups, *out, *kernel, per_group),
            (batch_stride, channel_stride * per_group, *steps, *offsets, channel_stride),
            x.storage_offset(),
        )
        return view.reshape(n, layer.groups, math.prod(out), -1).mT
    view = x.as_strided(
        (n, channels, *kernel, *out),
        (batch_stride, channel_stride, *offsets, *steps),
        x.storage_offset(),
    )
    return view.reshape(n, layer.groups, -1, math.prod(out))


def _grouped_weight_grads(layer, x, g):
    n = x.shape[0]
    if layer.padding_mode == "zeros" and not isinstance(layer.padding, str):
        padding = layer.padding  # the kernel pads, without a copy of the input
    else:
        x, padding = _padded(layer, x), 0
    weight_grad = _WEIGHT_GRAD[len(layer.kernel_size)]
    grads = weight_grad(
        x.reshape(1, -1, *x.shape[2:]),
        (n * layer.out_channels, *layer.weight.shape[1:]),
        g.reshape(1, -1, *g.shape[2:]),
        stride=layer.stride, padding=padding, dilation=layer.dilation,
        groups=n * layer.groups,
    )
    return grads.view(n, *layer.weight.shape)


# The shifted route ------------------------------------------------------------------


def _shifts_apply(layer):
    return all(s == 1 for s in layer.stride)


def _padded_shape(layer, x):
    padding = layer._reversed_padding_repeated_twice  # last dimension first
    dims = len(layer.kernel_size)
    return [
        size + padding[2 * (dims - 1 - d)] + padding[2 * (dims - 1 - d) + 1]
        for d, size in enumerate(x.shape[2:])
    ]


def _grid_strides(padded):
    """Strides of the padded map's dimensions in its flat layout."""
    return [math.prod(padded[d + 1:]) for d in range(len(padded))]


def _span(layer, x, g):
    """Grid positions from the first output to the last, in the padded map's flat layout."""
    strides = _grid_strides(_padded_shape(layer, x))
    return sum((size - 1) * stride for size, stride in zip(g.shape[2:], strides, strict=True)) + 1


def _shifted_sq_norms(layer, calls):
    """Squared norms by the ``"shifted"`` route (stride 1)."""
    n, groups = calls[0][0].shape[0], layer.groups
    kernel = layer.kernel_size
    # The per-sample gradient of every kernel offset, offset first, so that
    # each product writes one contiguous slice.
    grads = calls[0][0].new_empty(
        math.prod(kernel), n, groups, layer.out_channels // groups, layer.in_channels // groups
    )
    for number, (x, g) in enumerate(calls):
        flat = _padded(layer, x).contiguous().reshape(n, groups, layer.in_channels // groups, -1)
        padded = _padded_shape(layer, x)
        strides = _grid_strides(padded)
        span = _span(layer, x, g)
        # The output gradient on the padded map's grid: zeros right of (and
        # below) the outputs, then cut at the last output.
        grid = []
        for d in range(len(padded) - 1, 0, -1):
            grid += [0, padded[d] - g.shape[2 + d]]
        on_grid = F.pad(g, grid) if any(grid) else g
        on_grid = on_grid.reshape(n, groups, layer.out_channels // groups, -1)[..., :span]
        offsets = itertools.product(*(range(k) for k in kernel))
        for index, offset in enumerate(offsets):
            start = sum(o * step * stride
                        for o, step, stride in zip(offset, layer.dilation, strides, strict=True))
            windows = flat[..., start:start + span]
            if number == 0:
                torch.matmul(on_grid, windows.mT, out=grads[index])
            else:
                grads[index] += torch.matmul(on_grid, windows.mT)
    return torch.linalg.vector_norm(grads.view(grads.shape[0], n, -1), dim=(0, 2)).square()


# The pixel Gram route -------------------------------------------------------------


def _pixel_gram_sq_norms(layer, calls):
    """Squared norms by the ``"pixel_gram"`` route (one call)."""
    (x, g), = calls
    n, groups = x.shape[0], layer.groups
    padded = _padded(layer, x)
    spatial = padded.shape[2:]
    pixels = padded.reshape(n, groups, layer.in_channels // groups, -1)
    # The dot product of every pair of input pixels, over a group's channels.
    products = torch.matmul(pixels.mT, pixels).view(n, groups, *spatial, *spatial)
    # The windows' dot products: for windows t and s, the sum over kernel
    # offsets o of the products of pixels t + o and s + o. The offsets of
    # each dimension are summed in turn (3 + 3 slices for a 3x3 kernel, not 9).
    dims = len(spatial)
    for d in reversed(range(dims)):
        size, step, stride = g.shape[2 + d], layer.dilation[d], layer.stride[d]
        summed = None
        for offset in range(layer.kernel_size[d]):
            index = [slice(None)] * products.dim()
            index[2 + d] = index[2 + dims + d] = slice(
                offset * step, offset * step + stride * (size - 1) + 1, stride
            )
            view = products[tuple(index)]
            if summed is None:
                summed = view.clone(memory_format=torch.contiguous_format)
            else:
                summed += view
        products = summed
    g = g.reshape(n, groups, layer.out_channels // groups, -1)
    grad_products = torch.matmul(g.mT, g)
    # Summed over the groups and every pair of windows.
    return torch.linalg.vecdot(products.reshape(n, -1), grad_products.reshape(n, -1))
