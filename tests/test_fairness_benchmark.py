"""The fairness benchmark (``python -m benchmarks.fairness``), end to end."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from benchmarks import fairness
from benchmarks._config import (
    BenchmarkConfig,
    Cell,
    InvalidConfigError,
    corrected_epochs,
)
from benchmarks._registry import strategy as registered_strategy
from benchmarks._report import METRICS
from benchmarks.presets import PRESETS
from skprune.datasets import DATASETS, DatasetNotFoundError
from skprune.models import MODELS, RECIPES, RecipeNet


def preset_config(name):
    """The settings of a preset, without its execution defaults."""
    return BenchmarkConfig(**{key: value for key, value in PRESETS[name].items()
                              if key not in ("description", "n_jobs", "fallback")})


REPO = Path(__file__).resolve().parents[1]
SMOKE = preset_config("smoke")
ROW_FIELDS = {
    "protocol", "strategy", "method", "density", "seed", "accuracy", "worst_class_recall",
    "recall_gap", "recall_std", "mean_class_recall", "class_recall", "class_counts",
    "validation_class_recall", "n_kept", "n_train", "n_eval", "n_classes", "epochs",
    "fit_seconds", "config",
}
SUMMARY_COLUMNS = ["method", "protocol", "strategy", "density", "mean", "std", "min", "max",
                   "n_seeds"]
CLASS_COLUMNS = ["method", "protocol", "strategy", "density", "class", "mean", "std", "min",
                 "max", "n_seeds"]


def count_trainings(monkeypatch):
    """Count every network trained (query, MetriQ and final nets) in this process."""
    calls = []
    fit = RecipeNet.fit

    def counting_fit(self, X, y=None, **fit_params):
        calls.append(self.max_epochs)
        return fit(self, X, y, **fit_params)

    monkeypatch.setattr(RecipeNet, "fit", counting_fit)
    return calls


def run_in_process(out, *options):
    """``main`` on the smoke preset; returns (exit status, trainings counted)."""
    with pytest.MonkeyPatch.context() as patch:
        trainings = count_trainings(patch)
        status = fairness.main(["--preset", "smoke", "--out", str(out), "--no-progress",
                                "--figure-formats", "png",
                                *options])
    return status, len(trainings)


def read_results(out):
    lines = (Path(out) / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def metric_tables(out):
    return {metric: pd.read_csv(Path(out) / "tables" / f"{metric}.csv") for metric in METRICS}


def assert_same_tables(out, reference):
    for metric, table in metric_tables(out).items():
        pd.testing.assert_frame_equal(table, metric_tables(reference)[metric], obj=metric)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One uninterrupted in-process run of the smoke preset."""
    out = tmp_path_factory.mktemp("smoke")
    status, trainings = run_in_process(out)
    assert status == 0
    return SimpleNamespace(out=out, trainings=trainings)


