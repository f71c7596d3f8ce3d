"""Connecting the benchmark to a dask cluster, in a bounded time, or a one-line error.

The cells run as joblib tasks on dask (``parallel_config(backend="dask")``).
Three start-up problems would otherwise hang the run or end it with a long
traceback: a scheduler that does not answer, a cluster without workers, and
a scheduler or workers that cannot import the code of the tasks (started in
another directory or environment: the scheduler then fails to unpickle the
task graph, and joblib waits for ever). Each is checked before any task is
submitted, within :data:`STARTUP_TIMEOUT` seconds, and reported as a
:class:`DaskStartupError` naming the address and the fix.

Once running, a worker that dies loses nothing: a cell's task holds only
plain settings (dicts, strings, tuples, which joblib does not scatter to a
worker), so dask runs the task of a dead worker again on another.
"""

import threading

__all__ = ["STARTUP_TIMEOUT", "DaskStartupError", "connect", "task_modules"]

#: Seconds allowed for each start-up step: reaching the scheduler, a first
#: worker connecting, and the import check.
STARTUP_TIMEOUT = 30

#: The module of the benchmark's task functions (``run_cell``, ``warm_cache``).
TASK_MODULE = "benchmarks._cells"


class DaskStartupError(RuntimeError):
    """The dask cluster cannot run the benchmark's tasks."""


def task_modules(config, known_datasets=(), known_models=()):
    """Modules the workers import to run the cells of ``config``.

    The benchmark's own, and those of the user's ``module:name`` dataset,
    model and pruner classes.

    Parameters
    ----------
    config : BenchmarkConfig
    known_datasets, known_models : container of str
        Built-in names (never modules).

    Returns
    -------
    list of str
    """
    from ._registry import STRATEGIES

    specs = [config.model] if config.model not in known_models else []
    specs += [name for name in config.strategies if name not in STRATEGIES]
    if config.dataset not in known_datasets and not config.dataset.endswith(".npz"):
        specs.append(config.dataset)
    modules = [TASK_MODULE]
    modules += [spec.partition(":")[0] for spec in specs if ":" in spec]
    return list(dict.fromkeys(modules))


def connect(scheduler, modules, timeout=None):
    """A ``distributed.Client`` of ``scheduler`` whose workers can run the tasks.

    Parameters
    ----------
    scheduler : str
        The scheduler's address, e.g. ``tcp://10.0.0.1:8786``.
    modules : list of str
        Modules the scheduler must be able to import (the first, the tasks')
        and every worker too (all of them).
    timeout : float, default=None
        Seconds per step; :data:`STARTUP_TIMEOUT` by default.

    Returns
    -------
    distributed.Client

    Raises
    ------
    DaskStartupError
        If the scheduler does not answer, no worker connects, or the
        scheduler or a worker cannot import a module, each within
        ``timeout`` seconds.
    """
    from distributed import Client

    timeout = STARTUP_TIMEOUT if timeout is None else timeout
    try:
        client = Client(scheduler, timeout=timeout)
    except OSError as exc:
        raise DaskStartupError(
            f"The dask scheduler at {scheduler} did not answer within {timeout:g} s "
            f"({exc}). Start it (`dask scheduler`) and its workers (`dask worker "
            f"{scheduler}`), or give its address as --scheduler."
        ) from None
    try:
        _check_imports(client, scheduler, modules, timeout)
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError):
            raise DaskStartupError(
                f"No dask worker connected to the scheduler at {scheduler} within "
                f"{timeout:g} s. Start workers with `dask worker {scheduler}` (one per GPU, "
                "--nthreads 1)."
            ) from None
        # Workers that connected meanwhile are checked too.
        _check_imports(client, scheduler, modules, timeout, scheduler_too=False)
    except BaseException:
        client.close()
        raise
    return client


def _check_imports(client, scheduler, modules, timeout, scheduler_too=True):
    """Have the scheduler import the tasks' module, and every worker all ``modules``."""
    fix = ("Start the scheduler and workers in this run's environment, from the "
           "repository's root or with it (and your own modules) on PYTHONPATH.")
    steps = []
    if scheduler_too:
        steps.append(("scheduler", lambda: client.run_on_scheduler(
            exec, f"import {modules[0]}", {})))
    steps.append(("workers", lambda: client.run(
        exec, f"import {', '.join(modules)}", {}, on_error="return")))
    for where, step in steps:
        outcome = _within(timeout, step)
        if outcome is _TIMED_OUT:
            raise DaskStartupError(
                f"The dask {where} at {scheduler} did not answer within {timeout:g} s "
                f"when asked to import {', '.join(modules)}. {fix}")
        if isinstance(outcome, BaseException):
            failures = {scheduler: outcome}
        else:
            failures = {address: result for address, result in (outcome or {}).items()
                        if isinstance(result, BaseException)}
        if failures:
            address, error = next(iter(failures.items()))
            consequence = ("it could not read the tasks, and joblib would wait for them for "
                           "ever" if where == "scheduler" else "every cell would fail")
            name = "scheduler" if where == "scheduler" else f"worker {address}"
            imported = modules[0] if where == "scheduler" else ", ".join(modules)
            raise DaskStartupError(
                f"The dask {name} cannot import {imported} ({type(error).__name__}: {error}):"
                f" {consequence}. {fix}")


_TIMED_OUT = object()


def _within(timeout, call):
    """``call()``'s result (or exception) if it returns within ``timeout`` s, else _TIMED_OUT.

    A daemon thread: one stuck on a scheduler that never answers does not
    keep the process from exiting.
    """
    outcome = []

    def run():
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller
            outcome.append(exc)

    thread = threading.Thread(target=run, name="dask-startup-check", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else _TIMED_OUT
