"""The measurements of the GPU check (:mod:`benchmarks.gpu_check`).

Each public function measures one thing for one network and returns plain
JSON data (floats, ints, strings, lists and dicts). Every timed region is
bracketed by ``torch.cuda.synchronize`` on a CUDA device, so that it ends
when the device's work does, not when Python has queued it; every timed
training epoch follows an untimed warm-up epoch with the same batch shapes
(cuDNN's autotuner, the caching allocator and lazy CUDA initialization
all pay on first use of a shape).
"""

import gc
import io
import json
import statistics
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from skprune import per_sample_grad_norms
from skprune.callbacks import PositionBatchSampler, TrainingDynamicsRecorder
from skprune.models import AUGMENTATIONS, RECIPES, RandomCropFlip, make_net


@dataclass(frozen=True)
class Network:
    """A benchmark network, with the recipe it trains with and the data it sees.

    Parameters
    ----------
    model : str
        A model name of :func:`skprune.models.make_net`.
    recipe : str
        A key of :data:`skprune.models.RECIPES`.
    n_classes : int
    input_shape : tuple of int
        ``(channels, height, width)`` of the synthetic images.
    batch_size : int
        The recipe's, unless a tiny run overrides it.
    module_params : tuple of (str, object) pairs, default=()
        Further ``module__*`` parameters of ``make_net`` (pairs rather than a
        dict, so that a network stays hashable).
    """

    model: str
    recipe: str
    n_classes: int
    input_shape: tuple
    batch_size: int
    module_params: tuple = ()

    def settings(self):
        """The network's description, as stored with every measurement."""
        recipe = RECIPES[self.recipe]
        return {
            "model": self.model,
            "recipe": self.recipe,
            "n_classes": self.n_classes,
            "input_shape": list(self.input_shape),
            "batch_size": self.batch_size,
            "lr": recipe.lr,
            "momentum": recipe.momentum,
            "weight_decay": recipe.weight_decay,
            "augment": recipe.augment,
            "module_params": dict(self.module_params),
        }

    def net(self, device, **params):
        """A one-epoch :class:`~skprune.models.RecipeNet` for this network."""
        settings = {
            "input_shape": self.input_shape,
            "batch_size": self.batch_size,
            "max_epochs": 1,
            "device": str(device),
            # A warm-up epoch of a few rows lacks classes the timed epoch has.
            "classes": np.arange(self.n_classes),
            **{f"module__{name}": value for name, value in self.module_params},
        }
        settings.update(params)
        return make_net(self.model, self.n_classes, self.recipe, **settings)


# Timing helpers ---------------------------------------------------------------


