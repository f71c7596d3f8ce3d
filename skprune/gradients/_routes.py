"""Per-sample norms of a weight applied at many positions, and the shape model of their cost.

A convolution applies its weight at every window of its input, a linear layer
over a sequence at every step. With ``a_t`` the input at position ``t`` (the
window, flattened) and ``g_t`` the loss gradient with respect to the output
there, one sample's weight gradient is ``sum_t g_t a_t^T`` (per group of a
grouped convolution). Its squared norm has several exact routes; the two that
apply to any such weight are here:

``"gram"``
    ``sum_{t,s} (a_t . a_s)(g_t . g_s)``, from the Gram matrices of the
    positions, without forming the gradient. Cheap for few positions and
    wide layers (a deep convolution on a small map).
``"outer"``
    One batched matrix product forming each sample's gradient, then its
    norm. Cheap for many positions and few channels, and for tiny layers.

Convolutions have two more (:mod:`skprune.gradients._conv`). Which route is
fastest is measured (:mod:`skprune.gradients._autotune`); the shape model of
:func:`route_costs`, in multiply-adds, orders the candidates, leaves out
hopeless ones, and is the whole choice under ``route="estimate"``. Whatever
the route, the result is the same up to rounding.

Every route runs a handful of operations over the whole batch, never one per
sample: every operation synchronizes the threads once, which costs a whole
scheduler time slice (milliseconds) when other processes share the cores.
"""

import math

import torch

from ._autotune import Route, route_key, run_route

#: Cost, in multiply-adds, of one element written by a memory-bound operation
#: and read back (element-wise products, reductions, copies).
ELEMENT_COST = 4
#: Cost of one element of gathered input windows: a strided gather that the
#: cache serves poorly, then a read by the matrix product.
GATHER_COST = 16
#: Fixed cost of one batch-wide operation: dispatch, and the threads'
#: synchronization, which dominates tiny layers and shared cores.
LAUNCH_COST = 2**20
#: Batch-wide operations of each route (the window gather and its padding
#: included, for a convolution).
LAUNCHES = {"gram": 5, "outer": 4, "grouped": 2}
#: Bytes of temporaries one chunk of samples may use: larger batches are
#: processed a chunk at a time, so that memory stays bounded.
MEMORY_BUDGET = 2**28


def route_costs(n, groups, fan_in, fan_out, positions, *, gather=False, input_size=None,
                itemsize=4):
    """Estimated cost and chunk size of the ``"gram"``, ``"outer"`` and ``"grouped"`` routes.

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
        such route.
    itemsize : int, default=4
        Bytes per element (4 for float32).

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
    for route, (products, elements, temporary) in estimates.items():
        if route == "grouped" and input_size is None:
            continue
        gathered = 0 if route == "grouped" else windows
        cost = products + ELEMENT_COST * elements + GATHER_COST * gathered
        costs[route] = with_launches(cost, LAUNCHES[route], n, temporary * itemsize)
    return costs


def with_launches(cost, launches, n, temporary_bytes):
    """``(cost, chunk)``: ``cost`` plus the launches of every chunk that memory allows."""
    chunk = max(1, min(n, MEMORY_BUDGET * n // max(1, temporary_bytes)))
    return cost + LAUNCH_COST * launches * math.ceil(n / chunk), chunk


def sq_norms(tensor):
    """Squared L2 norm of every sample's slice (dimension 0), in one reduction."""
    return torch.linalg.vector_norm(tensor.reshape(tensor.shape[0], -1), dim=1).square()


def gram_sq_norms(a, g):
    """``sum_{t,s} (a_t . a_s)(g_t . g_s)`` per sample, summed over groups.

    ``a`` has shape ``(n, groups, fan_in, T)`` and ``g`` ``(n, groups,
    fan_out, T)``; both may be strided views.
    """
    n = a.shape[0]
    gram_a = torch.matmul(a.mT, a).reshape(n, -1)
    gram_g = torch.matmul(g.mT, g).reshape(n, -1)
    # (A batched matrix product of 1 x k by k x 1 runs several times slower.)
    return torch.linalg.vecdot(gram_a, gram_g)


def outer_grads(a, g):
    """Per-sample gradients ``sum_t g_t a_t^T``: shape ``(n, groups, fan_out, fan_in)``."""
    return torch.matmul(g, a.mT)


def in_chunks(compute, chunk, *tensors):
    """``compute`` over chunks of ``chunk`` samples of ``tensors``, concatenated."""
    if chunk >= tensors[0].shape[0]:
        return compute(*tensors)
    parts = [compute(*part)
             for part in zip(*(tensor.split(chunk) for tensor in tensors), strict=True)]
    return torch.cat(parts)


def weight_sq_norms(layer, a, g):
    """Per-sample squared norms of ``sum_t g_t a_t^T``, by the fastest route.

    For positions that need no gathering (a linear layer's input rows):
    ``a`` has shape ``(n, groups, fan_in, T)`` and ``g`` ``(n, groups,
    fan_out, T)``, both possibly strided views.
    """
    n, groups, fan_in, positions = a.shape
    costs = route_costs(n, groups, fan_in, g.shape[2], positions, itemsize=a.element_size())
    compute = {
        "gram": gram_sq_norms,
        "outer": lambda a_part, g_part: sq_norms(outer_grads(a_part, g_part)),
    }
    routes = [
        Route(name, cost, lambda name=name, chunk=chunk: in_chunks(compute[name], chunk, a, g))
        for name, (cost, chunk) in sorted(costs.items(), key=lambda item: item[1][0])
    ]
    return run_route(layer, route_key("positions", (), (a, g)), routes)


def concat_positions(tensors):
    """Tensors of positions (last dimension) of several calls of a layer, as one.

    A layer called several times contributes like one call over all the
    positions of all calls; the usual single call is not copied.
    """
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=-1)
