"""Per-sample gradient norms of a weight applied at many positions, by the cheapest route.

A convolution applies its weight at every window of its input, a linear layer
over a sequence at every step. With ``a_t`` the input at position ``t`` (the
window, flattened) and ``g_t`` the loss gradient with respect to the output
there, one sample's weight gradient is ``sum_t g_t a_t^T`` (per group of a
grouped convolution). Its squared norm has three exact routes:

``"gram"``
    ``sum_{t,s} (a_t . a_s)(g_t . g_s)``, from the Gram matrices of the
    positions, without forming the gradient. Cheap for few positions and
    wide layers (a deep convolution on a small map).
``"outer"``
    The input windows gathered into a matrix (strided views copied once),
    then one batched matrix product forming each sample's gradient. Cheap
    for many positions and few channels (an early convolution on a large
    map), and for tiny layers.
``"grouped"``
    torch's convolution weight-gradient kernel with the batch folded into
    the groups, which reads the input in place instead of gathering its
    windows. Cheap for grouped convolutions with few channels per group
    (depthwise), where the gathered windows outnumber the multiply-adds.

:func:`choose_route` picks one from the shapes alone, with a cost model in
multiply-adds (:func:`route_costs`), so the choice costs nothing and does not
change with the machine's load. Whatever the route, the result is the same
up to rounding.

Two facts of CPU execution shape the routes. Every operation over a batch
synchronizes the threads once: a few microseconds on an idle machine, but a
whole scheduler time slice (milliseconds) when other processes share the
cores. So each route runs a handful of batch-wide operations, never one per
sample: the windows come from one strided copy, not
``torch.nn.functional.unfold`` (which runs one parallel loop per sample),
and norms from one reduction. And the grouped kernel is only a candidate for
grouped layers: for an ungrouped layer it is a ``batch``-group convolution
unlike any the layer itself runs, which oneDNN executes slowly for some
shapes (seconds instead of milliseconds for a 1 -> 24 channel 3x3
convolution on 28x28 maps with other processes running, and for 512
channels on 4x4 maps even without).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

#: The routes, in the order :func:`choose_route` prefers them on equal cost.
ROUTES = ("gram", "outer", "grouped")

#: Cost, in multiply-adds, of one element written by a memory-bound operation
#: and read back (element-wise products, reductions, copies).
_ELEMENT_COST = 4
#: Cost of one element of the gathered input windows: a strided gather that
#: the cache serves poorly, then a read by the matrix product.
_GATHER_COST = 16
#: Fixed cost of one batch-wide operation: dispatch, and the threads'
#: synchronization, which dominates tiny layers and shared cores.
_LAUNCH_COST = 2**20
#: Batch-wide operations of each route (the window gather and its padding
#: included, for a convolution).
_LAUNCHES = {"gram": 5, "outer": 4, "grouped": 2}
#: Bytes of temporaries one chunk of samples may use: larger batches are
#: processed a chunk at a time, so that memory stays bounded.
MEMORY_BUDGET = 2**28


def route_costs(n, groups, fan_in, fan_out, positions, *, gather=False, input_size=None,
                itemsize=4, routes=ROUTES):
    """Estimated cost and chunk size of every route that applies to a layer.

    Parameters
    ----------
    n : int
        Samples in the batch.
    groups : int
        Groups of a convolution (1 for a linear layer).
    fan_in : int
        Inputs per output in one group: ``in_channels / groups * kernel
        elements`` for a convolution, ``in_features`` for a linear layer.
    fan_out : int
        Outputs per group: ``out_channels / groups``.
    positions : int
        Positions the weight is applied at, per sample (all calls together).
    gather : bool, default=False
        Whether the ``"gram"`` and ``"outer"`` routes gather the input
        windows into a new matrix: for a convolution, unless its windows are
        its input itself (a 1x1 kernel without stride or padding).
    input_size : int or None, default=None
        Elements of one sample's input to a convolution, which the
        ``"grouped"`` route reads; ``None`` for a linear layer, which has no
        such route. For an ungrouped convolution ``"grouped"`` costs
        ``inf``: it stays available when asked for alone, but is never
        chosen.
    itemsize : int, default=4
        Bytes per element (4 for float32).
    routes : iterable of str, default=ROUTES
        The routes to consider.

    Returns
    -------
    costs : dict
        ``{route: (cost, chunk)}``: the cost in multiply-add units of the
        whole batch, and how many samples each chunk holds.
    """
    windows = n * groups * fan_in * positions if gather else 0
    macs = n * groups * fan_in * fan_out * positions
    grads = n * groups * fan_in * fan_out
    grams = 2 * n * groups * positions * positions
    estimates = {
        # (multiply-adds, elements through memory, temporary elements)
        "gram": (n * groups * positions * positions * (fan_in + fan_out), grams, windows + grams),
        "outer": (macs, grads, windows + grads),
        "grouped": (macs, n * (input_size or 0) + n * groups * fan_out * positions + grads, grads),
    }
    costs = {}
    for route in routes:
        if route == "grouped" and input_size is None:
            continue
        products, elements, temporary = estimates[route]
        gathered = 0 if route == "grouped" else windows
        chunk = max(1, min(n, MEMORY_BUDGET * n // max(1, temporary * itemsize)))
        launches = _LAUNCHES[route] * math.ceil(n / chunk)
        cost = products + _ELEMENT_COST * elements + _GATHER_COST * gathered
        costs[route] = (cost + _LAUNCH_COST * launches, chunk)
    if "grouped" in costs and groups == 1:
        # Exact, but never chosen: see the module's docstring.
        costs["grouped"] = (math.inf, costs["grouped"][1])
    return costs


def choose_route(n, groups, fan_in, fan_out, positions, *, gather=False, input_size=None,
                 itemsize=4, routes=ROUTES):
    """The cheapest route for a layer's per-sample weight-gradient norms.

    Takes the parameters of :func:`route_costs`.

    Returns
    -------
    route : {"gram", "outer", "grouped"}
    chunk : int
        Samples per chunk.

    Examples
    --------
    >>> from skprune._weight_routes import choose_route
    >>> # 3x3 convolutions: 512 channels on a 4x4 map, 1 -> 24 channels on 28x28.
    >>> choose_route(128, 1, 512 * 9, 512, 4 * 4, gather=True, input_size=512 * 16)
    ('gram', 128)
    >>> choose_route(128, 1, 9, 24, 28 * 28, gather=True, input_size=28 * 28)
    ('outer', 128)
    """
    costs = route_costs(n, groups, fan_in, fan_out, positions, gather=gather,
                        input_size=input_size, itemsize=itemsize, routes=routes)
    route = min(costs, key=lambda name: costs[name][0])
    return route, costs[route][1]


def sq_norms(tensor):
    """Squared L2 norm of every sample's slice (dimension 0), in one reduction."""
    return torch.linalg.vector_norm(tensor.reshape(tensor.shape[0], -1), dim=1).square()