def synchronize(device):
    """Wait for every queued kernel of ``device`` (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device):
    """Seconds that ``function()`` takes, device work included, and its result."""
    synchronize(device)
    start = time.perf_counter()
    result = function()
    synchronize(device)
    return time.perf_counter() - start, result


def warmup_size(n_samples, batch_size, n_batches):
    """Samples of a warm-up epoch with the timed epoch's batch shapes.

    ``n_batches`` full batches plus the timed epoch's last, smaller batch
    (cuDNN's autotuner picks kernels per input shape), at most
    ``n_samples`` and at least one batch.
    """
    n_warmup = min(n_samples, n_batches * batch_size + n_samples % batch_size)
    # An epoch of full batches only still needs one batch to warm up.
    return n_warmup or min(n_samples, batch_size)


def synthetic_images(network, n_samples, device, seed):
    """Standard normal images and uniform labels on ``device``."""
    generator = torch.Generator(device=device).manual_seed(seed)
    X = torch.randn((n_samples, *network.input_shape), generator=generator, device=device)
    y = torch.randint(0, network.n_classes, (n_samples,), generator=generator, device=device)
    return X, y


# 1. and 5.: training throughput -------------------------------------------------


def skorch_epoch(network, X, y, n_warmup, device, **params):
    """Throughput of a one-epoch skorch fit, after a warm-up epoch.

    ``X`` and ``y`` are numpy arrays (skorch's usual input: batches are
    collated on the host and copied to the device) or tensors on the device.
    The timed call is ``net.partial_fit``: ``fit`` without initializing a
    new module (which a plain loop does not time either), so it counts
    skorch's per-fit work (dataset, data loader, callbacks) and the epoch.
    skorch's own epoch timer (history ``"dur"``) counts the epoch alone.
    """
    net = network.net(device, **params)
    net.fit(X[:n_warmup], y[:n_warmup])
    seconds, _ = timed(lambda: net.partial_fit(X, y), device)
    epoch_seconds = float(net.history[-1, "dur"])
    loss = float(net.history[-1, "train_loss"])
    return _throughput(len(y), seconds, epoch_seconds) | {"train_loss": loss}


def plain_epoch(network, X, y, n_warmup, device, augment):
    """Throughput of a plain PyTorch training loop over device tensors.

    The same module (built and initialized by the same ``make_net`` call),
    loss, optimizer settings, batch size and shuffling as :func:`skorch_epoch`,
    without skorch: batches are indexed on the device, the recipe's
    augmentation (when ``augment``) runs on the device, and nothing is
    copied back to the host per batch.
    """
    net = network.net(device).initialize()
    module = net.module_
    optimizer = torch.optim.SGD(
        module.parameters(), lr=net.lr, momentum=net.optimizer__momentum,
        weight_decay=net.optimizer__weight_decay,
    )
    recipe = RECIPES[network.recipe]
    transform = None
    if augment and recipe.augment is not None:
        crop, flip = AUGMENTATIONS[recipe.augment]
        transform = RandomCropFlip(crop, flip, padding=recipe.augment_padding)
    batch_size = network.batch_size
    module.train()

    def epoch(n_samples):
        order = torch.randperm(n_samples, device=device)
        for start in range(0, n_samples, batch_size):
            batch = order[start:start + batch_size]
            X_batch, y_batch = X[batch], y[batch]
            if transform is not None:
                X_batch = transform(X_batch)
            loss = F.cross_entropy(module(X_batch), y_batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return loss.detach()

    epoch(n_warmup)
    seconds, loss = timed(lambda: epoch(len(y)), device)
    loss = float(loss)
    return _throughput(len(y), seconds, seconds) | {"train_loss": loss}


def recipe_throughput(network, n_samples, warmup_batches, device, seed):
    """Images per second through skorch and through a plain loop, and their ratios.

    Variants: skorch with the recipe's augmentation and without, on numpy
    inputs; skorch without augmentation on device tensors; the plain loop
    with and without augmentation. Ratios are skorch's images per second
    divided by the plain loop's, from the whole fit (``"fit"``) and from the
    epoch alone (``"epoch"``).
    """
    X, y = synthetic_images(network, n_samples, device, seed)
    X_host, y_host = X.cpu().numpy(), y.cpu().numpy()
    n_warmup = warmup_size(n_samples, network.batch_size, warmup_batches)
    recipe_augment = RECIPES[network.recipe].augment
    runs = {
        "skorch_augment": lambda: skorch_epoch(
            network, X_host, y_host, n_warmup, device, augment=recipe_augment),
        "skorch_no_augment": lambda: skorch_epoch(
            network, X_host, y_host, n_warmup, device, augment=None),
        "skorch_no_augment_device_tensors": lambda: skorch_epoch(
            network, X, y, n_warmup, device, augment=None),
        "plain_augment": lambda: plain_epoch(network, X, y, n_warmup, device, augment=True),
        "plain_no_augment": lambda: plain_epoch(network, X, y, n_warmup, device, augment=False),
    }
    variants, errors = _run_variants(runs, seed)
    ratios = {}
    for name, skorch, plain in (
        ("augment", "skorch_augment", "plain_augment"),
        ("no_augment", "skorch_no_augment", "plain_no_augment"),
        ("no_augment_device_tensors", "skorch_no_augment_device_tensors", "plain_no_augment"),
    ):
        if skorch in variants and plain in variants:
            ratios[name] = {
                "fit": variants[skorch]["images_per_second"]
                / variants[plain]["images_per_second"],
                "epoch": variants[skorch]["epoch_images_per_second"]
                / variants[plain]["epoch_images_per_second"],
            }
    result = {
        "settings": {**network.settings(), "n_samples": n_samples,
                     "warmup_samples": n_warmup, "optimizer": "SGD"},
        "variants": variants,
        "skorch_over_plain": ratios,
    }
    return _with_errors(result, errors)


def amp_channels_last(network, n_samples, warmup_batches, device, seed):
    """Images per second of skorch training with ``amp`` and ``channels_last`` on and off.

    Every combination trains the recipe as it is (augmentation included)
    through :class:`~skprune.models.RecipeNet`, on device tensors so that
    host-side batch collation does not hide the module's own speed.
    Speed-ups are epoch images per second divided by the baseline's.
    """
    X, y = synthetic_images(network, n_samples, device, seed)
    n_warmup = warmup_size(n_samples, network.batch_size, warmup_batches)
    combinations = {
        "baseline": (False, False),
        "amp": (True, False),
        "channels_last": (False, True),
        "amp_channels_last": (True, True),
    }
    runs = {
        name: (lambda amp=amp, channels_last=channels_last: skorch_epoch(
            network, X, y, n_warmup, device, amp=amp, channels_last=channels_last))
        for name, (amp, channels_last) in combinations.items()
    }
    variants, errors = _run_variants(runs, seed)
    speedups = {}
    if "baseline" in variants:
        base = variants["baseline"]["epoch_images_per_second"]
        speedups = {name: variant["epoch_images_per_second"] / base
                    for name, variant in variants.items() if name != "baseline"}
    result = {
        "settings": {**network.settings(), "n_samples": n_samples, "warmup_samples": n_warmup,
                     "input": "device tensors", "amp_dtype": "bfloat16",
                     # RecipeNet's amp does nothing on a CPU.
                     "amp_active": device.type != "cpu"},
        "variants": variants,
        "speedup": speedups,
    }
    return _with_errors(result, errors)


# 2.: per-sample gradient norms ------------------------------------------------------


def grad_norm_cost(network, n_samples, batch_size, repeats, device, seed):
    """Time of :func:`skprune.per_sample_grad_norms` over one plain forward+backward pass.

    Both go over the same batches of the same eval-mode module: the plain
    pass takes the parameter gradients of each batch's summed loss. After a
    warm-up on one batch, repeats alternate between the two; medians are
    compared.
    """
    net = network.net(device).initialize()
    module = net.module_.eval()
    X, y = synthetic_images(network, n_samples, device, seed)
    parameters = [parameter for parameter in module.parameters() if parameter.requires_grad]

    def plain(X, y):
        for start in range(0, len(y), batch_size):
            loss = F.cross_entropy(module(X[start:start + batch_size]),
                                   y[start:start + batch_size], reduction="sum")
            torch.autograd.grad(loss, parameters)

    def norms(X, y):
        return per_sample_grad_norms(module, X, y, batch_size=batch_size)

    plain(X[:batch_size], y[:batch_size])
    norms(X[:batch_size], y[:batch_size])
    plain_seconds, norm_seconds = [], []
    for _ in range(repeats):
        plain_seconds.append(timed(lambda: plain(X, y), device)[0])
        seconds, values = timed(lambda: norms(X, y), device)
        norm_seconds.append(seconds)
    plain_median = statistics.median(plain_seconds)
    norm_median = statistics.median(norm_seconds)
    result = {
        "settings": {**network.settings(), "n_samples": n_samples, "batch_size": batch_size,
                     "repeats": repeats, "mode": "eval"},
        "plain_seconds": plain_seconds,
        "per_sample_grad_norms_seconds": norm_seconds,
        "plain_median_seconds": plain_median,
        "per_sample_grad_norms_median_seconds": norm_median,
        "ratio": norm_median / plain_median,
        "norms_finite": bool(np.isfinite(values).all()),
    }
    return result


# 3.: recorder overhead ----------------------------------------------------------------


def recorder_overhead(network, n_samples, epochs, repeats, warmup_batches, device, seed):
    """Wall time of skorch training with and without the training-dynamics recorder.

    The recorder is wired as the training-dynamics pruners wire it:
    ``TrainingDynamicsRecorder(record="train")`` and a shuffling
    :class:`~skprune.callbacks.PositionBatchSampler` with the net's batch
    size. Both nets train without augmentation (as the pruners' query nets
    do), on numpy inputs. After a warm-up fit of each, every repeat times
    ``partial_fit`` on a freshly initialized net of each kind, alternating
    their order; ``median_ratio`` is the median over repeats of
    (with / without).
    """
    X, y = synthetic_images(network, n_samples, device, seed)
    X, y = X.cpu().numpy(), y.cpu().numpy()
    batch_size = network.batch_size

    def make(recorded, n):
        params = {"max_epochs": epochs, "augment": None}
        if recorded:
            params.update(
                callbacks=[("dynamics", TrainingDynamicsRecorder(record="train"))],
                iterator_train__batch_sampler=PositionBatchSampler(n, batch_size, shuffle=True),
                iterator_train__batch_size=1,
                iterator_train__shuffle=False,
                iterator_train__drop_last=False,
            )
        return network.net(device, **params)

    n_warmup = warmup_size(n_samples, batch_size, warmup_batches)
    for recorded in (False, True):
        make(recorded, n_warmup).fit(X[:n_warmup], y[:n_warmup])
    seconds = {False: [], True: []}
    recorded_shape = None
    for repeat in range(repeats):
        for recorded in ((False, True) if repeat % 2 == 0 else (True, False)):
            # Building the module takes as long as a short epoch; only the
            # training, where the recorder works, is timed.
            net = make(recorded, n_samples).initialize()
            torch.manual_seed(seed + repeat)
            elapsed, _ = timed(lambda net=net: net.partial_fit(X, y), device)
            seconds[recorded].append(elapsed)
            if recorded:
                recorder = dict(net.callbacks_)["dynamics"]
                recorded_shape = list(recorder.proba_.shape)
    without, with_ = seconds[False], seconds[True]
    ratios = [with_time / without_time
              for with_time, without_time in zip(with_, without, strict=True)]
    return {
        "settings": {**network.settings(), "n_samples": n_samples, "epochs": epochs,
                     "repeats": repeats, "warmup_samples": n_warmup, "record": "train",
                     "augment": None, "input": "numpy"},
        "without_seconds": without,
        "with_seconds": with_,
        "median_without_seconds": statistics.median(without),
        "median_with_seconds": statistics.median(with_),
        "median_ratio": statistics.median(ratios),
        "recorded_shape": recorded_shape,
    }


# 4.: the fairness benchmark ---------------------------------------------------------------


def fashion_mnist_missing(data_root):
    """Why Fashion-MNIST cannot be loaded from ``data_root`` (``None``: it can).

    Never downloads: the check must behave the same on a machine without
    internet access and one with it.
    """
    from skprune.datasets import load_fashion_mnist

    try:
        load_fashion_mnist(data_root, download=False)
    except FileNotFoundError as exc:
        return " ".join(str(exc).split())
    return None


def fairness_run(argv, out_dir):
    """Run ``benchmarks.fairness.main(argv)`` in this process and summarize its output.

    Its printed output is captured (its last lines are kept), and its
    results are read from the files it documents: ``results.jsonl``,
    ``config.json`` and ``tables/worst_class_recall.csv|md``.

    Raises
    ------
    RuntimeError
        If the benchmark exits with a non-zero status; the message holds the
        end of its output.
    """
    from . import fairness

    log = io.StringIO()
    start = time.perf_counter()
    with redirect_stdout(log), redirect_stderr(log):
        try:
            status = fairness.main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            status = exc.code
    wall = time.perf_counter() - start
    output = log.getvalue()
    if status not in (0, None):
        raise RuntimeError(
            f"benchmarks.fairness exited with status {status}: " + _tail(output, 1500)
        )
    out_dir = Path(out_dir)
    rows = [json.loads(line) for line in
            (out_dir / "results.jsonl").read_text().splitlines() if line.strip()]
    config = json.loads((out_dir / "config.json").read_text())
    # The settings may sit at the top level or under "config".
    config = config.get("config", config)
    tables = out_dir / "tables"
    return {
        "wall_seconds": wall,
        "n_cells": len(rows),
        "dataset": config.get("dataset"),
        "n_train": config.get("n_train"),
        "worst_class_recall": _read_table(tables / "worst_class_recall.csv"),
        "accuracy": _read_table(tables / "accuracy.csv"),
        "worst_class_recall_markdown": (tables / "worst_class_recall.md").read_text(),
        "log_tail": _tail(output, 2000),
    }


def _read_table(path):
    """Rows of a summary CSV, its numbers typed.

    Columns method, protocol, strategy, density, mean, std, min, max and
    n_seeds; an empty number (the std of a single seed) is ``None``.
    """
    import csv

    types = {"density": float, "mean": float, "std": float, "min": float, "max": float,
             "n_seeds": int}
    with open(path, newline="") as file:
        return [
            {key: ((types[key](value) if value != "" else None) if key in types else value)
             for key, value in row.items()}
            for row in csv.DictReader(file)
        ]


# Shared -------------------------------------------------------------------------------------


def _throughput(n_samples, seconds, epoch_seconds):
    return {
        "n_samples": n_samples,
        "seconds": seconds,
        "images_per_second": n_samples / seconds,
        "epoch_seconds": epoch_seconds,
        "epoch_images_per_second": n_samples / epoch_seconds,
    }


def _run_variants(runs, seed):
    """Run each variant, seeded; a failing one is reported and the others still run."""
    variants, errors = {}, {}
    for name, run in runs.items():
        torch.manual_seed(seed)
        try:
            variants[name] = run()
        except Exception as exc:  # noqa: BLE001 - reported in the JSON
            errors[name] = describe(exc)
            release_memory()
    return variants, errors


def _with_errors(result, errors):
    if errors:
        result["variant_errors"] = errors
        failure = PartialFailure("; ".join(f"{name}: {error}" for name, error in errors.items()))
        failure.result = result
        raise failure
    return result


class PartialFailure(Exception):
    """Some variants of a measurement failed; its ``result`` holds the others."""

    result = None


def describe(exc, max_chars=1000):
    """An exception's type and message on one line, at most ``max_chars`` long."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= max_chars else text[:max_chars - 3] + "..."


def release_memory():
    """Give the CUDA memory of finished (or failed) measurements back.

    Not between the variants of a measurement: the device has plenty, and
    a garbage collection pass takes a good part of a second in a process
    that holds torch, scikit-learn and skorch.
    """
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def _tail(text, n_chars):
    return text if len(text) <= n_chars else "..." + text[-n_chars:]
