"""Which exact route computes a layer's norms: measured once per layer shape, then reused.

Several exact computations give the same per-sample norms of a layer (a
convolution's Gram form, its gradients formed from gathered windows, torch's
weight-gradient kernel...), and which one is fastest depends on the layer's
shapes, the device, the dtype and the libraries behind them: a cost model of
the shapes alone is wrong on some of them. So, as cuDNN's benchmark mode does,
the first time a layer shape is seen, every route that the shape model does
not rule out is run and timed, and the fastest is kept for the process.

Timing is made robust to a noisy machine: every candidate runs once untimed
(allocations, kernel selection; one far slower than the others stops
there), then the candidates are timed in up to five rounds, in alternating
order, and each keeps its fastest time (noise only ever adds). Candidates far
behind after a round drop out, and the rounds stop early when their time is
spent, so tuning a layer costs a few runs of its norms, once.

``route`` (see :func:`skprune.gradients.per_sample_grad_norms`) selects
the policy for one call: ``"auto"`` measures, ``"estimate"`` takes the shape
model's choice among the routes it ranks, without timing (the choice of
earlier versions), and a route's name forces that route wherever it applies.
"""

import contextlib
import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import NamedTuple

import torch

#: The route names a caller may force, besides the two policies.
ROUTE_NAMES = ("gram", "outer", "grouped", "shifted", "pixel_gram")
POLICIES = ("auto", "estimate")

#: A candidate whose estimated cost is this many times the cheapest estimate
#: is not timed: it cannot win, and timing it could cost more than it saves.
#: (The shape model is off by up to about 5 times on some shapes.)
HOPELESS = 4.0
#: Candidates whose untimed run took this many times the fastest untimed run
#: are not timed (the untimed run includes one-off costs, hence the margin).
WARM_UP_DROP_FACTOR = 10.0
#: After a round, candidates slower than this many times the fastest drop out.
DROP_FACTOR = 3.0
#: Timed rounds per layer shape, at most.
ROUNDS = 5
#: Seconds of timed runs after which no further round starts.
TIME_BUDGET = 0.2

#: ``key -> route name``: the measured choices of this process.
_CHOICES = {}
_POLICY = ContextVar("skprune_grad_norm_route", default="auto")
#: ``None``, or a dict that every route choice is written to (layer -> route).
_LOG = ContextVar("skprune_grad_norm_route_log", default=None)


class Route(NamedTuple):
    """One exact way of computing a result: its name, estimated cost, and the computation."""

    name: str
    #: The shape model's cost estimate, in any unit common to the routes of
    #: one key; ``math.inf``: taken only when forced.
    estimate: float
    run: Callable[[], torch.Tensor]
    #: Whether ``route="estimate"`` may choose it: the shape model ranks it
    #: reliably. Other routes are candidates only when measured.
    ranked: bool = True


@contextlib.contextmanager
def route_policy(route, log=None):
    """Inside, route choices follow ``route``; every choice is written to ``log`` if given."""
    policy_token = _POLICY.set(route)
    log_token = _LOG.set(log)
    try:
        yield
    finally:
        _LOG.reset(log_token)
        _POLICY.reset(policy_token)


def check_route(route):
    """``route`` if it is a valid policy or route name; a clear error otherwise."""
    if not isinstance(route, str) or route not in POLICIES + ROUTE_NAMES:
        raise ValueError(
            "route must be 'auto' (measure the exact routes once per layer shape), "
            "'estimate' (the shape cost model's choice, without timing), or one of "
            f"{', '.join(repr(name) for name in ROUTE_NAMES)} (that route wherever it "
            f"applies); got {route!r}."
        )
    return route


