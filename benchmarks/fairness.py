"""Fairness benchmark: the paper's Figures 1-2 as tables and figures.

For every protocol x strategy x density x seed, prune the training set, train
the network on what is kept and measure accuracy and class-wise fairness on
held-out test data (see the user guide's benchmark page). Finished cells are
saved as they come, so an interrupted run resumes where it stopped.

Examples
--------
Seconds-long check, then the demo that ``make demo`` runs::

    python -m benchmarks.fairness --preset smoke --out results/smoke
    python -m benchmarks.fairness --preset demo --out results/demo

A custom grid, four cells at a time, or on a dask cluster::

    python -m benchmarks.fairness --dataset fashion-mnist --model mlp \\
        --strategies el2n forgetting --protocols Random Strategy Random+MetriQ \\
        --densities 0.2 0.5 --seeds 0 1 2 --n-jobs 4 --out results/mine
    python -m benchmarks.fairness --preset fashion-mnist-full --out results/fm \\
        --backend dask --scheduler tcp://10.0.0.1:8786

Outputs under ``--out``: ``results.jsonl`` (one row per cell), ``config.json``,
``tables/<metric>.csv|md|tex`` (also for the group metrics on data with
groups), ``tables/class_recall.csv``, ``tables/class_counts.csv``,
``figures/<name>.png|pdf|svg`` (every strategy's protocols, the strategies
against Random, and ``class_density``), with ``--export-scores``
``scores/<strategy>-seed<seed>.csv``; scores are cached in ``cache/``.

Failures that the user can fix (a full disk, an unwritable or damaged output
directory, a damaged dataset file, settings out of range) end the run with a
one-line ``error: ...`` on stderr naming the file and the fix, and exit
status 1; finished cells are always kept. SIGTERM and Ctrl-C stop the worker
processes and exit with a hint to resume; after a SIGKILL, which no code can
handle, the workers exit within a second by themselves.
"""

import argparse
import dataclasses
import os
import signal
import sys
import textwrap
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs, parallel_config
from joblib.externals.loky import get_reusable_executor
from tqdm.auto import tqdm

from skprune.base import smallest_density
from skprune.cache import UncacheableError
from skprune.cache import fingerprint as content_hash
from skprune.datasets import DATASETS, DatasetFormatError, DatasetNotFoundError
from skprune.models import MODELS, RECIPES
from skprune.selection import SELECTIONS
from skprune.utils import check_device, check_pruner_settings, exit_with_parent

from ._cells import PrunerFactory, cell_inputs, class_names, run_cell, warm_cache
from ._config import (
    EPOCH_ROUNDINGS,
    QUERY_PROTOCOLS,
    TEST_SPLITS,
    BenchmarkConfig,
    InvalidConfigError,
    check_density,
    parse_strategy_params,
)
from ._dask import DaskStartupError, connect, task_modules
from ._data import load_benchmark_data
from ._files import atomic_path, make_directory, os_error_message
from ._registry import (
    ALL_PROTOCOLS,
    GROUP_PROTOCOLS,
    PROTOCOLS,
    REFERENCES,
    STRATEGIES,
    RegistryError,
    import_object,
)
from ._report import (
    FIGURE_FORMATS,
    display_table,
    metrics_of,
    summarize,
    to_markdown,
    underfit_note,
    write_report,
)
from ._results import OutputDirectoryError, ResultStore
from ._stages import stages
from .presets import PRESETS

#: Seconds an idle loky worker waits for a task before it exits (joblib's
#: default: 300). Workers hold the data set and a torch runtime, a gigabyte
#: or more each; respawning one costs a few seconds. (A worker whose parent
#: dies, even by SIGKILL, exits within a second: see ``exit_with_parent``.)
IDLE_WORKER_TIMEOUT = 30


