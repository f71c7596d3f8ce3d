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
from ._query_training import predicting_validation
from .cache import CacheEntry, Schema
from .exceptions import DegenerateTrainingWarning, user_stacklevel
from .utils._devices import resolve_device
from .utils._random_state import preserved_random_state
from .utils._workers import watch_parent_if_worker, worker_initializer

#: Parameters that never change a run's scores: how many rows are kept and
#: which, where results are cached, and how many runs are combined.
NON_SCORE_PARAMS = frozenset(
    {"density", "quota", "selection", "memory", "n_runs", "random_state", "verbose", "n_jobs"}
)


def run_scores(pruner, context, seeds, validation=None):
    """The scores of every run, each from the cache or computed, and checked.

    Parameters
    ----------
    pruner : DataPruner
    context : PruningContext
        The data being pruned and its content key.
    seeds : list of int
        One seed per run.
    validation : SharedValidation or None
        Validation rows that every run's query network also predicts, after
        each epoch or only after training (``validation.every_epoch``), for
        MetriQ to read class recall from them; their predictions are cached
        beside the scores.

    Returns
    -------
    scores : ndarray of shape (n_runs, n_samples)
    predictions : list of dict or None
        With ``validation``: for every run, the validation predictions of its
        query network at its last epoch (``"last"``) and at its epoch of best
        validation accuracy (``"best"``, the same as ``"last"`` where only
        the trained network predicted); ``None`` when a run trained no
        network, or without ``validation``.
    """
    owner, n_samples = context.owner, context.n_samples
    tags = get_tags(pruner).pruner_tags
    score_params = {
        name: value for name, value in pruner.get_params(deep=False).items()
        if name not in NON_SCORE_PARAMS
    }
    cacheable = tags.cache_scores and context.data_key is not None
    keys = [(type(pruner), score_params, context.data_key, seed) for seed in seeds]
    entries = [
        CacheEntry(
            pruner.memory, key if cacheable else None,
            schema=Schema(scores=("float64", (n_samples,))),
            check=lambda result: check_scores(result["scores"], n_samples, owner),
            what=f"{owner} scores",
        )
        for key in keys
    ]
    results = [entry.load() for entry in entries]
    shared = [None] * len(seeds)
    if validation is not None:
        n_val = validation.target.shape[0]
        predicted = [
            CacheEntry(
                pruner.memory,
                (*key, "validation predictions", validation.key,
                 "every epoch" if validation.every_epoch else "after training")
                if cacheable and validation.key is not None else None,
                schema=Schema(last=("int64", (n_val,)), best=("int64", (n_val,))),
                what=f"{owner}'s validation predictions",
            )
            for key in keys
        ]
        shared = [entry.load() for entry in predicted]
    missing = [run for run, result in enumerate(results)
               if result is None or (validation is not None and shared[run] is None)]
    if missing:
        watch_parent_if_worker()
    with progress(len(missing), f"{owner} query runs", pruner.verbose) as bar:
        for position, (scores, networks) in _compute_runs(
                pruner, context, [seeds[run] for run in missing], validation):
            run = missing[position]
            results[run] = entries[run].store({"scores": scores})
            if validation is not None:
                shared[run] = _last_and_best(networks, validation.target)
                if shared[run] is not None:
                    shared[run] = predicted[run].store(shared[run])
            bar.update()
    scores = np.stack([result["scores"].astype(float) for result in results])
    for run in scores:
        _warn_collapsed(run, owner, tags.continuous_scores)
    if validation is None or any(run is None for run in shared):
        return scores, None
    return scores, shared


class SharedValidation:
    """Validation rows a pruner's query networks predict for its quota.

    Parameters
    ----------
    X_val : array-like or torch Dataset
    target : ndarray of int64, shape (n_val,)
        Each row's class position among the pruned data's classes (``-1``
        for a class the networks never see), to find each network's epoch of
        best accuracy.
    key : object or None
        Content key of ``X_val`` for the cache; ``None``: not cached.
    every_epoch : bool, default=True
        Whether the networks predict ``X_val`` after every epoch (to find
        the most accurate one), or once, after training.
    """

    def __init__(self, X_val, target, key, every_epoch=True):
        self.X_val, self.target, self.key = X_val, np.asarray(target, dtype=np.int64), key
        self.every_epoch = every_epoch