def run_route(layer, key, routes):
    """The result of the route chosen for ``key`` among ``routes``.

    Parameters
    ----------
    layer : torch.nn.Module
        The layer the result is for (only written to the route log).
    key : hashable
        Everything the routes' speed depends on: the kind of computation, the
        layer's hyper-parameters, the shapes, strides, dtype and device of
        its tensors. The measured choice is kept under this key.
    routes : list of Route
        The exact routes that apply, in the shape model's order of preference
        (cheapest estimate first).
    """
    chosen, result = _choose(_POLICY.get(), key, routes)
    if result is None:
        result = chosen.run()
    log = _LOG.get()
    if log is not None:
        log[layer] = chosen.name
    return result


def _choose(policy, key, routes):
    """``(route, result)``: the chosen route, and its result if measuring computed one."""
    by_name = {route.name: route for route in routes}
    if policy in by_name:
        return by_name[policy], None
    finite = [route for route in routes if route.estimate < math.inf] or routes[:1]
    best_estimate = min(route.estimate for route in finite)
    if policy != "auto":  # "estimate", or a route that does not apply here
        ranked = [route for route in finite if route.ranked] or finite
        return min(ranked, key=lambda route: route.estimate), None
    name = _CHOICES.get(key)
    if name in by_name:
        return by_name[name], None
    candidates = [route for route in finite if route.estimate <= HOPELESS * best_estimate]
    if len(candidates) == 1:
        _CHOICES[key] = candidates[0].name
        return candidates[0], None
    fastest, result = _measure(candidates, _device_of(key))
    _CHOICES[key] = fastest.name
    return fastest, result


def _measure(candidates, device):
    """The fastest of ``candidates`` by its best timed run, and one result (all are equal)."""
    result, warm_up, error = None, {}, None
    for route in candidates:  # untimed: allocations, kernel selection, caches
        try:
            warm_up[route.name], value = _run_once(route, device)
        except (RuntimeError, NotImplementedError) as exc:
            # A kernel this device or dtype lacks: the other routes are as exact.
            error = error or exc
            continue
        result = value if result is None else result
    if not warm_up:
        raise error
    fastest = min(warm_up.values())
    alive = [route for route in candidates if route.name in warm_up
             and warm_up[route.name] <= WARM_UP_DROP_FACTOR * fastest]
    best = dict.fromkeys((route.name for route in candidates), math.inf)
    spent = 0.0
    for round_ in range(ROUNDS if len(alive) > 1 else 0):
        for route in alive if round_ % 2 == 0 else alive[::-1]:
            seconds = _time_route(route, device)
            best[route.name] = min(best[route.name], seconds)
            spent += seconds
        fastest = min(best[route.name] for route in alive)
        alive = [route for route in alive if best[route.name] <= DROP_FACTOR * fastest]
        if len(alive) == 1 or spent > TIME_BUDGET:
            break
    return min(alive, key=lambda route: best[route.name]), result


def _run_once(route, device):
    """``(seconds, result)`` of one untimed run: its time only screens out slow routes."""
    _synchronize(device)
    start = time.perf_counter()
    result = route.run()
    _synchronize(device)
    return time.perf_counter() - start, result


def _time_route(route, device):
    """Seconds of one timed run of ``route``, the device's queued work included."""
    _synchronize(device)
    start = time.perf_counter()
    route.run()
    _synchronize(device)
    return time.perf_counter() - start


def _synchronize(device):
    if device is None or device.type == "cpu":
        return
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif hasattr(torch, "accelerator") and torch.accelerator.is_available():
        torch.accelerator.synchronize(device)


def _device_of(key):
    # route_key puts the device last.
    device = key[-1]
    return device if isinstance(device, torch.device) else None


def route_key(kind, hyper_parameters, tensors):
    """A key for :func:`run_route`: what is computed, by what layer, from what tensors.

    ``tensors`` contribute their shapes and strides; the first one's dtype
    and device complete the key (the device last, where timing finds it).
    """
    first = tensors[0]
    shapes = tuple((tuple(tensor.shape), tensor.stride()) for tensor in tensors)
    return (kind, hyper_parameters, shapes, first.dtype, first.device)


def clear_choices():
    """Forget every measured choice (the next layer shapes seen are measured again)."""
    _CHOICES.clear()