def run_benchmark(config, out_dir, *, n_jobs=1, backend="loky", scheduler=None,
                  progress=True, export_scores=False, figure_formats=FIGURE_FORMATS,
                  log=print):
    """Run every unfinished cell of ``config``, then write tables and figures.

    Parameters
    ----------
    config : BenchmarkConfig
    out_dir : str or Path
        Results, tables, figures and the score cache go here; cells already
        in its ``results.jsonl`` are skipped.
    n_jobs : int, default=1
        Cells run at once (joblib semantics: -1 = every core or dask thread).
    backend : {"loky", "dask"}, default="loky"
    scheduler : str, default=None
        Address of the dask scheduler, with ``backend="dask"``.
    progress : bool, default=True
        Show progress bars (on stderr).
    export_scores : bool, default=False
        Also write every strategy's scores, per seed, to ``scores/*.csv``.
    figure_formats : sequence of {"png", "pdf", "svg"}, default=FIGURE_FORMATS
        Formats of the figures; figures of the other formats are removed.
    log : callable, default=print

    Returns
    -------
    dict
        ``rows`` (every finished row), ``tables``, ``figures`` and ``scores``
        (paths).

    Raises
    ------
    InvalidConfigError
        Before any cell runs, for any setting that a cell would fail on.
    """
    out_dir = Path(out_dir)
    data = load_benchmark_data(config.dataset, config.data_root, config.n_train)
    config = dataclasses.replace(config, own_inputs=own_inputs_digest(config, data))
    _check_densities(config, data)
    _check_groups(config, data)
    check_pruners(config)
    cells = config.cells()
    with ResultStore(out_dir, config) as store:
        pending = [cell for cell in cells if cell not in store]
        log(
            f"Fairness benchmark{f' ({config.preset})' if config.preset else ''}: "
            f"{config.dataset}, {len(data.y_train)} training rows, "
            f"{len(data.y_test) // 2} validation + {len(data.y_test) - len(data.y_test) // 2} "
            f"evaluation rows, model {config.model}; {len(cells)} cells, "
            f"{len(cells) - len(pending)} already done -> {out_dir}"
        )
        if pending:
            _run_pending(config, pending, store, out_dir, n_jobs=n_jobs, backend=backend,
                         scheduler=scheduler, total=len(cells), progress=progress)
        rows = list(store.rows.values())
    paths = write_report(rows, out_dir, figure_formats)
    paths["scores"] = write_scores(config, out_dir) if export_scores else []
    return {"rows": rows, **paths}


def own_inputs_digest(config, data):
    """A hash of the user's own data, model function and pruner classes, or ``None``.

    A path or a ``module:name`` says where they are, not what they are: a
    rerun on an edited ``.npz`` or model must not resume into rows computed
    from the old one. The data is keyed by its arrays, code by its source
    files (as skprune's cache keys it).
    """
    parts = {}
    if config.dataset not in DATASETS:
        parts["data"] = content_hash({name: value for name, value in data.items()
                                     if isinstance(value, np.ndarray)})
    code = [("--model", config.model)] + [("--strategies", name) for name in config.strategies]
    for option, spec in code:
        if ":" not in spec or spec in MODELS or spec in STRATEGIES:
            continue
        try:
            parts[spec] = content_hash(import_object(spec, option))
        except RegistryError as exc:
            raise InvalidConfigError(str(exc)) from None
        except UncacheableError as exc:
            raise InvalidConfigError(
                f"{spec}: results computed with it cannot be told apart from those of an "
                f"edited version ({exc})."
            ) from None
    if not parts:
        return None
    return content_hash(parts)


def _check_groups(config, data):
    grouped = [name for name in config.protocols if PROTOCOLS[name].uses_groups]
    if grouped and "groups_train" not in data:
        raise InvalidConfigError(
            f"Protocols {grouped} prune by group, but {config.dataset!r} has no groups. Use "
            "a dataset with groups_train and groups_test (e.g. spurious-fashion-mnist, or "
            "your own .npz), or drop them from --protocols."
        )


def check_pruners(config):
    """Build every pruner of the run and check its settings, before any cell runs.

    Parameter validation, a strategy's own checks (e.g. a Dynamic
    Uncertainty window longer than the schedule) and MetriQ's, for the
    first density and seed of every protocol and strategy.

    Raises
    ------
    InvalidConfigError
        Naming the strategy or protocol and the setting.
    """
    _, _, factory, _ = cell_inputs(config.to_dict(), config.seeds[0])
    for cell in config.cells():
        if cell.protocol in REFERENCES:
            continue
        where = PROTOCOLS[cell.protocol].label(cell.strategy)
        try:
            check_pruner_settings(factory.pruner(cell.protocol, cell.strategy,
                                                 density=cell.density, seed=cell.seed,
                                                 memory=None))
        except (ValueError, TypeError) as exc:
            raise InvalidConfigError(f"{where}: {' '.join(str(exc).split())}") from None


