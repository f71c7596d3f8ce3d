"""GPU check: training speed, gradient-norm cost, recorder overhead and a fairness run.

One command measures, on one device, what a GPU session needs to know and
writes it to one JSON file (its schema is documented in the user guide,
"GPUs and distributed sweeps", section "The GPU check"):

1. ``recipe_throughput``: one epoch of the paper's recipes on synthetic
   data, VGG-19 on CIFAR-100-shaped images and ResNet-18 on
   TinyImageNet-shaped ones, through skorch (``net.fit``, with and without
   the recipe's augmentation) and through a plain PyTorch loop; images per
   second and the ratios.
2. ``grad_norms``: time of :func:`skprune.per_sample_grad_norms` divided by
   that of one plain forward + backward pass, for the same two networks.
3. ``recorder_overhead``: skorch training with the training-dynamics
   recorder and its batch sampler over the same training without.
4. ``fairness``: a short Fashion-MNIST run of ``benchmarks.fairness`` (the
   ``demo`` preset at one density and one seed); scikit-learn's digits where
   the Fashion-MNIST files are missing.
5. ``amp_channels_last``: the two paper networks with
   :class:`~skprune.models.RecipeNet`'s ``amp`` and ``channels_last`` on and
   off.

Each measurement is guarded: one that fails records its error and the
others still run; the exit status is 1 if any failed (or was skipped for
lack of time), else 0. The JSON file is rewritten after every measurement,
so an interrupted run leaves what it finished.

Examples
--------
On a GPU (a few minutes on one H200; ``make gpu-check`` runs this)::

    python -m benchmarks.gpu_check --out results/gpu_check.json --data-root .fmnist

Seconds-long, on the CPU, with tiny sizes (what the tests run)::

    python -m benchmarks.gpu_check --tiny --device cpu --out /tmp/gpu_check.json
"""

import argparse
import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch

from ._gpu_measure import (
    Network,
    PartialFailure,
    amp_channels_last,
    describe,
    fairness_run,
    fashion_mnist_missing,
    grad_norm_cost,
    recipe_throughput,
    recorder_overhead,
    release_memory,
)

#: Version of the JSON layout; bumped when a key changes meaning or goes away.
SCHEMA_VERSION = 1

#: The parts of the check, in the order they run and appear in the JSON.
PARTS = ("recipe_throughput", "grad_norms", "recorder_overhead", "fairness",
         "amp_channels_last")

#: Seconds after which a full run starts no further measurement: the device
#: sessions it is made for end their commands at 10 minutes.
DEFAULT_TIME_BUDGET = 420.0


@dataclass
class Profile:
    """Sizes of every measurement: the full GPU run's, or a tiny CPU run's.

    Per-network sizes are dicts keyed by network name.
    """

    networks: dict
    recorder_networks: dict
    throughput_samples: dict
    amp_samples: dict
    warmup_batches: int
    grad_samples: dict
    grad_batch_size: int
    grad_repeats: int
    recorder_samples: dict
    recorder_epochs: int
    recorder_repeats: int
    fairness_args: list = field(default_factory=list)
    time_budget: float = DEFAULT_TIME_BUDGET


def full_profile():
    """The GPU run: epochs of a few seconds each on an H200, a few minutes in all."""
    return Profile(
        networks={
            "vgg19": Network("vgg19", "paper-cifar100-vgg19", 100, (3, 32, 32), 128),
            "resnet18": Network("resnet18", "paper-tinyimagenet-resnet18", 200, (3, 64, 64), 256),
        },
        recorder_networks={
            # Cheap batches make the per-batch cost of recording visible.
            "cnn": Network("cnn", "fashion-mnist-cnn", 10, (1, 28, 28), 128),
            "vgg19": Network("vgg19", "paper-cifar100-vgg19", 100, (3, 32, 32), 128),
        },
        throughput_samples={"vgg19": 25000, "resnet18": 10000},
        amp_samples={"vgg19": 25000, "resnet18": 10000},
        warmup_batches=10,
        grad_samples={"vgg19": 4096, "resnet18": 2048},
        grad_batch_size=256,
        grad_repeats=3,
        recorder_samples={"cnn": 30000, "vgg19": 5000},
        recorder_epochs=1,
        recorder_repeats=5,
        fairness_args=["--preset", "demo", "--densities", "0.3", "--seeds", "0"],
    )


