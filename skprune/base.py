"""The base class of every pruner."""

import math
import numbers
import os
import warnings
from abc import abstractmethod
from decimal import ROUND_CEILING, Decimal

import numpy as np
import torch
from imblearn.base import BaseSampler
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _num_samples,
    check_random_state,
    column_or_1d,
    validate_data,
)

from ._context import DataKey, PruningContext
from ._docstrings import pruner_docstring
from ._progress import progress
from .utils._devices import resolve_device
from .utils._random_state import preserved_random_state, run_seeds
from .utils._torch_data import take_rows
from .cache import CacheEntry, Schema
from .exceptions import DegenerateTrainingWarning, StarvedGroupWarning
from .quotas import QUOTAS, BaseQuota, allocate_class_counts, make_quota
from .selection import SELECTIONS, BaseSelection, make_selection

#: Parameters that never change a run's scores: how many rows are kept and
#: which, where results are cached, and how many runs are combined.
NON_SCORE_PARAMS = frozenset(
    {"density", "quota", "selection", "memory", "n_runs", "random_state", "verbose", "n_jobs"}
)


@pruner_docstring
class DataPruner(BaseSampler):
    """Base class for pruners: keep the highest-scoring share of the data.

    A pruner is an imbalanced-learn sampler: ``fit_resample(X, y)`` returns
    the kept rows, and inside :func:`skprune.make_pipeline` it prunes the
    training data at fit time only, never the data a pipeline predicts on.
    Subclasses only supply per-sample scores (:meth:`_score_run`); how many
    rows each class keeps (``quota``) and which ones (``selection``) is
    decided here, once, for every strategy.

    Parameters
    ----------
    estimator : estimator object, default=None
        The model used for scoring (a skorch ``NeuralNetClassifier``) and,
        with ``quota="metriq"``, for measuring class recall. Cloned, never
        modified.
    {density}
    {quota}
    {selection}
    {random_state}
    {memory}
    {n_jobs}
    {verbose}

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        Score of every row (higher = harder).
    {fitted_attributes}

    See Also
    --------
    RandomPruner : random pruning, with or without quotas.
    MetriQ : quotas from validation error rates.
    """

    _sampling_type = "bypass"
    # Read by imbalanced-learn's sampler machinery; pruners do not use it.
    sampling_strategy = "auto"

    #: Whether scores are worth caching (training a network) or cheaper to
    #: recompute than to look up (random draws).
    _cache_scores = True

    #: Whether scoring reads ``X``; pruners that do not (given or random
    #: scores) accept ``X=None`` and prune from ``y`` alone.
    _requires_X = True

    #: Whether scores are real-valued, so that a handful of distinct values
    #: means a degenerate query network (counts such as forgetting events
    #: take few values by nature).
    _continuous_scores = False

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "density": [Interval(numbers.Real, 0, 1, closed="right")],
        "quota": [None, StrOptions(set(QUOTAS)), dict, BaseQuota],
        "selection": [StrOptions(set(SELECTIONS)), BaseSelection],
        "random_state": ["random_state"],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "n_jobs": [Interval(numbers.Integral, None, -1, closed="right"),
                   Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator=None, *, density=0.5, quota=None, selection="hardest",
                 random_state=None, memory=None, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.density = density
        self.quota = quota
        self.selection = selection
        self.random_state = random_state
        self.memory = memory
        self.n_jobs = n_jobs
        self.verbose = verbose

    @abstractmethod
    def _score_run(self, X, y, seed):
        """Scores of one run: one float per row, higher = harder = kept first.

        Parameters
        ----------
        X : validated array or torch Dataset
        y : ndarray of shape (n_samples,)
        seed : int
            Seed of this run's randomness (query-network init, shuffling).
        """

    def _check_before_scoring(self):
        """Raise, before any training, for settings that cannot give scores.

        Parameter validation cannot see combinations (e.g. a window longer
        than the estimator's schedule); subclasses check them here. Also
        called by the fairness benchmark before its first cell.
        """

    def _combine_runs(self, run_scores):
        """Combine the scores of ``n_runs`` runs (rows) into one score per sample."""
        return run_scores.mean(axis=0)

    def fit(self, X, y, **params):
        """Prune ``(X, y)`` and keep the fitted attributes; returns ``self``.

        ``fit_resample`` does the same and also returns the kept rows.

        Parameters
        ----------
        X, y
            As in :meth:`fit_resample`.
        **params
            ``groups``, as in :meth:`fit_resample`. Taken as keywords so that
            metadata routing asks for it once, through
            ``set_fit_resample_request(groups=True)``.

        Returns
        -------
        self
        """
        self.fit_resample(X, y, **params)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_resample(self, X, y, groups=None):
        """Keep ``round(density * n_samples)`` rows of ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...), torch Dataset, or None
            Samples: arrays of any rank (e.g. NCHW images), lists, pandas
            objects, sparse matrices, or a ``torch.utils.data.Dataset``.
            ``None`` for pruners that do not read the samples
            (:class:`~skprune.ScorePruner`, :class:`~skprune.RandomPruner`
            with a quota that needs no model); the kept rows are then
            ``sample_indices_``.
        y : array-like of shape (n_samples,)
            Class labels (a one-hot encoded target is accepted and returned
            one-hot).
        groups : array-like of shape (n_samples,), default=None
            The group of every row (e.g. class x attribute, or a
            subpopulation). Quotas then split the budget over groups instead
            of classes, every non-empty group keeps at least one row, and
            selection applies within each group. ``None``: the groups are the
            classes. Inside a pipeline or a search it arrives as fit metadata
            (see :ref:`groups`).

        Returns
        -------
        X_kept : same type as X
            The kept rows in their original order; a ``torch.utils.data.Subset``
            (no copy) when ``X`` is a Dataset; ``None`` when ``X`` is.
        y_kept : same type as y
            Their labels.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None: pruners keep samples per class."
            )
        if X is None:
            y_checked, one_hot = self._check_targets(y)
            self._prune(None, y_checked, _check_groups(groups, y_checked.shape[0]))
            kept = self.sample_indices_
            return None, _take_rows(y, np.asarray(y) if one_hot else y_checked, kept)
        n_samples, n_labels = _num_samples_or_len(X), _num_samples_or_len(y)
        if n_samples != n_labels:
            raise ValueError(
                f"X and y have different lengths: X has {n_samples} samples and y "
                f"has {n_labels} labels. Pass one label per sample."
            )
        if isinstance(X, torch.utils.data.Dataset):
            X_checked = X
            y_checked, one_hot = self._check_targets(y)
        else:
            X_checked, y_checked, one_hot = self._check_X_y(X, y)
        self._prune(X_checked, y_checked, _check_groups(groups, n_samples))
        kept = self.sample_indices_
        y_kept = _take_rows(y, np.asarray(y) if one_hot else y_checked, kept)
        return _take_rows(X, X_checked, kept), y_kept

    def _check_X_y(self, X, y, accept_sparse=None):
        X = validate_data(
            self, X=X, reset=True, accept_sparse=["csr", "csc"], dtype="numeric",
            allow_nd=True, ensure_min_samples=2,
        )
        y, one_hot = self._check_targets(y)
        return X, y, one_hot

    def _check_targets(self, y):
        """Validated 1-D class labels, and whether ``y`` came one-hot encoded."""
        y = np.asarray(y)
        target_type = type_of_target(y, input_name="y", raise_unknown=True)
        one_hot = target_type == "multilabel-indicator" and np.all(y.sum(axis=1) == 1)
        if one_hot:
            y = y.argmax(axis=1)
            target_type = type_of_target(y)
        else:
            y = column_or_1d(y, warn=True)
            target_type = type_of_target(y, input_name="y", raise_unknown=True)
        if target_type not in ("binary", "multiclass"):
            raise ValueError(
                f"Unknown label type {target_type!r}: y must hold class labels (a "
                "binary or multiclass target), got a "
                f"{target_type} target. Pruners select samples per class, so "
                "continuous or multi-output targets are not supported."
            )
        if np.unique(y).size < 2:
            raise ValueError(
                f"y has a single class ({np.unique(y)[0]!r}); pruning with class "
                "quotas needs at least two classes."
            )
        return y, one_hot

    def _fit_resample(self, X, y):
        self._prune(X, y)
        kept = self.sample_indices_
        return take_rows(X, kept), y[kept]

    def _prune(self, X, y, groups=None, key=None):
        """Score, allocate and select; sets the fitted attributes.

        ``key`` is the :class:`~skprune._context.DataKey` of a pruner that
        fits this one on the same data (``StrategyQ``), so that the data is
        hashed once.
        """
        owner = type(self).__name__
        if X is None and self._requires_X:
            raise ValueError(
                f"{owner} scores the samples themselves, so X cannot be None; pass the "
                "data. Only pruners that are given their scores (ScorePruner) or draw them "
                "(RandomPruner) prune from y alone."
            )
        labels = y if groups is None else groups
        group_labels, group_index = np.unique(labels, return_inverse=True)
        group_sizes = np.bincount(group_index)
        n_keep = round(self.density * y.shape[0])
        if n_keep < group_labels.size:
            kind = "classes" if groups is None else "groups"
            raise ValueError(
                f"density={self.density} keeps round({self.density} * {y.shape[0]}) = "
                f"{n_keep} samples, fewer than the {group_labels.size} {kind} in the data; "
                f"every one keeps at least one sample. Use a density of at least "
                f"{smallest_density(group_labels.size, y.shape[0])}."
            )
        # Seeds are drawn in a fixed order whatever the quota, so that scores
        # and quota statistics depend on neither density nor quota (and can
        # be cached). With random_state=None they come from numpy's global
        # generator, as scikit-learn's estimators do; nothing else below
        # touches a global generator.
        random_state = check_random_state(self.random_state)
        score_seed, quota_seed, tie_seed = (
            int(seed) for seed in random_state.randint(np.iinfo(np.int32).max, size=3)
        )
        context = PruningContext(
            X=X, y=y, groups=groups, group_labels=group_labels, group_index=group_index,
            group_sizes=group_sizes, n_keep=n_keep, density=self.density, seed=quota_seed,
            key=key if key is not None else DataKey(X, y, owner),
            cacheable_seed=isinstance(self.random_state, numbers.Integral),
            memory=self.memory, estimator=self.estimator, owner=owner, verbose=self.verbose,
        )
        # A bad selection parameter or schedule fails before any network trains.
        selection = make_selection(self.selection)
        selection._validate_params()
        self._check_before_scoring()
        with preserved_random_state():
            self.scores_ = self._scores(context, score_seed)
            tie_break = np.random.RandomState(tie_seed)
            if self.quota is None:
                self.quota_ = None
                self.sample_indices_ = selection.select_global(
                    self.scores_, group_index, n_keep, tie_break
                )
            else:
                self.quota_ = make_quota(self.quota).fit(context)
                counts = allocate_class_counts(group_sizes, self.quota_.weights_, n_keep)
                _warn_starved(self.quota_, group_labels, group_sizes, counts, self.density)
                self.sample_indices_ = selection.select(
                    self.scores_, group_index, counts, tie_break
                )
        self._set_counts(y, context)
        if groups is not None:
            _warn_lost_classes(owner, y, self.sample_indices_)
        return context

    def _set_counts(self, y, context):
        self.class_counts_, self.class_densities_ = _kept_per(y, self.sample_indices_)
        self.sampling_strategy_ = dict(self.class_counts_)
        for name in ("group_counts_", "group_densities_", "class_weights_",
                     "group_weights_", "class_recall_", "group_recall_"):
            self.__dict__.pop(name, None)
        if context.groups is not None:
            self.group_counts_, self.group_densities_ = _kept_per(
                context.groups, self.sample_indices_
            )
        if self.quota_ is not None:
            kind = "class" if context.groups is None else "group"
            setattr(self, f"{kind}_weights_", dict(zip(context.group_labels.tolist(),
                                                       self.quota_.weights_.tolist())))
            if hasattr(self.quota_, "group_recall_"):
                setattr(self, f"{kind}_recall_", self.quota_.group_recall_)

    def _scores(self, context, seed):
        """Scores of every row: each run read from the cache or computed, checked, combined."""
        owner = context.owner
        cacheable = self._cache_scores and context.data_key is not None
        score_params = {
            name: value for name, value in self.get_params(deep=False).items()
            if name not in NON_SCORE_PARAMS
        }
        n_samples = context.n_samples
        seeds = run_seeds(seed, getattr(self, "n_runs", 1))
        entries = [
            CacheEntry(
                self.memory,
                (type(self), score_params, context.data_key, run_seed) if cacheable else None,
                schema=Schema(scores=("float64", (n_samples,))),
                check=lambda result: check_scores(result["scores"], n_samples, owner),
                what=f"{owner} scores",
            )
            for run_seed in seeds
        ]
        results = [entry.load() for entry in entries]
        missing = [run for run, result in enumerate(results) if result is None]
        with progress(len(missing), f"{owner} query runs", self.verbose) as bar:
            for run, scores in self._compute_runs(context, [seeds[run] for run in missing]):
                results[missing[run]] = entries[missing[run]].store({"scores": scores})
                bar.update()
        run_scores = []
        for result in results:
            scores = result["scores"].astype(float)
            if self._continuous_scores:
                _warn_collapsed(scores, owner)
            run_scores.append(scores)
        self.run_scores_ = np.stack(run_scores)
        return self._combine_runs(self.run_scores_)

    def _compute_runs(self, context, seeds):
        """``(position, scores)`` of every run seed, as the runs finish.

        With ``n_jobs`` other than 1 the runs train in parallel worker
        processes (joblib), one per CUDA device in turn when the estimator
        runs on CUDA and several devices are visible. Every run is seeded on
        its own, so the scores are those of the sequential runs.
        """
        n_jobs = 1 if self.n_jobs is None else self.n_jobs
        if len(seeds) <= 1 or effective_n_jobs(n_jobs) == 1:
            for position, run_seed in enumerate(seeds):
                yield position, self._score_run(context.X, context.y, run_seed)
            return
        devices = _run_devices(self.estimator, len(seeds))
        threads = max(1, torch.get_num_threads() // min(effective_n_jobs(n_jobs), len(seeds)))
        tasks = (delayed(_score_run_in_worker)(self, context.X, context.y, run_seed, device,
                                               threads)
                 for run_seed, device in zip(seeds, devices))
        outputs = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
        yield from enumerate(outputs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        tags.input_tags.string = False
        tags.sampler_tags.sample_indices = True
        return tags


def _num_samples_or_len(obj):
    if isinstance(obj, torch.utils.data.Dataset):
        return len(obj)
    return _num_samples(obj)


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


def _check_groups(groups, n_samples):
    """Groups as a 1-D array of one label per row, or ``None``."""
    if groups is None:
        return None
    groups = column_or_1d(np.asarray(groups), warn=True)
    if groups.shape[0] != n_samples:
        raise ValueError(
            f"groups has {groups.shape[0]} entries for {n_samples} samples; pass one group "
            "label per sample."
        )
    if groups.dtype.kind == "f" and not np.all(np.isfinite(groups)):
        raise ValueError("groups contains NaN or infinite values; give every sample a group.")
    if groups.dtype.kind == "O" and any(group is None for group in groups):
        raise ValueError("groups contains None; give every sample a group.")
    return groups


def _kept_per(labels, kept):
    """Kept rows and kept fraction of every label, as two dicts."""
    values, index = np.unique(labels, return_inverse=True)
    sizes = np.bincount(index)
    counts = np.bincount(index[kept], minlength=values.size)
    return (dict(zip(values.tolist(), counts.tolist())),
            dict(zip(values.tolist(), (counts / sizes).tolist())))


def _take_rows(original, checked, indices):
    """Kept rows in the caller's own type: pandas keeps its index, lists stay lists."""
    if isinstance(original, (torch.utils.data.Dataset, list)) or hasattr(original, "iloc"):
        return take_rows(original, indices)
    return checked[indices]


def smallest_density(n_groups, n_samples, digits=3):
    """The smallest density, written with ``digits`` significant digits, that works.

    A density ``d`` keeps ``round(d * n_samples)`` rows, which must be at
    least ``n_groups``. The bound ``(n_groups - 0.5) / n_samples`` is rounded
    up, not to the nearest, at the printed precision, and checked: Python
    rounds halves to even, so the bound itself may fall short.

    Parameters
    ----------
    n_groups, n_samples : int
    digits : int, default=3

    Returns
    -------
    density : str
        As printed, e.g. ``"0.00706"``; parses to a float that passes.

    Examples
    --------
    >>> from skprune.base import smallest_density
    >>> smallest_density(10, 1347)
    '0.00706'
    """
    lower = (n_groups - 0.5) / n_samples
    step = Decimal(1).scaleb(math.floor(math.log10(lower)) - digits + 1)
    density = (Decimal(lower) / step).to_integral_value(ROUND_CEILING) * step
    while round(float(density) * n_samples) < n_groups and density < 1:
        density += step
    return format(min(density, Decimal(1)).normalize(), "f")


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
            stacklevel=4,
        )