def write_scores(config, out_dir):
    """Write ``scores/<strategy>-seed<seed>.csv``: every row's label, score and run scores.

    The scores come from the run's cache (the pruner is refitted at density
    1, which reads them), so this costs no training after a run.
    """
    folder = make_directory(Path(out_dir) / "scores")
    paths = []
    for seed in config.seeds:
        _, data, factory, _ = cell_inputs(config.to_dict(), seed)
        names = class_names(data)
        for name in config.strategies:
            if name == "random":
                continue
            pruner = factory.strategy(name, density=1.0, random_state=seed,
                                      memory=str(Path(out_dir) / "cache"))
            pruner.fit(data.X_train, data.y_train)
            table = pd.DataFrame({
                "row": range(len(data.y_train)),
                "label": [names[label] for label in data.y_train.tolist()],
                "score": pruner.scores_,
                **{f"run_{run}": scores for run, scores in enumerate(pruner.run_scores_)},
            })
            path = folder / f"{name.replace(':', '.')}-seed{seed}.csv"
            with atomic_path(path) as partial:
                table.to_csv(partial, index=False)
            paths.append(path)
    return paths


def _run_pending(config, pending, store, out_dir, *, n_jobs, backend, scheduler, total,
                 progress):
    settings, fingerprint = config.to_dict(), config.fingerprint()
    cache_dir = str(out_dir / "cache")
    warmups, first, rest = stages(pending, PrunerFactory(config, None, None))
    modules = task_modules(config, DATASETS, MODELS) if backend == "dask" else ()
    with _execution(backend, scheduler, n_jobs, modules) as (jobs, torch_threads):
        parallel = Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)
        # Scoring warm-ups count as steps too: otherwise the bar sits at 0
        # through the longest part of a run.
        bar = tqdm(total=total + len(warmups), initial=total - len(pending),
                   desc="scoring and cells", unit="step", disable=not progress)
        with bar:
            for stage in (
                [delayed(warm_cache)(settings, *task, cache_dir, torch_threads)
                 for task in warmups]
                + [delayed(run_cell)(settings, cell, cache_dir, fingerprint, torch_threads)
                   for cell in first],
                [delayed(run_cell)(settings, cell, cache_dir, fingerprint, torch_threads)
                 for cell in rest],
            ):
                if not stage:
                    continue
                with _closing_quietly(parallel(stage)) as rows:
                    for row in rows:
                        if row is not None:  # warm-up tasks return nothing
                            store.append(row)
                        bar.update()


@contextmanager
def _closing_quietly(results):
    """Close a joblib result generator at the end of the block, even on an error.

    Closing it cancels the tasks still running. On an error here (a full disk,
    Ctrl-C, SIGTERM) joblib would otherwise do so when the generator is
    garbage collected, at a time of its choosing, and warn about the cancelled
    tasks on top of the one-line error message.
    """
    try:
        yield results
    finally:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tasks", category=UserWarning)
            results.close()