def tiny_profile():
    """A seconds-long CPU run of every code path: a handful of small images.

    It checks the code, not the speed: the paper networks' slots keep their
    recipes (learning rate, weight decay, augmentation, classes) but train
    the small CNN, on 16x16 images, two at a time (VGG-19 and ResNet-18
    take most of a second each just to initialize on a CPU).
    """
    vgg = Network("cnn", "paper-cifar100-vgg19", 100, (3, 16, 16), 2)
    return Profile(
        networks={
            "vgg19": vgg,
            "resnet18": Network("cnn", "paper-tinyimagenet-resnet18", 200, (3, 16, 16), 2),
        },
        recorder_networks={
            "cnn": Network("cnn", "fashion-mnist-cnn", 10, (1, 8, 8), 8),
            "vgg19": vgg,
        },
        throughput_samples={"vgg19": 5, "resnet18": 5},
        amp_samples={"vgg19": 5, "resnet18": 5},
        warmup_batches=0,
        grad_samples={"vgg19": 4, "resnet18": 4},
        grad_batch_size=2,
        grad_repeats=2,
        recorder_samples={"cnn": 20, "vgg19": 5},
        recorder_epochs=1,
        recorder_repeats=2,
        fairness_args=["--preset", "demo", "--densities", "0.5", "--seeds", "0",
                       "--n-train", "200", "--epochs", "1", "--strategies", "el2n",
                       "--protocols", "Random", "Strategy+MetriQ", "--no-full-reference"],
        time_budget=math.inf,
    )


# Command line ---------------------------------------------------------------------


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text}")
    return value


def _device(text):
    try:
        return torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} ({exc})") from None


