"""A pruner's scoring runs: each read from the cache or computed, in parallel where asked.

A pruner's scores combine ``n_runs`` independent runs, each seeded on its
own. Every run is a cache entry of its own (``n_runs=3`` reuses the first
three runs of an earlier ``n_runs=5``), keyed on the pruner's class, the
parameters that change scores, the data's content and the run's seed. The
missing runs are computed one after the other or, with ``n_jobs``, in joblib
worker processes, which take the visible CUDA devices in turn. Every score
array, computed or read, is checked before it is used.
"""

import warnings

import numpy as np
import torch
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.utils import get_tags

from ._progress import progress
from .cache import CacheEntry, Schema
from .exceptions import DegenerateTrainingWarning
from .utils._devices import resolve_device
from .utils._random_state import preserved_random_state
from .utils._workers import watch_parent_if_worker, worker_initializer

#: Parameters that never change a run's scores: how many rows are kept and
#: which, where results are cached, and how many runs are combined.
NON_SCORE_PARAMS = frozenset(
    {"density", "quota", "selection", "memory", "n_runs", "random_state", "verbose", "n_jobs"}
)


def run_scores(pruner, context, seeds):
    """The scores of every run, each from the cache or computed, and checked.

    Parameters
    ----------
    pruner : DataPruner
    context : PruningContext
        The data being pruned and its content key.
    seeds : list of int
        One seed per run.

    Returns
    -------
    ndarray of shape (n_runs, n_samples)
    """
    owner, n_samples = context.owner, context.n_samples
    tags = get_tags(pruner).pruner_tags
    score_params = {
        name: value for name, value in pruner.get_params(deep=False).items()
        if name not in NON_SCORE_PARAMS
    }
    cacheable = tags.cache_scores and context.data_key is not None
    entries = [
        CacheEntry(
            pruner.memory,
            (type(pruner), score_params, context.data_key, seed) if cacheable else None,
            schema=Schema(scores=("float64", (n_samples,))),
            check=lambda result: check_scores(result["scores"], n_samples, owner),
            what=f"{owner} scores",
        )
        for seed in seeds
    ]
    results = [entry.load() for entry in entries]
    missing = [run for run, result in enumerate(results) if result is None]
    if missing:
        watch_parent_if_worker()
    with progress(len(missing), f"{owner} query runs", pruner.verbose) as bar:
        for position, scores in _compute_runs(pruner, context, [seeds[run] for run in missing]):
            run = missing[position]
            results[run] = entries[run].store({"scores": scores})
            bar.update()
    scores = np.stack([result["scores"].astype(float) for result in results])
    if tags.continuous_scores:
        for run in scores:
            _warn_collapsed(run, owner)
    return scores


def check_scores(scores, n_samples, owner):
    """Raise a ``ValueError`` unless ``scores`` is one finite real number per row.

    Parameters
    ----------
    scores : ndarray
    n_samples : int
    owner : str
        Name of the pruner, for the message.
    """
    scores = np.asarray(scores)
    if scores.shape != (n_samples,):
        raise ValueError(
            f"{owner} scores must be one number per row, shape ({n_samples},); got shape "
            f"{scores.shape}"
        )
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"{owner} scores must be real numbers; got dtype {scores.dtype}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(
            f"{owner} scores must be finite; {int(np.sum(~np.isfinite(scores)))} of "
            f"{n_samples} are NaN or infinite"
        )


def _compute_runs(pruner, context, seeds):
    """``(position, scores)`` of every run seed, as the runs finish.

    With ``n_jobs`` other than 1 the runs train in parallel worker
    processes (joblib), one per CUDA device in turn when the estimator
    runs on CUDA and several devices are visible. Every run is seeded on
    its own, so the scores are those of the sequential runs.
    """
    n_jobs = 1 if pruner.n_jobs is None else pruner.n_jobs
    if len(seeds) <= 1 or effective_n_jobs(n_jobs) == 1:
        for position, seed in enumerate(seeds):
            yield position, pruner._score_run(context.X, context.y, seed)
        return
    devices = _run_devices(pruner.estimator, len(seeds))
    threads = max(1, torch.get_num_threads() // min(effective_n_jobs(n_jobs), len(seeds)))
    tasks = (delayed(_score_run_in_worker)(pruner, context.X, context.y, seed, device, threads)
             for seed, device in zip(seeds, devices, strict=True))
    yield from enumerate(Parallel(n_jobs=n_jobs, return_as="generator",
                                  **worker_initializer())(tasks))


def _run_devices(estimator, n_runs):
    """The device of every parallel run: CUDA devices in turn, or ``None`` (unchanged)."""
    device = getattr(estimator, "device", None)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count > 1 and str(resolve_device(device)) == "cuda":
        return [f"cuda:{run % count}" for run in range(n_runs)]
    return [None] * n_runs


def _score_run_in_worker(pruner, X, y, seed, device, threads):
    """One run's scores in a worker process, on ``device`` with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    if device is not None:
        # The worker's own copy of the pruner: its estimator may be changed.
        pruner.estimator.set_params(device=device)
    with preserved_random_state():
        return pruner._score_run(X, y, seed)


def _warn_collapsed(scores, owner):
    # Continuous scores with a handful of distinct values mean the query
    # network's outputs saturated onto a few patterns (e.g. after an
    # exploding learning rate): the ranking is then mostly tie breaks.
    distinct = np.unique(scores).size
    if scores.size >= 20 and distinct <= 2:
        warnings.warn(
            f"{owner}'s scores collapsed onto {distinct} distinct value(s) over "
            f"{scores.size} rows: its query network is degenerate (typically a learning "
            "rate (lr) far too large, or unscaled inputs), so the selection is close to "
            "arbitrary. Lower the estimator's lr or check the inputs.",
            DegenerateTrainingWarning,
            stacklevel=6,  # the caller of fit_resample
        )