@contextmanager
def _execution(backend, scheduler, n_jobs, modules=("benchmarks._cells",)):
    """Set up the joblib backend; yields its number of jobs and torch threads per job.

    With dask, the scheduler and workers are checked first (``modules``
    are those the tasks import): a start-up problem fails within a bounded
    time, with a :class:`~benchmarks._dask.DaskStartupError`.
    """
    if backend == "dask":
        with connect(scheduler, list(modules)), parallel_config(backend="dask"):
            # Every dask thread runs one cell at a time, with one torch thread.
            yield (-1 if n_jobs is None else n_jobs), 1
        return
    n_jobs = 1 if n_jobs is None else n_jobs
    n_workers = effective_n_jobs(n_jobs)
    if n_workers == 1:
        # Runs in this process: torch keeps the threads it has.
        yield 1, None
        return
    # Every worker exits within a second of this process's death, even by
    # SIGKILL, which no cleanup code here can handle.
    with parallel_config(backend="loky", idle_worker_timeout=IDLE_WORKER_TIMEOUT,
                         initializer=exit_with_parent, initargs=(os.getpid(),)):
        finished = False
        try:
            yield n_jobs, max(1, (os.cpu_count() or 1) // n_workers)
            finished = True
        finally:
            # Workers must not outlive the run. After a clean run they are
            # asked to exit, and run their own exit handlers: those release
            # what they registered with the resource tracker (tqdm's lock, a
            # semaphore), which would otherwise be reported as leaked. On an
            # error, Ctrl-C or SIGTERM they are killed at once, rather than
            # left computing cells nobody will collect. loky replaces its
            # executor with a new one, which starts no process before a task
            # is submitted.
            get_reusable_executor(max_workers=1, reuse=False,
                                  kill_workers=not finished).shutdown(
                wait=True, kill_workers=not finished)


def _check_densities(config, data):
    n_classes, n_train = len(data.classes), len(data.y_train)
    too_low = [d for d in config.densities if round(d * n_train) < n_classes]
    if too_low:
        raise InvalidConfigError(
            f"Densities {too_low} keep fewer than one sample per class ({n_classes} "
            f"classes, {n_train} training rows); use --densities of at least "
            f"{smallest_density(n_classes, n_train)}."
        )


# Command line -------------------------------------------------------------


def _density(text):
    try:
        return check_density(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(cast, accept, what):
    """An argparse type: ``cast(text)``, refused unless ``accept(value)``."""
    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
        return value
    return parse


_positive_int = _number(int, lambda value: value >= 1, "a positive integer")
_nonzero_int = _number(int, lambda value: value != 0, "a non-zero integer (-1: every core)")
_positive_float = _number(float, lambda value: 0 < value < float("inf"), "a positive number")


def _device(text):
    try:
        check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _path(text):
    """A path option, with ``~`` expanded: no shell expands it in ``--out=~/x``."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a path must not be empty")
    return os.path.expanduser(text)


def build_parser():
    """The ``argparse`` parser of ``python -m benchmarks.fairness``."""
    presets = "\n".join(f"  {name:<28} {preset['description']}"
                        for name, preset in PRESETS.items())
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fairness",
        description=textwrap.fill(
            "Benchmark data pruning on accuracy and class-wise fairness (worst-class "
            "recall, best-worst recall gap, std of class recall), as in Figures 1-2 of "
            "'Towards Robust Data Pruning'. Options override the --preset's values.", 79
        ),
        epilog=f"presets:\n{presets}\n\n" + textwrap.fill(
            "outputs under --out: results.jsonl (one row per finished cell; a rerun skips "
            "them), config.json, tables/<metric>.csv|md|tex for accuracy, "
            "worst_class_recall, recall_gap and recall_std (and worst_group_accuracy, "
            "group_accuracy_gap on data with groups), tables/class_recall.csv, "
            "tables/class_counts.csv, figures/<strategy>.png|pdf|svg, "
            "figures/strategies.*, figures/class_density.*, scores/*.csv (with "
            "--export-scores), and cache/ (scores shared by cells).", 79
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", choices=list(PRESETS), help="start from these settings")
    parser.add_argument("--dataset", help=f"one of {', '.join(DATASETS)}; or your own: a "
                        "path to an .npz with X_train, y_train, X_test, y_test, or "
                        "module:function returning those")
    parser.add_argument("--data-root", type=_path, metavar="DIR",
                        help="where the dataset's files are")
    parser.add_argument("--n-train", type=int, metavar="N",
                        help="train on a stratified subsample of N rows")
    parser.add_argument("--model", help=f"one of {', '.join(MODELS)}; or your own: "
                        "module:function(n_classes=..., input_shape=...) returning a skorch "
                        "classifier")
    parser.add_argument("--recipe", help=f"training settings, one of {', '.join(RECIPES)}")
    parser.add_argument("--epochs", "--max-epochs", dest="epochs", type=_positive_int,
                        metavar="E", help="epochs of a full-data run (overrides the recipe's)")
    parser.add_argument("--lr", type=_positive_float, help="learning rate (overrides the "
                        "recipe's)")
    parser.add_argument("--batch-size", type=_positive_int, metavar="N",
                        help="batch size (overrides the recipe's)")
    parser.add_argument("--device", type=_device,
                        help="where networks run: auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--strategies", nargs="+", metavar="STRATEGY",
                        help=f"of {', '.join(STRATEGIES)}, or a pruner class of your own "
                        "as module:Class")
    parser.add_argument("--strategy-params", nargs="+", metavar="STRATEGY:NAME=VALUE",
                        help="a strategy's parameters, e.g. el2n:n_runs=3 dynunc:window=5")
    parser.add_argument("--selection", choices=list(SELECTIONS),
                        help="which rows every strategy keeps given its scores (default: "
                        "hardest)")
    parser.add_argument("--query-protocol", choices=QUERY_PROTOCOLS,
                        help="query networks and MetriQ as skprune sets them up (default) or "
                        "as the DRoP authors did (the paper-* presets' default)")
    parser.add_argument("--test-split", choices=TEST_SPLITS,
                        help="halve the test set per class at random for every seed "
                        "(stratified) or in dataset order (ordered, the DRoP authors')")
    parser.add_argument("--epochs-rounding", choices=EPOCH_ROUNDINGS,
                        help="round the corrected epochs (default) or floor them (DRoP)")
    parser.add_argument("--protocols", nargs="+", choices=list(PROTOCOLS), metavar="PROTOCOL",
                        help=f"of {', '.join(ALL_PROTOCOLS)}; with groups in the data also "
                        f"{', '.join(GROUP_PROTOCOLS)}")
    parser.add_argument("--densities", nargs="+", type=_density, metavar="DENSITY",
                        help="fractions of the training set kept, in (0, 1]")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="one run of every cell per seed")
    parser.add_argument("--epochs-correction", action=argparse.BooleanOptionalAction,
                        help="train at density f for E*(0.5+0.5f)/f epochs (the paper's)")
    parser.add_argument("--full-reference", action=argparse.BooleanOptionalAction,
                        help="also train on the whole training set once per seed")
    parser.add_argument("--out", type=_path, metavar="DIR",
                        help="output directory (default: results/<preset>)")
    parser.add_argument("--n-jobs", type=_nonzero_int, metavar="N",
                        help="cells run at once; -1: every core (loky) or dask thread")
    parser.add_argument("--backend", choices=["loky", "dask"], default="loky",
                        help="joblib backend (default: loky)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="dask scheduler address, with --backend dask")
    parser.add_argument("--figure-formats", nargs="+", choices=FIGURE_FORMATS,
                        default=list(FIGURE_FORMATS), metavar="FORMAT",
                        help="formats of the figures, of png, pdf, svg (default: all three; "
                        "figures of the others are removed)")
    parser.add_argument("--export-scores", action="store_true",
                        help="also write every strategy's scores to scores/*.csv")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def config_from_args(args, parser, fallback=False):
    """The :class:`BenchmarkConfig` that a preset and the given options describe.

    With ``fallback=True`` the preset's ``fallback`` settings (used when its
    dataset is missing) replace its own before the options apply.
    """
    preset = dict(PRESETS[args.preset]) if args.preset else {}
    if fallback:
        preset.update(preset["fallback"])
    fields = {field.name for field in dataclasses.fields(BenchmarkConfig)}
    settings = {name: value for name, value in preset.items() if name in fields}
    settings["net_params"] = dict(settings.get("net_params", {}))
    for name in ("dataset", "data_root", "n_train", "model", "recipe", "strategies",
                 "protocols", "densities", "seeds", "epochs_correction", "full_reference",
                 "selection", "query_protocol", "test_split", "epochs_rounding"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    if args.dataset is not None and args.dataset not in DATASETS and args.recipe is None:
        # A dataset of one's own has no recipe of the preset's dataset.
        settings["recipe"] = None
    for option, param in (("epochs", "max_epochs"), ("lr", "lr"),
                          ("batch_size", "batch_size"), ("device", "device")):
        value = getattr(args, option)
        if value is not None:
            settings["net_params"][param] = value
    # A preset's parameters apply to the strategies that are run; the
    # options' are checked against them.
    strategies = set(settings.get("strategies", ()))
    settings["strategy_params"] = {
        name: dict(params) for name, params in settings.get("strategy_params", {}).items()
        if name in strategies
    }
    try:
        for name, params in parse_strategy_params(args.strategy_params or []).items():
            settings["strategy_params"].setdefault(name, {}).update(params)
    except InvalidConfigError as exc:
        parser.error(str(exc))
    settings["preset"] = args.preset
    missing = [f"--{name}" for name in ("dataset", "model") if name not in settings]
    if missing:
        parser.error(f"give {' and '.join(missing)}, or a --preset ({', '.join(PRESETS)}).")
    try:
        return BenchmarkConfig(**settings)
    except InvalidConfigError as exc:
        parser.error(str(exc))


def _check_names(config, parser):
    """Unknown names fail before any work starts."""
    own = config.dataset.endswith(".npz") or ":" in config.dataset
    if config.dataset not in DATASETS and not own:
        parser.error(f"unknown dataset {config.dataset!r}; choose from {', '.join(DATASETS)}, "
                     "or give an .npz path or module:function.")
    if config.model not in MODELS and ":" not in config.model:
        parser.error(f"unknown model {config.model!r}; choose from {', '.join(MODELS)}, or "
                     "give module:function.")
    if config.recipe is not None and config.recipe not in RECIPES:
        parser.error(f"unknown recipe {config.recipe!r}; choose from {', '.join(RECIPES)}.")


def _has_fallback(args):
    """Whether a missing dataset may be replaced: the preset's, not one asked for."""
    return args.dataset is None and "fallback" in PRESETS.get(args.preset or "", {})


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup code runs.

    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception``
    on the way up may swallow it.
    """


@contextmanager
def _sigterm_raises():
    """Turn SIGTERM into :class:`_Terminated` while the block runs.

    By default SIGTERM ends the process on the spot, leaving its worker
    processes to idle on. Nothing changes outside the main thread (signals
    cannot be handled there) or when SIGTERM already has a handler, or is
    ignored, on purpose.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL):
        yield
        return
    received = []

    def terminate(signum, frame):
        # Once only: a second SIGTERM must not interrupt the cleanup.
        if not received:
            received.append(signum)
            raise _Terminated()

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _error_line(exc):
    """The one-line ``error: ...`` message of a failure the user can fix."""
    if (isinstance(exc, OSError) and exc.filename is not None
            and not isinstance(exc, DatasetNotFoundError)):
        # An OSError not met where it could be described (for example in a
        # worker writing the score cache): its path and a fix from its errno.
        message = os_error_message(exc, action="access", output=False)
    else:
        message = str(exc) or type(exc).__name__
    return "error: " + " ".join(message.split())


