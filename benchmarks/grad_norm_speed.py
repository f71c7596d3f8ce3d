"""Speed of exact per-sample gradient norms, relative to one plain training pass.

For every case (a network and a batch shape) prints the ratio of the time of
:func:`skprune.per_sample_grad_norms` to the time of one plain forward and
backward pass over the same batches (parameter gradients of each batch's
summed loss), which is what exact norms cannot beat by much (the physical
limit is about 1; the target is at most 1.5). Each ratio is given twice, side
by side from the same interleaved rounds: with the routes the shape model
estimates cheapest (``route="estimate"``, how routes were chosen before they
were measured: "before") and with the routes measured on the first batch
(``route="auto"``, the default: "after"). Cases:

- a sweep over convolution shapes: one convolution (input channels 1, 3 or
  64; maps 32x32 down to 4x4; kernels 1, 3, 5; stride 1 or 2; dense or
  depthwise; with or without BatchNorm), ReLU and a linear head;
- the networks of :mod:`skprune.models`: the MLP (784-256-10) and the small
  CNN on 1x28x28 inputs, ResNet-18 and VGG-16 (with BatchNorm) on 3x32x32;
- CNNs with BatchNorm after each of their two convolutions (few channels,
  28x28 and 14x14 maps), with the budget's batches and with batches of 256.

The inputs are random (speed does not depend on the values). Each ratio is
measured twice in the same run: on the CPU as it is ("idle"), then with one
busy-loop process per core competing for it ("loaded"), started and stopped
by the script. Within each, the passes alternate (a warm-up round, then at
least ``--repeats`` rounds, more for cheap cases: ``--min-seconds``); ``est``
and ``auto`` are ratios of medians, ``min`` the ratio of the fastest runs of
``auto``. Each case's batches (``batches``: how many x batch size) are picked
so that one pass costs about the same number of floating-point operations
(``--budget``); ``ms/smp`` is the plain pass's time per sample. ``tune`` is
what measuring the routes added to the first call of the case (its extra
time over a later call, in plain passes; the loaded rounds reuse the choice).
The ``err`` column is the largest relative difference to a per-sample
backward loop on 8 samples, over both choices; ``routes`` gives the routes
of the layers that have several (:func:`skprune.gradients.grad_norm_routes`),
chosen by the shape model, then by measurement.

Run: ``python -m benchmarks.grad_norm_speed [--quick] [--threads N]
[--repeats 3] [--no-load] [--baselines] [--device cpu]``. The default run
takes about 8 minutes on 2 cores, ``--quick`` about a minute.
``--baselines`` also times a per-sample backward loop and
``torch.func.vmap(grad)`` for the MLP and the CNN.
"""

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from skprune import per_sample_grad_norms
from skprune.gradients import grad_norm_routes
from skprune.models import make_net

#: Ratios above this are listed at the end.
TARGET = 1.5


# Cases ---------------------------------------------------------------------------


class Case:
    """A network, the shape of one input, and (optionally) its batches.

    ``batches`` is ``(how many, batch size)``; ``None`` picks them from the
    flop budget.
    """

    def __init__(self, name, make_module, input_shape, n_classes=10, batches=None):
        self.name = name
        self.make_module = make_module
        self.input_shape = input_shape
        self.n_classes = n_classes
        self.batches = batches