def build_parser():
    """The ``argparse`` parser of ``python -m benchmarks.gpu_check``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check",
        description="Measure skprune's training, gradient-norm and recording speed on a "
                    "GPU, and run a short fairness benchmark; write one JSON file.",
    )
    parser.add_argument("--out", default="results/gpu_check.json", metavar="FILE",
                        help="the JSON file written (default: results/gpu_check.json)")
    parser.add_argument("--device", type=_device, default=torch.device("cuda"),
                        help="torch device of the measurements (default: cuda)")
    parser.add_argument("--tiny", action="store_true",
                        help="a few images per measurement: checks the code, not the speed")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        metavar="PART", help=f"run only these, of {', '.join(PARTS)}")
    parser.add_argument("--data-root", metavar="DIR",
                        help="Fashion-MNIST's IDX files, for the fairness run (default: "
                             "$SKPRUNE_DATA, then /usr/share/datasets/fashion-mnist)")
    size = parser.add_argument_group("sizes (defaults: the full or the --tiny profile's)")
    size.add_argument("--throughput-samples", nargs=2, type=_positive_int,
                      metavar=("VGG19", "RESNET18"), help="images of a timed epoch")
    size.add_argument("--amp-samples", nargs=2, type=_positive_int,
                      metavar=("VGG19", "RESNET18"),
                      help="images of a timed epoch with amp / channels_last")
    size.add_argument("--warmup-batches", type=_non_negative_int, metavar="N",
                      help="full batches of a warm-up epoch (plus the last, smaller one)")
    size.add_argument("--grad-samples", nargs=2, type=_positive_int,
                      metavar=("VGG19", "RESNET18"), help="samples of a gradient-norm pass")
    size.add_argument("--grad-batch-size", type=_positive_int, metavar="N")
    size.add_argument("--grad-repeats", type=_positive_int, metavar="N",
                      help="timings of each gradient-norm route (medians are compared)")
    size.add_argument("--recorder-samples", nargs=2, type=_positive_int,
                      metavar=("CNN", "VGG19"), help="training rows of the recorder runs")
    size.add_argument("--recorder-epochs", type=_positive_int, metavar="N")
    size.add_argument("--recorder-repeats", type=_positive_int, metavar="N",
                      help="timed fits with and without the recorder, interleaved")
    parser.add_argument("--fairness-n-jobs", type=int, default=1, metavar="N",
                        help="cells of the fairness run at once (default: 1, in this process)")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="start no measurement after this many seconds (default: "
                             f"{DEFAULT_TIME_BUDGET:.0f}; none with --tiny)")
    parser.add_argument("--threads", type=_positive_int, metavar="N",
                        help="torch CPU threads (default: torch's)")
    parser.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction,
                        default=True, help="let cuDNN pick the fastest kernels (default: on)")
    parser.add_argument("--seed", type=int, default=0, help="seeds data and networks")
    return parser


def profile_from_args(args):
    """The tiny or full :class:`Profile`, with the sizes given on the command line."""
    profile = tiny_profile() if args.tiny else full_profile()
    for name, keys in (
        ("throughput_samples", ("vgg19", "resnet18")),
        ("amp_samples", ("vgg19", "resnet18")),
        ("grad_samples", ("vgg19", "resnet18")),
        ("recorder_samples", ("cnn", "vgg19")),
    ):
        values = getattr(args, name)
        if values is not None:
            setattr(profile, name, dict(zip(keys, values, strict=True)))
    for name in ("warmup_batches", "grad_batch_size", "grad_repeats", "recorder_epochs",
                 "recorder_repeats", "time_budget"):
        if getattr(args, name) is not None:
            setattr(profile, name, getattr(args, name))
    return profile


# The report -------------------------------------------------------------------------


def environment(device):
    """Versions, the device, and the numerical settings that change speed.

    Each value is read on its own: one that cannot be read is ``None``
    rather than a failure of the run.
    """
    def read(getter):
        try:
            with warnings.catch_warnings():
                # Newer torch deprecates the allow_tf32 flags for fp32_precision.
                warnings.simplefilter("ignore")
                return getter()
        except Exception:  # noqa: BLE001
            return None

    def version(package):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    from skprune import __version__ as skprune_version

    on_cuda = device.type == "cuda" and torch.cuda.is_available()
    properties = read(lambda: torch.cuda.get_device_properties(
        device.index if device.index is not None else torch.cuda.current_device())
    ) if on_cuda else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": read(torch.backends.cudnn.version),
        "skprune": skprune_version,
        "packages": {name: version(name) for name in (
            "skorch", "scikit-learn", "imbalanced-learn", "numpy", "scipy", "torchvision",
            "joblib", "pandas")},
        "device": str(device),
        "device_name": None if properties is None else properties.name,
        "device_capability": (None if properties is None
                              else f"{properties.major}.{properties.minor}"),
        "device_memory_gib": (None if properties is None
                              else round(properties.total_memory / 2**30, 2)),
        "cuda_available": torch.cuda.is_available(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "float32_matmul_precision": read(torch.get_float32_matmul_precision),
        "cudnn_allow_tf32": read(lambda: bool(torch.backends.cudnn.allow_tf32)),
        "matmul_allow_tf32": read(lambda: bool(torch.backends.cuda.matmul.allow_tf32)),
    }


class Report:
    """The JSON document, written again after every measurement.

    Parameters
    ----------
    path : Path
        Where it is written (atomically: a temporary file, then a rename).
    argv : list of str
    settings : dict
    """

    def __init__(self, path, argv, settings):
        self.path = path
        self.start = time.perf_counter()
        self.data = {
            "schema_version": SCHEMA_VERSION,
            "status": "running",
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(
                timespec="seconds"),
            "total_seconds": 0.0,
            "argv": list(argv),
            "settings": settings,
            "environment": {},
            "parts": {},
            "errors": [],
        }

    def elapsed(self):
        return time.perf_counter() - self.start

    def part(self, name, settings):
        """Start a part: its entry, with the settings it shares across measurements."""
        self.data["parts"][name] = {"status": "ok", "seconds": 0.0, "error": None,
                                    "settings": settings, "results": {}}

    def record(self, part, name, entry):
        """Store one measurement's entry and fold its status into its part's.

        A part is ``"error"`` when any of its measurements failed, else
        ``"skipped"`` when any was skipped, else ``"ok"``.
        """
        record = self.data["parts"][part]
        record["results"][name] = entry
        results = record["results"].values()
        record["seconds"] = sum(result["seconds"] for result in results)
        statuses = {result["status"] for result in results}
        record["status"] = next(
            (status for status in ("error", "skipped") if status in statuses), "ok")
        if entry["status"] != "ok":
            message = f"{part}/{name}: {entry['error']}"
            self.data["errors"].append(message)
            record["error"] = "; ".join(filter(None, [record["error"], message]))
        self.write()

    def finish(self):
        self.data["status"] = "failed" if self.data["errors"] else "ok"
        self.write()
        return not self.data["errors"]

    def write(self):
        self.data["total_seconds"] = self.elapsed()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        # Strict JSON: a diverged loss is stored as null, not as NaN.
        partial.write_text(json.dumps(_finite(self.data), indent=2, allow_nan=False) + "\n")
        os.replace(partial, self.path)


def _finite(value):
    """``value`` with every NaN or infinite float (at any depth) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def measure(report, part, name, settings, function, device, log):
    """Run one measurement and record it, whatever happens.

    The entry holds ``status`` (``"ok"``, ``"error"`` or ``"skipped"``),
    ``seconds``, ``error`` (``None`` or a one-line description), the
    measurement's ``settings`` and its results; a failure also keeps the
    traceback's last lines.
    """
    budget = report.data["settings"]["time_budget_seconds"]
    if budget is not None and report.elapsed() > budget:
        entry = {"status": "skipped", "seconds": 0.0, "settings": settings,
                 "error": f"skipped: the time budget of {budget:.0f} s was spent"}
        report.record(part, name, entry)
        log(f"[{report.elapsed():6.1f} s] {part}/{name}: skipped (time budget)")
        return
    start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        results = function()
        entry = {"status": "ok", "error": None}
    except PartialFailure as exc:
        results = exc.result
        entry = {"status": "error", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - every failure goes into the JSON
        results = {"traceback": traceback.format_exc(limit=-8)}
        entry = {"status": "error", "error": describe(exc)}
    entry["seconds"] = time.perf_counter() - start
    release_memory()
    entry["settings"] = {**settings, **results.pop("settings", {})}
    if device.type == "cuda" and torch.cuda.is_available():
        entry["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    entry.update(results)
    report.record(part, name, entry)
    log(f"[{report.elapsed():6.1f} s] {part}/{name}: {entry['status']} in "
        f"{entry['seconds']:.1f} s{'' if entry['error'] is None else ': ' + entry['error']}")


def plan(profile, args, device, fairness_dir):
    """Every measurement: ``(part, name, settings, function)``, in running order."""
    seed = args.seed
    steps = []
    for name, network in profile.networks.items():
        steps.append(("recipe_throughput", name, {}, lambda network=network, name=name:
                      recipe_throughput(network, profile.throughput_samples[name],
                                        profile.warmup_batches, device, seed)))
    for name, network in profile.networks.items():
        steps.append(("grad_norms", name, {}, lambda network=network, name=name:
                      grad_norm_cost(network, profile.grad_samples[name],
                                     profile.grad_batch_size, profile.grad_repeats, device,
                                     seed)))
    for name, network in profile.recorder_networks.items():
        steps.append(("recorder_overhead", name, {}, lambda network=network, name=name:
                      recorder_overhead(network, profile.recorder_samples[name],
                                        profile.recorder_epochs, profile.recorder_repeats,
                                        profile.warmup_batches, device, seed)))
    steps.append(("fairness", "run", *_fairness_step(profile, args, fairness_dir)))
    for name, network in profile.networks.items():
        steps.append(("amp_channels_last", name, {}, lambda network=network, name=name:
                      amp_channels_last(network, profile.amp_samples[name],
                                        profile.warmup_batches, device, seed)))
    return [step for step in steps if step[0] in args.parts]


def _fairness_step(profile, args, out_dir):
    """Settings and function of the fairness run; digits where Fashion-MNIST is missing."""
    def run():
        missing = fashion_mnist_missing(args.data_root)
        argv = [*profile.fairness_args, "--out", str(out_dir), "--no-progress",
                "--n-jobs", str(args.fairness_n_jobs)]
        if missing is None:
            if args.data_root is not None:
                argv += ["--data-root", args.data_root]
        else:
            from .presets import PRESETS

            fallback = PRESETS["demo"]["fallback"]
            argv += ["--dataset", fallback["dataset"], "--recipe", fallback["recipe"]]
            if "--epochs" not in profile.fairness_args:
                argv += ["--epochs", str(fallback["net_params"]["max_epochs"])]
        result = fairness_run(argv, out_dir)
        result["settings"] = {"argv": argv, "fallback": missing is not None,
                              "fallback_reason": missing}
        return result

    # The benchmark's networks run on CUDA when it is available, whatever
    # --device says (make_net's device="auto").
    settings = {"preset": "demo", "data_root": args.data_root,
                "n_jobs": args.fairness_n_jobs, "device": "auto"}
    return settings, run


def main(argv=None):
    """Run the check; returns the exit status (0: every measurement succeeded)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    profile = profile_from_args(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = args.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = args.cudnn_benchmark

    def log(message):
        print(message, flush=True)

    settings = {
        "device": str(device),
        "tiny": args.tiny,
        "parts": list(args.parts),
        "seed": args.seed,
        "time_budget_seconds": None if math.isinf(profile.time_budget) else profile.time_budget,
        "cudnn_benchmark": bool(args.cudnn_benchmark and device.type == "cuda"),
        "threads": args.threads,
        "data_root": args.data_root,
    }
    report = Report(Path(args.out), argv, settings)
    report.data["environment"] = environment(device)
    report.write()
    log(f"GPU check on {device} ({report.data['environment'].get('device_name') or 'no GPU'}), "
        f"{'tiny' if args.tiny else 'full'} sizes -> {args.out}")

    unavailable = _unavailable(device)
    if unavailable is not None:
        log(f"error: {unavailable}; every measurement is recorded as failed.")
    part_settings = {
        "recipe_throughput": {"samples": profile.throughput_samples,
                              "warmup_batches": profile.warmup_batches},
        "grad_norms": {"samples": profile.grad_samples,
                       "batch_size": profile.grad_batch_size, "repeats": profile.grad_repeats},
        "recorder_overhead": {"samples": profile.recorder_samples,
                              "epochs": profile.recorder_epochs,
                              "repeats": profile.recorder_repeats},
        "fairness": {"args": profile.fairness_args},
        "amp_channels_last": {"samples": profile.amp_samples,
                              "warmup_batches": profile.warmup_batches},
    }
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        steps = plan(profile, args, device, Path(scratch) / "fairness")
        for part in dict.fromkeys(step[0] for step in steps):
            report.part(part, part_settings[part])
        for part, name, step_settings, function in steps:
            if unavailable is not None:
                report.record(part, name, {"status": "error", "seconds": 0.0,
                                           "settings": step_settings, "error": unavailable})
                continue
            measure(report, part, name, step_settings, function, device, log)
    ok = report.finish()
    try:
        log(summary(report.data))
    except Exception as exc:  # noqa: BLE001 - the JSON file is what counts
        log(f"(no summary: {describe(exc)})")
    log(f"{'OK' if ok else 'FAILED'} in {report.data['total_seconds']:.0f} s; "
        f"{len(report.data['errors'])} error(s). Results: {args.out}")
    return 0 if ok else 1


def _unavailable(device):
    """Why ``device`` cannot be used, or ``None``."""
    if device.type == "cuda" and not torch.cuda.is_available():
        return f"device {device} requested but CUDA is not available (torch {torch.__version__})"
    try:
        torch.zeros(1, device=device)
    except Exception as exc:  # noqa: BLE001
        return f"device {device} cannot be used: {describe(exc)}"
    return None


def summary(data):
    """A few human-readable lines with the headline numbers of a report."""
    lines = []
    parts = data["parts"]

    def ok(part):
        # Measurements that have numbers: finished, or partly failed.
        return {name: entry for name, entry in parts.get(part, {}).get("results", {}).items()
                if entry["status"] == "ok" or "variants" in entry}

    for name, entry in ok("recipe_throughput").items():
        speeds = ", ".join(f"{variant} {values['epoch_images_per_second']:.0f}"
                           for variant, values in entry["variants"].items())
        lines.append(f"{name} epoch images/s: {speeds}")
        for kind, ratio in entry.get("skorch_over_plain", {}).items():
            lines.append(f"  skorch/plain ({kind}): {ratio['epoch']:.2f} (epoch), "
                         f"{ratio['fit']:.2f} (fit)")
    for name, entry in ok("grad_norms").items():
        lines.append(f"{name} per_sample_grad_norms / forward+backward: {entry['ratio']:.2f}")
    for name, entry in ok("recorder_overhead").items():
        lines.append(f"{name} recorder overhead (median with/without): "
                     f"{entry['median_ratio']:.3f}")
    fairness = parts.get("fairness", {}).get("results", {}).get("run")
    if fairness and fairness["status"] == "ok":
        lines.append(f"fairness: {fairness['n_cells']} cells of {fairness['dataset']} in "
                     f"{fairness['wall_seconds']:.0f} s")
    for name, entry in ok("amp_channels_last").items():
        speedups = ", ".join(f"{variant} x{value:.2f}"
                             for variant, value in entry.get("speedup", {}).items())
        lines.append(f"{name} speed-up over float32: {speedups}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