def main(argv=None):
    """Run the benchmark from the command line; returns the exit status.

    Errors the user can fix print one line, ``error: ...``, naming the file
    or option and the fix, and return 1 (2 for usage errors, from argparse).
    Ctrl-C returns 130 and SIGTERM 143, once the worker processes are
    stopped; a rerun of the same command resumes.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.backend == "dask" and not args.scheduler:
        parser.error("--backend dask needs --scheduler ADDRESS (for example "
                     "tcp://127.0.0.1:8786, printed by `dask scheduler`).")
    if args.scheduler and args.backend != "dask":
        parser.error("--scheduler is only used with --backend dask.")
    config = config_from_args(args, parser)
    _check_names(config, parser)
    out_dir = Path(args.out or Path("results") / (args.preset or "fairness"))
    n_jobs = args.n_jobs
    if n_jobs is None and args.backend == "loky":
        n_jobs = PRESETS.get(args.preset or "", {}).get("n_jobs", 1)
    resume_hint = (f"Finished cells are saved in {out_dir / 'results.jsonl'}; run the same "
                   "command again to resume.")

    start = time.perf_counter()
    try:
        with _sigterm_raises():
            try:
                load_benchmark_data(config.dataset, config.data_root, config.n_train)
            except FileNotFoundError as exc:
                if not _has_fallback(args):
                    raise
                config = config_from_args(args, parser, fallback=True)
                print(f"Note: {exc}\nThe {args.preset} preset falls back to the "
                      f"{config.dataset!r} dataset.", file=sys.stderr)
            result = run_benchmark(config, out_dir, n_jobs=n_jobs, backend=args.backend,
                                   scheduler=args.scheduler, progress=not args.no_progress,
                                   export_scores=args.export_scores,
                                   figure_formats=args.figure_formats)
    # The project's own errors, each with a message naming the file or the
    # setting and the fix, and OSErrors, described from their errno. Anything
    # else is a bug and keeps its traceback.
    except (OSError, InvalidConfigError, OutputDirectoryError, DatasetFormatError,
            DaskStartupError) as exc:
        print(_error_line(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nInterrupted. {resume_hint}", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"\nTerminated (SIGTERM). {resume_hint}", file=sys.stderr)
        return 128 + signal.SIGTERM

    summary = summarize(result["rows"])
    for metric, title in metrics_of(result["rows"]).items():
        print(f"\n{title} (mean ± std over seeds [min, max]; n: seeds) by density:\n")
        print(to_markdown(display_table(summary, metric)))
    note = underfit_note(result["rows"])
    if note:
        print(f"\n{note}", file=sys.stderr)
    print(f"\nDone in {time.perf_counter() - start:.0f} s. Results: {out_dir / 'results.jsonl'}; "
          f"tables: {out_dir / 'tables'}; figures: "
          + ", ".join(str(path) for path in result["figures"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
