"""Speed of exact per-sample gradient norms, relative to one plain training pass.

For an MLP (784-256-10) and a small CNN (two conv layers, two linear layers)
on random Fashion-MNIST-sized inputs (1 x 28 x 28, 10 classes), prints the
time of each route to every sample's full-parameter gradient norm divided by
the time of one plain forward + backward pass (parameter gradients of the
summed loss) over the same data with the same batch size:

- ``per_sample_grad_norms`` (ghost norms; target <= 2, physical limit ~1),
- a per-sample backward loop,
- ``torch.func.vmap(grad)`` per batch.

Repeats are interleaved (every route once per round, after a warm-up round)
and the medians are compared. The largest relative difference between the
routes' norms is printed too.

Run: ``python -m benchmarks.grad_norm_speed [--n-samples 1024] [--batch-size 128]
[--repeats 5] [--threads 1] [--device cpu]``.
"""

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skprune import per_sample_grad_norms


def make_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def plain_pass(model, X, y, batch_size):
    """One forward + backward pass: parameter gradients of each batch's summed loss."""
    params = list(model.parameters())
    for start in range(0, len(y), batch_size):
        loss = F.cross_entropy(
            model(X[start:start + batch_size]), y[start:start + batch_size], reduction="sum"
        )
        torch.autograd.grad(loss, params)


def ghost_norms(model, X, y, batch_size):
    return per_sample_grad_norms(model, X, y, batch_size=batch_size)


def loop_norms(model, X, y, batch_size):
    """A backward pass per sample."""
    params = list(model.parameters())
    norms = torch.empty(len(y), dtype=torch.float64)
    for i in range(len(y)):
        loss = F.cross_entropy(model(X[i:i + 1]), y[i:i + 1])
        grads = torch.autograd.grad(loss, params)
        norms[i] = torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()
    return norms.numpy()


def vmap_norms(model, X, y, batch_size):
    """``torch.func.vmap(grad)`` over each batch: the per-sample gradients, then their norms."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def sample_loss(values, x, target):
        output = torch.func.functional_call(model, values, (x.unsqueeze(0),))
        return F.cross_entropy(output, target.unsqueeze(0))

    per_sample_grads = torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0))
    norms = []
    for start in range(0, len(y), batch_size):
        grads = per_sample_grads(params, X[start:start + batch_size], y[start:start + batch_size])
        norms.append(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()).sqrt())
    return torch.cat(norms).double().cpu().numpy()


ROUTES = {
    "plain forward+backward": plain_pass,
    "per_sample_grad_norms": ghost_norms,
    "per-sample backward loop": loop_norms,
    "torch.func.vmap(grad)": vmap_norms,
}


def measure(model, X, y, batch_size, repeats, device):
    """Median seconds of every route, and each route's norms."""
    def timed(route):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = route(model, X, y, batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start, result

    seconds = {name: [] for name in ROUTES}
    results = {}
    for round_ in range(repeats + 1):
        for name, route in ROUTES.items():
            elapsed, results[name] = timed(route)
            if round_ > 0:  # round 0 warms up allocators and kernels
                seconds[name].append(elapsed)
    return {name: statistics.median(times) for name, times in seconds.items()}, results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 keeps timings stable on a shared machine)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    X = torch.randn(args.n_samples, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (args.n_samples,), device=device)
    print(f"{args.n_samples} samples of 1x28x28, batch size {args.batch_size}, "
          f"{args.repeats} interleaved repeats, medians; device {device}, "
          f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}")
    models = (("MLP 784-256-10", make_mlp), ("CNN 2 conv + 2 linear", make_cnn))
    for model_name, make_model in models:
        model = make_model().to(device).eval()
        medians, results = measure(model, X, y, args.batch_size, args.repeats, device)
        reference = results["per-sample backward loop"]
        plain = medians["plain forward+backward"]
        print(f"\n{model_name}")
        print(f"  {'route':28s} {'median s':>10s} {'ratio to plain':>15s} {'max rel. diff':>14s}")
        for name, median in medians.items():
            diff = ""
            if name != "plain forward+backward":
                diff = f"{np.max(np.abs(results[name] - reference) / reference):.1e}"
            print(f"  {name:28s} {median:10.4f} {median / plain:15.2f} {diff:>14s}")


if __name__ == "__main__":
    main()
