"""The base class of every pruner."""

import dataclasses
import functools
import inspect
import math
import numbers
import os
import warnings
from abc import abstractmethod
from decimal import ROUND_CEILING, Decimal

import numpy as np
import torch
from imblearn.base import BaseSampler
from sklearn.base import _fit_context
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _num_samples,
    check_is_fitted,
    check_random_state,
    column_or_1d,
    validate_data,
)

from ._context import DataKey, PruningContext
from ._docstrings import pruner_docstring
from ._runs import run_scores
from .exceptions import StarvedGroupWarning, user_stacklevel
from .quotas import QUOTAS, BaseQuota, allocate_class_counts, make_quota
from .selection import SELECTIONS, BaseSelection
from .utils._random_state import preserved_random_state, run_seeds
from .utils._settings import check_selection_and_schedule
from .utils._tags import with_pruner_tags
from .utils._torch_data import (
    check_dataset_labels,
    check_not_dataset_items,
    is_dataset,
    take_rows,
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

    {scores_attribute}
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
        than the estimator's schedule); subclasses check them here.
        :func:`skprune.utils.check_pruner_settings` calls it.
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
        X_checked, y_checked, one_hot = self._check_inputs(X, y)
        _warn_uncached_memory(self)
        X_kept, y_kept = self._fit_resample(
            X_checked, y_checked, groups=_check_groups(groups, y_checked.shape[0])
        )
        # to_frame's index: the caller's own, for pandas input.
        self._row_index_ = X.index if hasattr(X, "iloc") else None
        # The kept rows in the caller's own types: pandas keeps its index,
        # lists stay lists, a one-hot target stays one-hot.
        kept = self.sample_indices_
        if _keeps_own_type(X):
            X_kept = take_rows(X, kept)
        if one_hot or _keeps_own_type(y):
            y_kept = take_rows(y if _keeps_own_type(y) else np.asarray(y), kept)
        return X_kept, y_kept

    def _fit_resample(self, X, y, groups=None):
        """Score, allocate and select on validated inputs; sets the fitted attributes.

        Returns
        -------
        X_kept, y_kept
            The kept rows of the validated ``X`` (``None`` when ``X`` is) and
            ``y``.
        """
        owner = type(self).__name__
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
            key=DataKey.of(X, y, owner),
            cacheable_seed=isinstance(self.random_state, numbers.Integral),
            memory=self.memory, estimator=self.estimator, owner=owner, verbose=self.verbose,
        )
        # A bad selection parameter or schedule fails before any network trains.
        selection = check_selection_and_schedule(self)
        quota = None if self.quota is None else make_quota(self.quota)
        # A quota that learns from trained networks (MetriQ) may read them
        # off this pruner's own query networks instead of training more.
        validation = None if quota is None else quota._query_validation(context, self)
        with preserved_random_state():
            seeds = run_seeds(score_seed, getattr(self, "n_runs", 1))
            self.run_scores_, predictions = run_scores(self, context, seeds, validation)
            self.scores_ = self._combine_runs(self.run_scores_)
            if predictions is not None:
                context = dataclasses.replace(context, query_predictions=predictions)
            tie_break = np.random.RandomState(tie_seed)
            if self.quota is None:
                self.quota_ = None
                self.sample_indices_ = selection.select_global(
                    self.scores_, group_index, n_keep, tie_break
                )
                _warn_starved(f"{owner} (quota=None)", _NO_QUOTA_HINT, group_labels,
                              group_sizes, np.bincount(group_index[self.sample_indices_],
                                                       minlength=group_labels.size),
                              self.density)
            else:
                # A pruner that the quota fits on the same data (StrategyQ)
                # reuses this fit's content hash.
                with context.key.shared(X, y):
                    self.quota_ = quota.fit(context)
                counts = allocate_class_counts(group_sizes, self.quota_.weights_, n_keep)
                _warn_starved(type(self.quota_).__name__, self.quota_._starvation_hint(),
                              group_labels, group_sizes, counts, self.density)
                self.sample_indices_ = selection.select(
                    self.scores_, group_index, counts, tie_break
                )
        self._set_counts(y, context)
        self._fit_labels_, self._fit_groups_ = y, groups
        self._row_index_ = None
        if groups is not None:
            _warn_lost_classes(owner, y, self.sample_indices_)
        kept = self.sample_indices_
        return (None if X is None else take_rows(X, kept)), y[kept]

    def _check_inputs(self, X, y):
        """Validated ``X`` (``None`` allowed where scoring does not read it) and labels.

        Returns
        -------
        X, y, one_hot
            ``one_hot``: whether ``y`` came one-hot encoded.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None: pruners keep samples per class."
            )
        if X is None:
            if get_tags(self).pruner_tags.requires_X:
                raise ValueError(
                    f"{type(self).__name__} scores the samples themselves, so X cannot be "
                    "None; pass the data. Only pruners that are given their scores "
                    "(ScorePruner) or draw them (RandomPruner) prune from y alone."
                )
            return (None, *self._check_targets(y))
        owner = type(self).__name__
        check_not_dataset_items(X, owner)
        n_samples, n_labels = _num_samples_or_len(X), _num_samples_or_len(y)
        if n_samples != n_labels:
            raise ValueError(
                f"X and y have different lengths: X has {n_samples} samples and y "
                f"has {n_labels} labels. Pass one label per sample."
            )
        if is_dataset(X):
            y, one_hot = self._check_targets(y)
            if isinstance(X, torch.utils.data.Dataset):
                # Reading items may run the Dataset's random transforms.
                with preserved_random_state():
                    check_dataset_labels(X, y, owner)
            return X, y, one_hot
        return self._check_X_y(X, y)

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
        elif y.ndim != 1:
            y = column_or_1d(y, warn=True)
            target_type = type_of_target(y, input_name="y", raise_unknown=True)
        if target_type not in ("binary", "multiclass"):
            raise ValueError(
                f"Unknown label type {target_type!r}: y must hold class labels (a "
                "binary or multiclass target), got a "
                f"{target_type} target. Pruners select samples per class, so "
                "continuous or multi-output targets are not supported."
            )
        if target_type == "binary" and np.unique(y).size < 2:
            raise ValueError(
                f"y has a single class ({np.unique(y)[0]!r}); pruning with class "
                "quotas needs at least two classes."
            )
        return y, one_hot

    def _set_counts(self, y, context):
        if context.groups is None:  # the groups are the classes, already counted
            self.class_counts_, self.class_densities_ = _kept_per(
                context.group_labels, context.group_index, self.sample_indices_
            )
        else:
            self.class_counts_, self.class_densities_ = _kept_per(
                *np.unique(y, return_inverse=True), self.sample_indices_
            )
        self.sampling_strategy_ = dict(self.class_counts_)
        for name in ("group_counts_", "group_densities_", "class_weights_",
                     "group_weights_", "class_recall_", "group_recall_"):
            self.__dict__.pop(name, None)
        if context.groups is not None:
            self.group_counts_, self.group_densities_ = _kept_per(
                context.group_labels, context.group_index, self.sample_indices_
            )
        if self.quota_ is not None:
            kind = "class" if context.groups is None else "group"
            setattr(self, f"{kind}_weights_", dict(zip(context.group_labels.tolist(),
                                                       self.quota_.weights_.tolist(),
                                                       strict=True)))
            if hasattr(self.quota_, "group_recall_"):
                setattr(self, f"{kind}_recall_", self.quota_.group_recall_)

    def to_frame(self):
        """Every row of the last fit, with its label, group, score and whether it was kept.

        Returns
        -------
        pandas.DataFrame
            One row per sample given to ``fit_resample``, in their order,
            indexed like ``X`` (its own index for pandas input, positions
            ``0 .. n_samples - 1`` named ``row`` otherwise), with columns
            ``label``, ``group`` (the ``groups`` given to ``fit``, or the
            label without them), ``score`` (``scores_``) and ``kept``
            (whether the row is in ``sample_indices_``).

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skprune import RandomPruner
        >>> X, y = load_digits(return_X_y=True)
        >>> frame = RandomPruner(density=0.3, random_state=0).fit(X, y).to_frame()
        >>> list(frame.columns), len(frame), int(frame["kept"].sum())
        (['label', 'group', 'score', 'kept'], 1797, 539)
        >>> frame.groupby("label")["kept"].mean().round(2).iloc[:3].tolist()
        [0.24, 0.31, 0.31]
        """
        import pandas as pd

        check_is_fitted(self, "sample_indices_")
        labels = self._fit_labels_
        kept = np.zeros(labels.shape[0], dtype=bool)
        kept[self.sample_indices_] = True
        index = self._row_index_
        if index is None:
            index = pd.RangeIndex(labels.shape[0], name="row")
        groups = labels if self._fit_groups_ is None else self._fit_groups_
        return pd.DataFrame(
            {"label": labels, "group": groups, "score": self.scores_, "kept": kept},
            index=index,
        )

    def __sklearn_tags__(self):
        tags = with_pruner_tags(super().__sklearn_tags__())
        tags.pruner_tags.query_runs = _default_n_runs(type(self))
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        tags.input_tags.string = False
        tags.sampler_tags.sample_indices = True
        return tags


@functools.cache
def _default_n_runs(pruner_class):
    """The default of a pruner class's ``n_runs``, or 1 without one.

    The runs a strategy's authors combine are its ``n_runs`` default.
    """
    n_runs = inspect.signature(pruner_class).parameters.get("n_runs")
    return 1 if n_runs is None else n_runs.default


def _num_samples_or_len(obj):
    if isinstance(obj, torch.utils.data.Dataset):
        return len(obj)
    return _num_samples(obj)


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


def _kept_per(values, index, kept):
    """Kept rows and kept fraction of every label, as two dicts.

    ``values`` and ``index`` are ``np.unique(labels, return_inverse=True)``.
    """
    sizes = np.bincount(index, minlength=values.size)
    counts = np.bincount(index[kept], minlength=values.size)
    return (dict(zip(values.tolist(), counts.tolist(), strict=True)),
            dict(zip(values.tolist(), (counts / sizes).tolist(), strict=True)))


def _keeps_own_type(obj):
    """Whether kept rows are taken from the caller's object rather than its validated copy."""
    return is_dataset(obj) or isinstance(obj, list) or hasattr(obj, "iloc")


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


