"""The GPU check (``benchmarks.gpu_check``) and RecipeNet's ``amp`` and ``channels_last``.

The check itself runs on a GPU machine; here it runs with ``--tiny --device
cpu`` so that it cannot rot, and its JSON is checked against the schema
documented in docs/user_guide/scaling.rst ("The GPU check").
"""

import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone

import skprune.models._net as net_module
from benchmarks import gpu_check
from skprune.models import RecipeNet, make_net

REPO = Path(__file__).resolve().parents[1]

# The JSON schema, as documented ---------------------------------------------------

NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))
OPTIONAL_STR = (str, type(None))

TOP_LEVEL = {
    "schema_version": int, "status": str, "started_at": str, "total_seconds": NUMBER,
    "argv": list, "settings": dict, "environment": dict, "parts": dict, "errors": list,
}
SETTINGS = {
    "device": str, "tiny": bool, "parts": list, "seed": int,
    "time_budget_seconds": OPTIONAL_NUMBER, "cudnn_benchmark": bool,
    "threads": (int, type(None)), "data_root": OPTIONAL_STR,
}
ENVIRONMENT = {
    "python": str, "platform": str, "hostname": str, "cpu_count": (int, type(None)),
    "torch_threads": int, "torch": str, "cuda": OPTIONAL_STR, "cudnn": (int, type(None)),
    "skprune": str, "packages": dict, "device": str, "device_name": OPTIONAL_STR,
    "device_capability": OPTIONAL_STR, "device_memory_gib": OPTIONAL_NUMBER,
    "cuda_available": bool, "cudnn_benchmark": bool, "float32_matmul_precision": OPTIONAL_STR,
    "cudnn_allow_tf32": (bool, type(None)), "matmul_allow_tf32": (bool, type(None)),
}
PART = {"status": str, "seconds": NUMBER, "error": OPTIONAL_STR, "settings": dict,
        "results": dict}
MEASUREMENT = {"status": str, "seconds": NUMBER, "error": OPTIONAL_STR, "settings": dict}
NETWORK_SETTINGS = {
    "model": str, "recipe": str, "n_classes": int, "input_shape": list, "batch_size": int,
    "lr": NUMBER, "momentum": NUMBER, "weight_decay": NUMBER, "augment": OPTIONAL_STR,
    "module_params": dict, "n_samples": int,
}
VARIANT = {"n_samples": int, "seconds": NUMBER, "images_per_second": NUMBER,
           "epoch_seconds": NUMBER, "epoch_images_per_second": NUMBER,
           "train_loss": OPTIONAL_NUMBER}
TABLE_ROW = {"method": str, "protocol": str, "strategy": str, "density": NUMBER,
             "mean": NUMBER, "std": OPTIONAL_NUMBER, "min": NUMBER, "max": NUMBER,
             "n_seeds": int}
MEASUREMENTS = {
    "recipe_throughput": ("vgg19", "resnet18"),
    "grad_norms": ("vgg19", "resnet18"),
    "recorder_overhead": ("cnn", "vgg19"),
    "fairness": ("run",),
    "amp_channels_last": ("vgg19", "resnet18"),
}


def has_type(value, types):
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):  # an int to isinstance, but not to JSON
        return bool in types
    return isinstance(value, types)


def check_keys(mapping, schema, where):
    """Every key of ``schema`` is in ``mapping``, with a value of the given type(s)."""
    assert isinstance(mapping, dict), f"{where} is not an object"
    for key, types in schema.items():
        assert key in mapping, f"{where} lacks {key!r}"
        assert has_type(mapping[key], types), f"{where}[{key!r}] = {mapping[key]!r}"


def check_report(report):
    """Check a whole report against the documented schema (version 1)."""
    check_keys(report, TOP_LEVEL, "report")
    assert report["schema_version"] == gpu_check.SCHEMA_VERSION == 1
    assert report["status"] in ("ok", "failed", "running")
    assert all(isinstance(arg, str) for arg in report["argv"])
    assert all(isinstance(error, str) for error in report["errors"])
    check_keys(report["settings"], SETTINGS, "settings")
    check_keys(report["environment"], ENVIRONMENT, "environment")
    assert set(report["parts"]) <= set(gpu_check.PARTS)
    for part, record in report["parts"].items():
        check_keys(record, PART, part)
        assert record["status"] in ("ok", "error", "skipped")
        assert set(record["results"]) == set(MEASUREMENTS[part])
        for name, entry in record["results"].items():
            where = f"{part}/{name}"
            check_keys(entry, MEASUREMENT, where)
            assert entry["status"] in ("ok", "error", "skipped")
            assert (entry["error"] is None) == (entry["status"] == "ok")
            if entry["status"] == "ok":
                CHECKS[part](entry, where)