def test_smoke_preset_writes_every_output(smoke_run):
    out = smoke_run.out
    rows = read_results(out)
    cells = SMOKE.cells()
    assert len(rows) == len(cells) == 11
    stored = {Cell(r["protocol"], r["strategy"], r["density"], r["seed"]) for r in rows}
    assert stored == set(cells)
    for row in rows:
        assert set(row) == ROW_FIELDS
        assert len(row["class_recall"]) == len(row["class_counts"]) == 10
        assert sum(row["class_counts"].values()) == row["n_kept"]
        assert row["n_kept"] == round(row["density"] * row["n_train"])
        assert row["worst_class_recall"] == min(row["class_recall"].values())
        assert row["config"] == SMOKE.fingerprint()
        uses_metriq = row["protocol"] in ("Strategy+MetriQ", "Random+MetriQ")
        assert (row["validation_class_recall"] is not None) == uses_metriq
        if SMOKE.epochs_correction and row["protocol"] != "Full":
            assert row["epochs"] == corrected_epochs(6, row["density"])

    config = json.loads((out / "config.json").read_text())
    assert config["fingerprint"] == SMOKE.fingerprint()
    for metric in METRICS:
        table = pd.read_csv(out / "tables" / f"{metric}.csv")
        assert list(table.columns) == SUMMARY_COLUMNS
        assert len(table) == len(cells)
        assert (table["min"] <= table["mean"]).all() and (table["mean"] <= table["max"]).all()
        markdown = (out / "tables" / f"{metric}.md").read_text()
        assert markdown.startswith("| method") and "EL2N+MetriQ" in markdown
        latex = (out / "tables" / f"{metric}.tex").read_text()
        assert "\\begin{tabular}" in latex and "Random+EL2NQ" in latex
    for field in ("class_recall", "class_counts"):
        table = pd.read_csv(out / "tables" / f"{field}.csv")
        assert list(table.columns) == CLASS_COLUMNS
        assert len(table) == 10 * len(cells)
    for name in ("el2n", "strategies"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scores_are_computed_once_per_strategy_and_seed(smoke_run):
    # One final network per cell, one EL2N query network (n_runs=1) and one
    # MetriQ network for the seed: scores are shared by the 2 densities and
    # 3 EL2N protocols, MetriQ recalls by both MetriQ protocols.
    assert smoke_run.trainings == len(SMOKE.cells()) + 1 + 1


def test_rerun_skips_finished_cells(smoke_run, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(smoke_run.out, out)
    before = (out / "results.jsonl").read_bytes()
    status, trainings = run_in_process(out)
    assert status == 0
    assert trainings == 0
    assert (out / "results.jsonl").read_bytes() == before


def comparable(rows):
    """Rows by cell, without their timings (the only field a rerun may change)."""
    return {(r["protocol"], r["strategy"], r["density"], r["seed"]):
            {k: v for k, v in r.items() if k != "fit_seconds"} for r in rows}


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_rows_and_tables(smoke_run, tmp_path):
    """Killed right after the row of a cell that computed EL2N's scores (a cache
    miss), the resumed run reads them from the cache (a hit) and must still
    produce every row exactly as the uninterrupted run did."""
    out = tmp_path / "killed"
    results = out / "results.jsonl"
    # One torch thread, as in this process (tests/conftest.py), so that the
    # subprocess computes bit-identical results.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fairness", "--preset", "smoke", "--out", str(out),
         "--no-progress", "--figure-formats", "png"],
        cwd=REPO, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120

    def scored_row_written():
        lines = results.read_text().splitlines() if results.exists() else []
        return any(json.loads(line)["protocol"] == "Strategy" for line in lines
                   if line.endswith("}"))

    while not scored_row_written():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no cell finished within 2 minutes"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    finished = results.read_text()
    assert finished.count("\n") < len(SMOKE.cells()), "the run ended before the kill"
    # A kill during a write leaves a partial last line.
    with open(results, "a") as file:
        file.write('{"accuracy": 0.9, "class_co')

    with pytest.warns(UserWarning, match="partial line"):
        status, _ = run_in_process(out)
    assert status == 0
    content = results.read_text()
    assert content.startswith(finished) and content.endswith("\n")
    rows = read_results(out)
    keys = [(r["protocol"], r["strategy"], r["density"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(SMOKE.cells())
    assert comparable(rows) == comparable(read_results(smoke_run.out))
    assert_same_tables(out, smoke_run.out)


@pytest.fixture(scope="module")
def dask_cluster():
    """Two dask worker processes, started before any test adds to ``sys.path``."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster


def kill_a_worker_once_a_row_is_written(cluster, results):
    """In a thread: SIGKILL one worker process as soon as ``results`` has a row."""
    import threading

    from distributed import Client

    with Client(cluster) as client:
        victim = next(iter(client.run(os.getpid).values()))
    killed = threading.Event()

    def kill():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if results.exists() and results.read_bytes().count(b"\n") >= 1:
                os.kill(victim, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.02)

    threading.Thread(target=kill, daemon=True).start()
    return killed


@pytest.mark.slow
def test_dask_backend(smoke_run, tmp_path, dask_cluster):
    out = tmp_path / "dask"
    # A worker that dies mid-run loses nothing: its tasks run again elsewhere.
    killed = kill_a_worker_once_a_row_is_written(dask_cluster, out / "results.jsonl")
    # One density: half the cells, every protocol, and still a shared cache.
    status = fairness.main(["--preset", "smoke", "--densities", "0.3", "--out", str(out),
                            "--no-progress", "--figure-formats", "png", "--backend",
                            "dask", "--scheduler", dask_cluster.scheduler_address])
    assert status == 0
    assert killed.is_set()
    rows = comparable(read_results(out))
    expected = comparable(row for row in read_results(smoke_run.out)
                          if row["density"] in (0.3, 1.0))
    assert len(rows) == len(expected) >= 6
    # The same numbers as in one process; only the configuration differs.
    strip = lambda rows: {key: {k: v for k, v in row.items() if k != "config"}  # noqa: E731
                          for key, row in rows.items()}
    assert strip(rows) == strip(expected)
    # Workers share the disk cache: one entry for the EL2N scores, one for
    # their query network's validation predictions (EL2N+MetriQ's recalls),
    # one for Random+MetriQ's recalls, however many workers used them.
    entries = list((out / "cache").rglob("*.npz"))
    assert len(entries) == 3


OWN_MODEL = """
from skprune.models import make_net


def make(n_classes, input_shape):
    return make_net("mlp", n_classes=n_classes, input_shape=input_shape, max_epochs=2)
"""


@pytest.mark.slow
def test_dask_workers_that_cannot_import_the_model_fail_at_once(tmp_path, dask_cluster,
                                                                 monkeypatch, capsys):
    # The module is importable here, not on the workers, started before.
    (tmp_path / "own_model.py").write_text(OWN_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    started = time.monotonic()
    status = fairness.main(["--preset", "smoke", "--model", "own_model:make", "--out",
                            str(tmp_path / "out"), "--no-progress", "--backend", "dask",
                            "--scheduler", dask_cluster.scheduler_address])
    err = capsys.readouterr().err
    assert status == 1, err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "worker" in line and "own_model" in line and "PYTHONPATH" in line
    assert "Traceback" not in err
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_a_dask_scheduler_that_cannot_import_the_tasks_fails_at_once(tmp_path, capsys):
    # Started outside the repository: it cannot unpickle the tasks (joblib
    # would wait for them for ever).
    pytest.importorskip("distributed")
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(file)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (file.exists() and file.read_text().strip()):
            assert scheduler.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        status = fairness.main(["--preset", "smoke", "--out", str(tmp_path / "out"),
                                "--no-progress", "--backend", "dask", "--scheduler", address])
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=60)
    err = capsys.readouterr().err
    assert status == 1, err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "scheduler" in line and "benchmarks._cells" in line and "PYTHONPATH" in line


def test_an_unreachable_dask_scheduler_is_one_line_within_the_timeout(tmp_path, capsys,
                                                                      monkeypatch):
    import socket

    from benchmarks import _dask

    pytest.importorskip("distributed")
    monkeypatch.setattr(_dask, "STARTUP_TIMEOUT", 2)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    status = fairness.main(["--preset", "smoke", "--out", str(tmp_path / "out"),
                            "--no-progress", "--backend", "dask", "--scheduler", address])
    err = capsys.readouterr().err
    assert status == 1
    assert err.splitlines() == [next(line for line in err.splitlines()
                                     if line.startswith("error:"))]
    assert address in err and "dask scheduler" in err
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "mnist", "--model", "mlp"], "unknown dataset 'mnist'"),
    (["--preset", "smoke", "--model", "transformer"], "unknown model 'transformer'"),
    (["--preset", "smoke", "--recipe", "fast"], "unknown recipe 'fast'"),
    (["--preset", "smoke", "--strategies", "el2n", "magic"], "Unknown strategy 'magic'"),
    (["--preset", "smoke", "--protocols", "Oracle"], "invalid choice: 'Oracle'"),
    (["--preset", "smoke", "--densities", "0"], "must be in (0, 1]; got '0'"),
    (["--preset", "smoke", "--densities", "0.5", "1.5"], "must be in (0, 1]; got '1.5'"),
    (["--preset", "smoke", "--seeds", "-1"], "non-negative integers"),
    (["--preset", "smoke", "--backend", "dask"], "--backend dask needs --scheduler"),
    (["--out", "somewhere"], "give --dataset and --model, or a --preset"),
    (["--preset", "smoke", "--n-jobs", "0"], "must be a non-zero integer"),
    (["--preset", "smoke", "--device", "gpu0"], "is not a torch device"),
])
def test_bad_input_gets_a_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        fairness.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_density_below_one_sample_per_class(tmp_path, capsys):
    status = fairness.main(["--preset", "smoke", "--densities", "0.001", "--out",
                            str(tmp_path), "--no-progress", "--figure-formats", "png"])
    assert status == 1
    assert "fewer than one sample per class" in capsys.readouterr().err


def test_missing_dataset_files_say_how_to_get_them(tmp_path, capsys):
    status = fairness.main(["--dataset", "fashion-mnist", "--model", "mlp", "--data-root",
                            str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert status == 1
    err = capsys.readouterr().err
    assert "Fashion-MNIST file" in err and "apt-get install dataset-fashion-mnist" in err


def test_other_settings_into_the_same_directory_fail(smoke_run, tmp_path, capsys):
    out = tmp_path / "changed"
    shutil.copytree(smoke_run.out, out)
    status, _ = run_in_process(out, "--epochs", "5")
    assert status == 1
    assert "different configuration (net_params" in capsys.readouterr().err


def test_demo_falls_back_to_digits_without_fashion_mnist(monkeypatch, capsys):
    def missing(dataset, data_root=None, n_train=None):
        raise DatasetNotFoundError(f"{dataset} files not found; install them.")

    class Stop(Exception):
        pass

    def capture(config, out_dir, **options):
        raise Stop(config)

    monkeypatch.setattr(fairness, "load_benchmark_data", missing)
    monkeypatch.setattr(fairness, "run_benchmark", capture)
    with pytest.raises(Stop) as stop:
        fairness.main(["--preset", "demo", "--out", "unused"])
    config = stop.value.args[0]
    assert config.dataset == "digits" and config.n_train is None
    assert "falls back to the 'digits' dataset" in capsys.readouterr().err


def test_grid_runs_strategy_free_protocols_once():
    config = BenchmarkConfig(
        dataset="digits", model="mlp", strategies=["random", "el2n", "forgetting"],
        densities=[0.5], seeds=[0, 1],
    )
    cells = config.cells()
    assert len(cells) == len(set(cells))
    per_seed = 1 + 2 + 2 * 3  # Full, Random(+MetriQ), two strategies x three protocols
    assert len(cells) == 2 * per_seed
    assert {c.strategy for c in cells if c.protocol in ("Random", "Random+MetriQ")} == {"-"}


def test_epoch_correction_matches_the_paper():
    assert corrected_epochs(160, 1.0) == 160
    assert corrected_epochs(160, 0.5) == 240  # 160 * 0.75 / 0.5
    assert corrected_epochs(200, 0.1) == 1100
    with pytest.raises(InvalidConfigError, match="strategy 'magic'"):
        BenchmarkConfig(dataset="digits", model="mlp", strategies=["magic"])


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid(name):
    preset = PRESETS[name]
    config = preset_config(name)
    assert config.dataset in DATASETS and config.model in MODELS and config.recipe in RECIPES
    for strategy in config.strategies:
        registered_strategy(strategy).pruner_class()(**config.strategy_params.get(strategy, {}))
    if "fallback" in preset:
        assert preset["fallback"]["dataset"] in DATASETS


def test_a_model_that_cannot_take_the_data_is_one_line(tmp_path, capsys):
    status = fairness.main(["--preset", "smoke", "--model", "vgg16", "--out", str(tmp_path),
                            "--no-progress"])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --model vgg16:") and "Traceback" not in err