#: (pruner class, memory) pairs already warned about: a search fits clones of
#: one pruner many times, and one warning says it all.
_UNCACHED_WARNED = set()


def _warn_uncached_memory(pruner):
    # Only results computed from an integer seed are reused (anything else
    # must draw anew at every fit), so a cache location is then ignored.
    if pruner.memory is None or isinstance(pruner.random_state, numbers.Integral):
        return
    seen = (type(pruner).__name__, repr(pruner.memory))
    if seen in _UNCACHED_WARNED:
        return
    _UNCACHED_WARNED.add(seen)
    warnings.warn(
        f"{type(pruner).__name__} was given memory={pruner.memory!r} but "
        f"random_state={pruner.random_state!r}: only results computed from an integer "
        "random_state are cached, so nothing will be cached and every fit trains its "
        "query networks anew. Pass an integer, e.g. random_state=0, to cache.",
        UserWarning,
        stacklevel=user_stacklevel(),
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
            stacklevel=user_stacklevel(),
        )


def _warn_starved(who, hint, group_labels, group_sizes, counts, density):
    densities = counts / group_sizes
    # One row is a cut only where the group's even share is two or more.
    starved = ((counts == 1) & (density * group_sizes >= 2)) | (densities < 0.1 * density)
    if not starved.any():
        return
    warnings.warn(
        StarvedGroupWarning.starved(who, group_labels[starved].tolist(),
                                    counts[starved].tolist(), group_sizes[starved].tolist(),
                                    density, hint),
        stacklevel=user_stacklevel(),
    )


#: What a pruner without a quota says when its own selection starves a class.
_NO_QUOTA_HINT = (
    " Without a quota the pruner keeps the highest scores whatever their class, and a "
    "strategy that keeps hard samples first leaves easy classes little; a quota keeps every "
    "class a share: quota='metriq' (error-based, at least half the overall density each) or "
    "quota='proportional'."
)