def check_throughput(entry, where, variants, ratios, ratio_key):
    check_keys(entry["settings"], NETWORK_SETTINGS, f"{where} settings")
    assert set(entry["variants"]) == set(variants)
    for variant, values in entry["variants"].items():
        check_keys(values, VARIANT, f"{where} {variant}")
        assert values["images_per_second"] > 0 and values["epoch_images_per_second"] > 0
    assert set(entry[ratio_key]) == set(ratios)
    return entry[ratio_key]


def check_recipe_throughput(entry, where):
    ratios = check_throughput(
        entry, where,
        ("skorch_augment", "skorch_no_augment", "skorch_no_augment_device_tensors",
         "plain_augment", "plain_no_augment"),
        ("augment", "no_augment", "no_augment_device_tensors"), "skorch_over_plain")
    for ratio in ratios.values():
        check_keys(ratio, {"fit": NUMBER, "epoch": NUMBER}, f"{where} ratio")
    check_keys(entry["settings"], {"warmup_samples": int, "optimizer": str}, where)


def check_amp(entry, where):
    speedups = check_throughput(entry, where,
                                ("baseline", "amp", "channels_last", "amp_channels_last"),
                                ("amp", "channels_last", "amp_channels_last"), "speedup")
    assert all(isinstance(value, NUMBER) and value > 0 for value in speedups.values())
    check_keys(entry["settings"], {"input": str, "amp_dtype": str, "amp_active": bool}, where)


def check_grad_norms(entry, where):
    check_keys(entry, {
        "plain_seconds": list, "per_sample_grad_norms_seconds": list,
        "plain_median_seconds": NUMBER, "per_sample_grad_norms_median_seconds": NUMBER,
        "ratio": NUMBER, "norms_finite": bool,
    }, where)
    assert entry["norms_finite"] and entry["ratio"] > 0
    check_keys(entry["settings"], NETWORK_SETTINGS, f"{where} settings")


def check_recorder(entry, where):
    check_keys(entry, {
        "without_seconds": list, "with_seconds": list, "median_without_seconds": NUMBER,
        "median_with_seconds": NUMBER, "median_ratio": NUMBER, "recorded_shape": list,
    }, where)
    assert len(entry["without_seconds"]) == len(entry["with_seconds"]) >= 1
    assert entry["recorded_shape"] == [entry["settings"]["epochs"],
                                       entry["settings"]["n_samples"]]


def check_fairness(entry, where):
    check_keys(entry, {
        "wall_seconds": NUMBER, "n_cells": int, "dataset": str,
        "n_train": (int, type(None)), "worst_class_recall": list, "accuracy": list,
        "worst_class_recall_markdown": str, "log_tail": str,
    }, where)
    check_keys(entry["settings"], {"argv": list, "fallback": bool,
                                   "fallback_reason": OPTIONAL_STR}, f"{where} settings")
    assert entry["n_cells"] >= 1 and entry["worst_class_recall"]
    for row in entry["worst_class_recall"] + entry["accuracy"]:
        check_keys(row, TABLE_ROW, f"{where} table row")
        assert 0 <= row["min"] <= row["mean"] <= row["max"] <= 1


CHECKS = {
    "recipe_throughput": check_recipe_throughput,
    "grad_norms": check_grad_norms,
    "recorder_overhead": check_recorder,
    "fairness": check_fairness,
    "amp_channels_last": check_amp,
}


def run_check(tmp_path, *options):
    """Run the check in this process; returns its exit status and its report."""
    out = tmp_path / "out" / "gpu_check.json"
    status = gpu_check.main(["--out", str(out), *options])
    return status, json.loads(out.read_text())


# The check -----------------------------------------------------------------------------


# Tiny runs prune to a handful of rows, which MetriQ warns about.
@pytest.mark.filterwarnings("ignore:MetriQ cuts")
def test_tiny_run_writes_a_valid_report(tmp_path, capsys):
    # An empty data root: the fairness run falls back to digits, without
    # trying to download Fashion-MNIST, on any machine.
    empty = tmp_path / "no-data"
    empty.mkdir()
    status, report = run_check(tmp_path, "--tiny", "--device", "cpu",
                               "--data-root", str(empty))
    assert status == 0, report["errors"]
    check_report(report)
    assert report["status"] == "ok" and report["errors"] == []
    assert list(report["parts"]) == list(gpu_check.PARTS)
    assert all(part["status"] == "ok" for part in report["parts"].values())
    fairness = report["parts"]["fairness"]["results"]["run"]
    assert fairness["dataset"] == "digits"
    assert fairness["settings"]["fallback"] is True
    assert "Fashion-MNIST" in fairness["settings"]["fallback_reason"]
    amp = report["parts"]["amp_channels_last"]["results"]["vgg19"]
    assert amp["settings"]["amp_active"] is False
    assert "OK in" in capsys.readouterr().out