def conv_case(in_channels, size, kernel, stride=1, depthwise=False, batch_norm=False):
    """One convolution, ReLU and a linear head: the cost of one layer shape."""
    out_channels = in_channels if depthwise else 64
    groups = in_channels if depthwise else 1

    def make_module():
        conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride,
                         padding=kernel // 2, groups=groups, bias=not batch_norm)
        out_size = (size + 2 * (kernel // 2) - kernel) // stride + 1
        layers = [conv, nn.BatchNorm2d(out_channels)] if batch_norm else [conv]
        return nn.Sequential(*layers, nn.ReLU(), nn.Flatten(),
                             nn.Linear(out_channels * out_size * out_size, 10))

    name = (f"conv {in_channels:>2}->{out_channels:<2} {size:>2}x{size:<2} k{kernel} s{stride}"
            f"{' dw' if depthwise else '   '}{' +BN' if batch_norm else ''}")
    return Case(name, make_module, (in_channels, size, size))


def batch_norm_cnn(channels=(24, 48)):
    """Two 3x3 convolutions (1 -> 24 -> 48 channels), each followed by BatchNorm.

    On 1x28x28 inputs the convolutions see 28x28 and 14x14 maps.
    """
    first, second = channels
    return nn.Sequential(
        nn.Conv2d(1, first, 3, padding=1), nn.BatchNorm2d(first), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(first, second, 3, padding=1), nn.BatchNorm2d(second), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(second * 7 * 7, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def model_case(name, model, input_shape, **params):
    """A network of :mod:`skprune.models`, as :func:`skprune.models.make_net` builds it."""
    def make_module():
        net = make_net(model, 10, input_shape=input_shape, device="cpu", **params)
        return net.initialize().module_
    return Case(name, make_module, input_shape)


def network_cases(quick):
    cases = [
        model_case("MLP 784-256-10", "mlp", (1, 28, 28), module__hidden=(256,)),
        model_case("CNN 2 conv + 2 linear", "cnn", (1, 28, 28)),
        Case("CNN 2 conv+BN + 2 linear", batch_norm_cnn, (1, 28, 28)),
        Case("CNN 2 conv+BN, batch 256", batch_norm_cnn, (1, 28, 28), batches=(2, 256)),
        Case("CNN 8/16 conv+BN, batch 256", lambda: batch_norm_cnn((8, 16)), (1, 28, 28),
             batches=(2, 256)),
    ]
    if not quick:
        cases += [
            model_case("VGG-16 (BN) 32x32", "vgg16", (3, 32, 32)),
            model_case("ResNet-18 32x32", "resnet18", (3, 32, 32)),
        ]
    return cases


def shape_cases(quick):
    if quick:
        return [conv_case(1, 32, 3), conv_case(64, 16, 3), conv_case(64, 4, 3),
                conv_case(64, 32, 3, depthwise=True), conv_case(3, 32, 5, stride=2)]
    cases = [conv_case(channels, size, 3) for channels in (1, 3, 64) for size in (32, 16, 8, 4)]
    cases += [conv_case(channels, 16, kernel) for channels in (1, 3, 64) for kernel in (1, 5)]
    cases += [conv_case(channels, size, 3, stride=2) for channels in (3, 64) for size in (32, 8)]
    cases += [conv_case(64, size, 3, depthwise=True) for size in (32, 16, 8, 4)]
    cases += [conv_case(64, 16, 5, depthwise=True), conv_case(64, 32, 1, depthwise=True),
              conv_case(64, 32, 3, stride=2, depthwise=True)]
    cases += [conv_case(channels, size, 3, batch_norm=True) for channels in (3, 64)
              for size in (32, 8)]
    cases.append(conv_case(64, 32, 3, depthwise=True, batch_norm=True))
    return cases


# Timed passes ----------------------------------------------------------------------


def plain_pass(model, X, y, batch_size):
    """One forward + backward pass: parameter gradients of each batch's summed loss."""
    params = list(model.parameters())
    for start in range(0, len(y), batch_size):
        loss = F.cross_entropy(
            model(X[start:start + batch_size]), y[start:start + batch_size], reduction="sum"
        )
        torch.autograd.grad(loss, params)


def estimated_norms(model, X, y, batch_size):
    """The norms with the routes the shape model estimates cheapest ("before")."""
    return per_sample_grad_norms(model, X, y, batch_size=batch_size, route="estimate")


def grad_norms(model, X, y, batch_size):
    """The norms with the routes measured on the first batch of each shape ("after")."""
    return per_sample_grad_norms(model, X, y, batch_size=batch_size)


def loop_norms(model, X, y, batch_size=None):
    """A backward pass per sample: the reference for exactness, and a baseline."""
    params = list(model.parameters())
    norms = torch.empty(len(y), dtype=torch.float64)
    for i in range(len(y)):
        loss = F.cross_entropy(model(X[i:i + 1]), y[i:i + 1])
        grads = torch.autograd.grad(loss, params)
        norms[i] = torch.sqrt(sum(g.double().pow(2).sum() for g in grads)).item()
    return norms.numpy()


def vmap_norms(model, X, y, batch_size):
    """``torch.func.vmap(grad)`` over each batch: the per-sample gradients, then their norms."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def sample_loss(values, x, target):
        output = torch.func.functional_call(model, (values, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(output, target.unsqueeze(0))

    per_sample_grads = torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0))
    norms = []
    for start in range(0, len(y), batch_size):
        grads = per_sample_grads(params, X[start:start + batch_size], y[start:start + batch_size])
        norms.append(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()).sqrt())
    return torch.cat(norms).double().cpu().numpy()


def timed(route, model, X, y, batch_size, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    route(model, X, y, batch_size)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def interleaved(routes, model, X, y, batch_size, repeats, device, min_seconds=0.0):
    """Seconds of every route in each round, after a warm-up round.

    The order of the routes alternates from round to round, so that neither
    is always the one running after the other. There are at least
    ``repeats`` rounds, and as many as last about ``min_seconds`` (judged
    from the warm-up round) up to ``5 * repeats``: cheap cases get more
    samples of the noise.
    """
    seconds = {name: [] for name in routes}
    names = list(routes)
    warm_up = 0.0
    for name in names[::-1]:  # warms up allocators, kernels and caches
        warm_up += timed(routes[name], model, X, y, batch_size, device)
    rounds = max(repeats, min(5 * repeats, math.ceil(min_seconds / max(warm_up, 1e-9))))
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            seconds[name].append(timed(routes[name], model, X, y, batch_size, device))
    return seconds


@contextlib.contextmanager
def competing_load(n_processes):
    """``n_processes`` busy-loop processes competing for the CPU while inside."""
    processes = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(n_processes)
    ]
    try:
        time.sleep(0.2)  # let them start spinning
        yield
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()


# One case ------------------------------------------------------------------------


def flops_per_sample(model, input_shape, device):
    """Floating-point operations of one forward pass over one sample."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *input_shape, device=device))
    return counter.get_total_flops()


def batches_for(model, input_shape, budget, device):
    """Batch size and number of batches of a plain pass costing about ``budget`` flops.

    The largest power of 2 from 8 to 128 for which two batches fit the
    budget, then as many batches (2 to 8) as fit: the cost of the function's
    set-up and first-batch checks is shared by more batches for cheap
    cases, as it is in practice by a whole data set.
    """
    # A backward pass costs about twice the forward pass.
    per_sample = 3 * max(1, flops_per_sample(model, input_shape, device))
    size = 8
    while size < 128 and 2 * (2 * size) * per_sample <= budget:
        size *= 2
    return size, max(2, min(8, int(budget // (size * per_sample))))


def route_summary(model, X, y, route):
    """How many layers take each route, among the layers that have several."""
    chosen = grad_norm_routes(model, X, y, route=route).values()
    counts = Counter(name for name in chosen if name not in ("rule", "general"))
    return " ".join(f"{name}x{count}" if count > 1 else name
                    for name, count in sorted(counts.items())) or "-"


def run_case(case, args, device):
    torch.manual_seed(0)
    model = case.make_module().to(device).eval()
    if case.batches is None:
        batch_size, n_batches = batches_for(model, case.input_shape, args.budget, device)
    else:
        n_batches, batch_size = case.batches
    n_samples = n_batches * batch_size
    X = torch.randn(n_samples, *case.input_shape, device=device)
    y = torch.randint(0, case.n_classes, (n_samples,), device=device)
    routes = {"plain": plain_pass, "estimate": estimated_norms, "auto": grad_norms}
    # The first call measures the routes of the case's shapes, unless a case
    # before it had the same ones.
    first_call = timed(grad_norms, model, X, y, batch_size, device)
    row = {"case": case.name, "batches": f"{n_batches}x{batch_size}"}
    conditions = [("idle", contextlib.nullcontext())]
    if args.load:
        conditions.append(("loaded", competing_load(args.load_processes)))
    for condition, context in conditions:
        with context:
            seconds = interleaved(routes, model, X, y, batch_size, args.repeats, device,
                                  args.min_seconds)
        plain = statistics.median(seconds["plain"])
        row[condition] = (
            statistics.median(seconds["estimate"]) / plain,
            statistics.median(seconds["auto"]) / plain,
            min(seconds["auto"]) / min(seconds["plain"]),
            plain / n_samples,
        )
        if condition == "idle":
            row["tune"] = max(0.0, first_call - statistics.median(seconds["auto"])) / plain
    reference = loop_norms(model, X[:8], y[:8])
    row["err"] = max(
        np.max(np.abs(route(model, X[:8], y[:8], 8) - reference) / reference)
        for route in (estimated_norms, grad_norms)
    )
    row["routes"] = " -> ".join(
        route_summary(model, X[:batch_size], y[:batch_size], route)
        for route in ("estimate", "auto")
    )
    return row


def print_row(row, load):
    cells = [f"{row['case']:<30s}", f"{row['batches']:>7s}"]
    for condition in ("idle", "loaded") if load else ("idle",):
        estimate, auto, minimum, plain = row[condition]
        cells.append(f"{estimate:5.2f} {auto:5.2f} {minimum:5.2f} {1e3 * plain:7.2f}")
    cells.append(f"{row['tune']:5.1f} {row['err']:7.1e}  {row['routes']}")
    print("  ".join(cells), flush=True)


def print_baselines(args, device):
    """The per-sample loop and ``vmap(grad)`` for the MLP and the CNN, next to the norms."""
    routes = {"plain": plain_pass, "per_sample_grad_norms": grad_norms,
              "per-sample backward loop": loop_norms, "torch.func.vmap(grad)": vmap_norms}
    for case in network_cases(quick=True)[:2]:
        torch.manual_seed(0)
        model = case.make_module().to(device).eval()
        X = torch.randn(256, *case.input_shape, device=device)
        y = torch.randint(0, case.n_classes, (256,), device=device)
        seconds = interleaved(routes, model, X, y, 128, args.repeats, device)
        plain = statistics.median(seconds["plain"])
        print(f"\n{case.name}, 256 samples, batch 128 (median ratio to plain):")
        for name, times in seconds.items():
            print(f"  {name:28s} {statistics.median(times) / plain:8.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few shapes and networks, about 30 seconds")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds per case and condition (default 3, 2 with --quick)")
    parser.add_argument("--min-seconds", type=float, default=None,
                        help="cheap cases repeat their rounds for about this long, up to 5 "
                             "times --repeats (default 1, 0.5 with --quick)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch CPU threads, for every pass (default: all usable cores)")
    parser.add_argument("--budget", type=float, default=None,
                        help="flops of one plain pass, which sets each case's batch size "
                             "(default 4e9, 1e9 with --quick)")
    parser.add_argument("--no-load", dest="load", action="store_false",
                        help="skip the measurements under competing load")
    parser.add_argument("--load-processes", type=int, default=len(os.sched_getaffinity(0)),
                        help="busy-loop processes of the competing load (default: one per core)")
    parser.add_argument("--baselines", action="store_true",
                        help="also time a per-sample loop and vmap(grad) for the MLP and CNN")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.budget is None:
        args.budget = 1e9 if args.quick else 4e9
    if args.min_seconds is None:
        args.min_seconds = 0.5 if args.quick else 1.0

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"ratio = per_sample_grad_norms time / plain forward+backward time, same batches, "
          f"est = route='estimate' (shape model), auto = route='auto' (measured); "
          f"{args.repeats}+ interleaved rounds after a warm-up; device {device}, "
          f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}, load "
          f"average {os.getloadavg()[0]:.2f} at start"
          + (f"; loaded = {args.load_processes} busy-loop processes running" if args.load else ""))
    conditions = ("idle", "loaded") if args.load else ("idle",)
    header = [f"{'':<30s}", f"{'':>7s}"]
    header += [f"{condition:-^29s}" for condition in conditions]
    print("  ".join(header))
    header = [f"{'case':<30s}", f"{'batches':>7s}"]
    header += [f"{'est':>5s} {'auto':>5s} {'min':>5s} {'ms/smp':>7s}"] * len(conditions)
    header.append(f"{'tune':>5s} {'err':>7s}  routes: estimated -> measured")
    print("  ".join(header))
    rows = []
    for case in shape_cases(args.quick) + network_cases(args.quick):
        rows.append(run_case(case, args, device))
        print_row(rows[-1], args.load)
    if args.baselines:
        print_baselines(args, device)

    print()
    for column, label in ((0, "estimated routes (before)"), (1, "measured routes (after)")):
        for condition in conditions:
            worst = max(rows, key=lambda row: row[condition][column])
            above = [row["case"].strip() for row in rows if row[condition][column] > TARGET]
            print(f"{label}, {condition}: max median ratio {worst[condition][column]:.2f} "
                  f"({worst['case'].strip()}); above {TARGET}: "
                  f"{', '.join(above) if above else 'none'}")


if __name__ == "__main__":
    main()