def gram_sq_norms(a, g):
    """``sum_{t,s} (a_t . a_s)(g_t . g_s)`` per sample, summed over groups.

    ``a`` has shape ``(n, groups, fan_in, T)`` and ``g`` ``(n, groups,
    fan_out, T)``; both may be strided views.
    """
    n = a.shape[0]
    gram_a = torch.matmul(a.mT, a).reshape(n, 1, -1)
    gram_g = torch.matmul(g.mT, g).reshape(n, -1, 1)
    # A batched dot product: one operation, where a product and a sum are two.
    return torch.bmm(gram_a, gram_g).view(n)


def outer_grads(a, g):
    """Per-sample gradients ``sum_t g_t a_t^T``: shape ``(n, groups, fan_out, fan_in)``."""
    return torch.matmul(g, a.mT)


def weight_sq_norms(a, g):
    """Per-sample squared norms of ``sum_t g_t a_t^T``, by the cheaper of two routes.

    For positions that need no gathering (a linear layer's input rows):
    ``a`` has shape ``(n, groups, fan_in, T)`` and ``g`` ``(n, groups,
    fan_out, T)``, both possibly strided views.
    """
    n, groups, fan_in, positions = a.shape
    route, chunk = choose_route(n, groups, fan_in, g.shape[2], positions,
                                itemsize=a.element_size())
    parts = [
        gram_sq_norms(a_part, g_part) if route == "gram"
        else sq_norms(outer_grads(a_part, g_part))
        for a_part, g_part in zip(a.split(chunk), g.split(chunk))
    ]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def concat_positions(tensors):
    """Tensors of positions (last dimension) of several calls of a layer, as one.

    A layer called several times contributes like one call over all the
    positions of all calls; the usual single call is not copied.
    """
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=-1)