def _warn_lost_classes(owner, y, kept):
    # Quotas and the guaranteed row are per group: a class that spans
    # several groups can lose every row.
    lost = np.setdiff1d(np.unique(y), np.unique(y[kept]))
    if lost.size:
        warnings.warn(
            f"{owner} keeps no row of classes {lost.tolist()}: every group keeps a row, but "
            "these classes' groups lost theirs to other classes. Use groups that refine the "
            "classes (e.g. class x attribute), or a higher density.",
            StarvedGroupWarning,
            stacklevel=5,
        )


def _warn_starved(quota, group_labels, group_sizes, counts, density):
    densities = counts / group_sizes
    # One row is a cut only where the group's even share is two or more.
    starved = ((counts == 1) & (density * group_sizes >= 2)) | (densities < 0.1 * density)
    if not starved.any():
        return
    names = group_labels[starved].tolist()
    detail = ", ".join(
        f"{label}: {count} of {size}"
        for label, count, size in zip(names, counts[starved], group_sizes[starved])
    )
    hint = quota._starvation_hint()
    warnings.warn(
        f"{type(quota).__name__} cuts {names} to {'its' if len(names) == 1 else 'their'} "
        f"guaranteed minimum or below a tenth of the overall density {density:g} "
        f"(kept {detail}). Models trained on this selection may fail on "
        f"{'it' if len(names) == 1 else 'them'}.{hint}",
        StarvedGroupWarning,
        stacklevel=5,
    )