def test_a_failing_measurement_is_recorded_and_the_others_run(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: out of memory\nmore detail")

    monkeypatch.setattr(gpu_check, "grad_norm_cost", broken)
    status, report = run_check(tmp_path, "--tiny", "--device", "cpu",
                               "--parts", "grad_norms", "recorder_overhead")
    assert status == 1
    check_report(report)
    assert report["status"] == "failed"
    grad = report["parts"]["grad_norms"]
    assert grad["status"] == "error"
    for entry in grad["results"].values():
        assert entry["error"] == "RuntimeError: CUDA error: out of memory more detail"
        assert "Traceback" in entry["traceback"]
    assert report["errors"] == [f"grad_norms/{name}: {grad['results'][name]['error']}"
                                for name in ("vgg19", "resnet18")]
    assert report["parts"]["recorder_overhead"]["status"] == "ok"


def test_a_failing_variant_keeps_the_others(tmp_path, monkeypatch):
    from benchmarks import _gpu_measure

    def broken(*args, **kwargs):
        raise ValueError("plain loop broke")

    monkeypatch.setattr(_gpu_measure, "plain_epoch", broken)
    status, report = run_check(tmp_path, "--tiny", "--device", "cpu",
                               "--parts", "recipe_throughput")
    assert status == 1
    check_report(report)
    entry = report["parts"]["recipe_throughput"]["results"]["vgg19"]
    assert entry["status"] == "error"
    assert set(entry["variant_errors"]) == {"plain_augment", "plain_no_augment"}
    assert set(entry["variants"]) == {"skorch_augment", "skorch_no_augment",
                                      "skorch_no_augment_device_tensors"}
    assert entry["skorch_over_plain"] == {}


def test_spent_time_budget_skips_measurements(tmp_path):
    status, report = run_check(tmp_path, "--tiny", "--device", "cpu",
                               "--parts", "grad_norms", "--time-budget", "0")
    assert status == 1
    check_report(report)
    part = report["parts"]["grad_norms"]
    assert part["status"] == "skipped"
    assert all(entry["status"] == "skipped" for entry in part["results"].values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_fails_every_measurement(tmp_path):
    status, report = run_check(tmp_path, "--parts", "grad_norms", "fairness")
    assert status == 1
    check_report(report)
    assert len(report["errors"]) == 3
    assert all("CUDA is not available" in error for error in report["errors"])


def test_bad_options_are_usage_errors(tmp_path, capsys):
    for options in (["--device", "gpu0"], ["--throughput-samples", "10"],
                    ["--grad-repeats", "0"], ["--parts", "everything"]):
        with pytest.raises(SystemExit) as exc:
            gpu_check.main(["--out", str(tmp_path / "x.json"), *options])
        assert exc.value.code == 2
    assert not (tmp_path / "x.json").exists()


def test_sizes_from_the_command_line():
    args = gpu_check.build_parser().parse_args(
        ["--throughput-samples", "100", "50", "--grad-repeats", "4", "--tiny"])
    profile = gpu_check.profile_from_args(args)
    assert profile.throughput_samples == {"vgg19": 100, "resnet18": 50}
    assert profile.grad_repeats == 4
    assert profile.amp_samples == gpu_check.tiny_profile().amp_samples
    full = gpu_check.full_profile()
    assert full.throughput_samples == {"vgg19": 25000, "resnet18": 10000}
    assert full.networks["vgg19"].input_shape == (3, 32, 32)
    assert full.networks["resnet18"].input_shape == (3, 64, 64)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_target_builds_the_venv_only_for_the_venv_python():
    def dry_run(*variables):
        # Under a parent make (make test), MAKEFLAGS would add "Entering
        # directory" lines.
        env = {key: value for key, value in os.environ.items()
               if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        return subprocess.run(["make", "--no-print-directory", "-n", "gpu-check", *variables],
                              cwd=REPO, env=env, capture_output=True, text=True,
                              check=True).stdout

    other = dry_run("GPU_CHECK_PY=python3", "GPU_CHECK_OUT=/tmp/out/check.json",
                    "GPU_CHECK_ARGS=--data-root .fmnist")
    assert other.strip() == (
        "python3 -m benchmarks.gpu_check --out /tmp/out/check.json --data-root .fmnist")
    default = dry_run()
    assert ".venv/bin/python -m benchmarks.gpu_check --out results/gpu_check.json" in default


# RecipeNet's amp and channels_last ---------------------------------------------------------


def images(n=24, channels=3, size=8, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, channels, size, size)).astype(np.float32)
    y = np.arange(n) % n_classes
    X[:, 0] += y[:, None, None]  # learnable
    return X, y


def small_net(**params):
    settings = dict(input_shape=(3, 8, 8), max_epochs=2, batch_size=8, device="cpu",
                    augment="crop-flip")
    settings.update(params)
    return make_net("cnn", 3, "paper-cifar100-vgg19", **settings)


@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_amp_and_channels_last_train_and_predict_on_cpu(amp, channels_last):
    X, y = images()
    torch.manual_seed(0)
    net = small_net(amp=amp, channels_last=channels_last).fit(X, y)
    assert np.isfinite(net.history[:, "train_loss"]).all()
    proba = net.predict_proba(X)
    assert proba.dtype == np.float32 and proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    conv = net.module_.features[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) is channels_last
    # amp does nothing on the CPU: the same seed gives the same network.
    torch.manual_seed(0)
    reference = small_net(channels_last=channels_last).fit(X, y)
    np.testing.assert_allclose(proba, reference.predict_proba(X), rtol=1e-4, atol=1e-6)


class ConvBN(torch.nn.Module):
    """Convolutions with batch norm: the layers of VGG and ResNet that care about layout."""

    def __init__(self, n_classes=3):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, stride=2, padding=1),
            torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(), torch.nn.Linear(8, n_classes),
        )

    def forward(self, X):
        return self.layers(X)