# Convolutions ---------------------------------------------------------------


_WEIGHT_GRAD = {1: nn.grad.conv1d_weight, 2: nn.grad.conv2d_weight, 3: nn.grad.conv3d_weight}


def choose_conv_route(layer, calls, routes=ROUTES):
    """:func:`choose_route` for a convolution's recorded ``(input, output_grad)`` calls."""
    x = calls[0][0]
    kernel = math.prod(layer.kernel_size)
    positions = sum(g[0].numel() for _, g in calls) // layer.out_channels
    return choose_route(
        x.shape[0], layer.groups, layer.in_channels // layer.groups * kernel,
        layer.out_channels // layer.groups, positions, gather=not _windows_are_input(layer),
        input_size=x[0].numel(), itemsize=x.element_size(), routes=routes,
    )


def conv_weight_sq_norms(layer, calls, route=None):
    """Per-sample squared norms of a convolution's weight gradient.

    Parameters
    ----------
    layer : torch.nn.Conv1d, Conv2d or Conv3d
    calls : list of (torch.Tensor, torch.Tensor)
        The layer's input and output gradient at each call, samples first.
    route : {"gram", "outer", "grouped"} or None, default=None
        ``None`` takes :func:`choose_conv_route`'s choice.

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    route, chunk = choose_conv_route(layer, calls, ROUTES if route is None else (route,))
    channels_last = _channels_last(layer, calls)
    parts = []
    for part in _chunks(calls, chunk):
        if route == "gram":
            # One layout for every call: the Gram matrix pairs their windows.
            n, groups = part[0][0].shape[0], layer.groups
            a = concat_positions([_windows(layer, x, channels_last) for x, _ in part])
            g = concat_positions([g.reshape(n, groups, -1, g[0, 0].numel()) for _, g in part])
            parts.append(gram_sq_norms(a, g))
        else:
            # Norms do not depend on the order of a gradient's entries.
            grads = _conv_weight_grads(layer, part, route, channels_last, weight_order=False)
            parts.append(sq_norms(grads))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def conv_weight_grads(layer, calls, route=None):
    """Per-sample weight gradients of a convolution, of shape ``(n, *weight.shape)``.

    Takes the parameters of :func:`conv_weight_sq_norms`; ``route`` is
    ``"outer"``, ``"grouped"`` or ``None`` (the gradients are formed, so the
    Gram route does not apply). The batch is not split into chunks: the
    caller keeps the whole result.
    """
    if route not in (None, "outer", "grouped"):
        raise ValueError(
            f"Per-sample gradients are formed by 'outer' or 'grouped'; got {route!r}."
        )
    routes = ("outer", "grouped") if route is None else (route,)
    route, _ = choose_conv_route(layer, calls, routes)
    channels_last = _channels_last(layer, calls)
    return _conv_weight_grads(layer, calls, route, channels_last, weight_order=True)


def _conv_weight_grads(layer, calls, route, channels_last, weight_order):
    """Per-sample weight gradients, entries in the weight's order only if ``weight_order``.

    The ``"outer"`` route with channels-last windows forms them as (kernel
    offset, channel); putting them back in the weight's (channel, kernel
    offset) order costs a copy of them all.
    """
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


def _chunks(calls, chunk):
    n = calls[0][0].shape[0]
    if chunk >= n:
        return [calls]
    return [
        [(x[start:start + chunk], g[start:start + chunk]) for x, g in calls]
        for start in range(0, n, chunk)
    ]


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
        for length, k, s, step in zip(x.shape[2:], kernel, stride, dilation)
    ]
    batch_stride, channel_stride, *strides = x.stride()
    offsets = [st * step for st, step in zip(strides, dilation)]
    steps = [st * s for st, s in zip(strides, stride)]
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