def _last_and_best(networks, target):
    """A run's validation predictions at its last and at its most accurate epoch."""
    if len(networks) != 1 or networks[0].shape[0] == 0:
        return None  # the run trained no network, or several: nothing to share
    epochs = networks[0]
    best = int(np.argmax((epochs == target).sum(axis=1)))  # the earliest of equals
    return {"last": epochs[-1], "best": epochs[best]}


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


def _compute_runs(pruner, context, seeds, validation=None):
    """``(position, (scores, networks))`` of every run seed, as the runs finish.

    ``networks`` holds the validation predictions of every query network
    the run trained (see :func:`skprune._query_training.predicting_validation`),
    empty without ``validation``. With ``n_jobs`` other than 1 the runs
    train in parallel worker processes (joblib), one per CUDA device in turn
    when the estimator runs on CUDA and several devices are visible. Every
    run is seeded on its own, so the scores are those of the sequential
    runs.
    """
    # What the query networks predict, and when: plain data, for workers.
    watched = None if validation is None else (validation.X_val, validation.every_epoch)
    n_jobs = 1 if pruner.n_jobs is None else pruner.n_jobs
    if len(seeds) <= 1 or effective_n_jobs(n_jobs) == 1:
        for position, seed in enumerate(seeds):
            yield position, _score_run(pruner, context.X, context.y, seed, watched)
        return
    devices = _run_devices(pruner.estimator, len(seeds))
    threads = max(1, torch.get_num_threads() // min(effective_n_jobs(n_jobs), len(seeds)))
    tasks = (delayed(_score_run_in_worker)(pruner, context.X, context.y, seed, device, threads,
                                           watched)
             for seed, device in zip(seeds, devices, strict=True))
    yield from enumerate(Parallel(n_jobs=n_jobs, return_as="generator",
                                  **worker_initializer())(tasks))


def _score_run(pruner, X, y, seed, watched=None):
    """One run's scores, and the validation predictions of the networks it trained.

    ``watched`` is ``None`` or ``(X_val, every_epoch)``, the arguments of
    :func:`skprune._query_training.predicting_validation`.
    """
    if watched is None:
        return pruner._score_run(X, y, seed), []
    with predicting_validation(*watched) as networks:
        scores = pruner._score_run(X, y, seed)
    return scores, networks


def _run_devices(estimator, n_runs):
    """The device of every parallel run: CUDA devices in turn, or ``None`` (unchanged)."""
    device = getattr(estimator, "device", None)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count > 1 and str(resolve_device(device)) == "cuda":
        return [f"cuda:{run % count}" for run in range(n_runs)]
    return [None] * n_runs


def _score_run_in_worker(pruner, X, y, seed, device, threads, watched=None):
    """One run in a worker process, on ``device`` with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    if device is not None:
        # The worker's own copy of the pruner: its estimator may be changed.
        pruner.estimator.set_params(device=device)
    with preserved_random_state():
        return _score_run(pruner, X, y, seed, watched)


def _warn_collapsed(scores, owner, continuous):
    # Continuous scores with a handful of distinct values mean the query
    # network's outputs saturated onto a few patterns (e.g. after an
    # exploding learning rate): the ranking is then mostly tie breaks.
    # Counts (forgetting events) take few values by nature; all rows alike
    # (no sample ever learnt, or none ever forgotten) is degenerate for them.
    if scores.size < 20:
        return
    distinct = np.unique(scores).size
    if continuous and distinct <= 2:
        what = f"collapsed onto {distinct} distinct value(s)"
    elif distinct == 1:
        what = f"are all {scores[0]:g} (no sample told apart from another)"
    else:
        return
    warnings.warn(
        f"{owner}'s scores {what} over {scores.size} rows: its query network is "
        "degenerate (typically a learning rate (lr) far too large or too small, too few "
        "epochs, or inputs that are unscaled or carry no information), so the selection "
        "is close to arbitrary. Change the estimator's lr or max_epochs, or check the "
        "inputs.",
        DegenerateTrainingWarning,
        stacklevel=user_stacklevel(),
    )