def test_channels_last_with_batch_norm_matches_the_default_layout():
    X, y = images()
    results = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        net = RecipeNet(ConvBN, max_epochs=2, batch_size=8, lr=0.05, device="cpu",
                        train_split=None, verbose=0, channels_last=channels_last).fit(X, y)
        conv = net.module_.layers[0]
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) is channels_last
        results.append(net.predict_proba(X))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-6)


def test_channels_last_with_a_lazy_module():
    X, y = images()
    net = make_net("cnn", 3, max_epochs=1, device="cpu", channels_last=True).fit(X, y)
    assert net.predict(X).shape == (len(X),)


def test_amp_autocasts_on_an_accelerator(monkeypatch):
    # No GPU here: pretend the CPU is one, to run the autocast path.
    monkeypatch.setattr(net_module, "_NO_AMP_DEVICE_TYPES", frozenset())
    X, y = images()
    dtypes = []
    net = small_net(amp=True).initialize()
    net.module_.classifier[-1].register_forward_hook(
        lambda layer, inputs, output: dtypes.append(output.dtype))
    torch.manual_seed(0)
    net.partial_fit(X, y)
    assert set(dtypes) == {torch.bfloat16}
    assert np.isfinite(net.history[:, "train_loss"]).all()
    assert all(p.dtype == torch.float32 for p in net.module_.parameters())
    assert net.predict_proba(X).dtype == np.float32
    assert net.infer(torch.as_tensor(X)).dtype == torch.float32
    # Off, or on the CPU, nothing is autocast.
    dtypes.clear()
    net.set_params(amp=False).predict_proba(X)
    monkeypatch.undo()
    net.set_params(amp=True).predict_proba(X)
    assert set(dtypes) == {torch.float32}


def test_amp_and_channels_last_are_parameters():
    net = small_net(amp=True, channels_last=True)
    assert net.get_params()["amp"] is True and net.get_params()["channels_last"] is True
    assert small_net().get_params()["amp"] is False
    cloned = clone(net)
    assert cloned.amp is True and cloned.channels_last is True
    X, y = images()
    fitted = pickle.loads(pickle.dumps(net.fit(X, y)))
    assert fitted.amp is True and fitted.channels_last is True
    np.testing.assert_allclose(fitted.predict_proba(X), net.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize("name", ["amp", "channels_last"])
def test_amp_and_channels_last_must_be_booleans(name):
    X, y = images()
    with pytest.raises(ValueError, match=f"{name} must be True or False"):
        small_net(**{name: "yes"}).fit(X, y)


def test_amp_and_channels_last_with_device_none():
    # skorch's device=None leaves the module where it is: amp reads its device.
    X, y = images()
    net = small_net(device=None, amp=True, channels_last=True).fit(X, y)
    assert net.predict_proba(X).dtype == np.float32
