"""The base class of every pruner."""

import numbers
import os
import warnings
from abc import abstractmethod

import numpy as np
import torch
from imblearn.base import BaseSampler
from sklearn.base import _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _num_samples,
    check_random_state,
    column_or_1d,
    validate_data,
)

from ._selection import rank_by_score, select_global, select_per_class
from .cache import cached_call, fingerprint
from .quotas import QUOTA_NAMES, BaseQuota, allocate_class_counts, quota_weights

#: Parameters that only decide how many rows are kept, never their scores.
_SELECTION_PARAMS = frozenset({"density", "quota", "memory", "n_runs", "random_state"})


class DataPruner(BaseSampler):
    """Base class for pruners: keep the highest-scoring share of the data.

    A pruner is an imbalanced-learn sampler: ``fit_resample(X, y)`` returns
    the kept rows, and inside :func:`skprune.make_pipeline` it prunes the
    training data at fit time only, never the data a pipeline predicts on.
    Subclasses only supply per-sample scores (:meth:`_score_run`); how many
    rows each class keeps (``quota``) and which ones (highest scores first)
    is decided here, once, for every strategy.

    Parameters
    ----------
    estimator : estimator object, default=None
        The model used for scoring (a skorch ``NeuralNetClassifier``) and,
        with ``quota="metriq"``, for measuring class recall. Cloned, never
        modified.
    density : float in (0, 1], default=0.5
        Fraction of samples kept: exactly ``round(density * n_samples)``.
    quota : {None, "proportional", "balanced", "metriq"}, dict or quota object, default=None
        How the kept budget is split across classes. ``None`` keeps the
        globally highest scores; ``"proportional"`` keeps the same fraction
        of every class; ``"balanced"`` the same count; ``"metriq"`` or
        :class:`MetriQ` keeps fractions proportional to validation error
        rates; :class:`StrategyQ` copies another pruner's class ratios; a
        dict ``{class: weight}`` gives density weights directly. Every class
        keeps at least one sample.
    random_state : int, RandomState instance or None, default=None
        Seeds the query networks, the MetriQ split and tie breaks. Only
        integer seeds make results cacheable.
    memory : None, str, path or joblib.Memory, default=None
        Where scores and MetriQ recalls are cached. ``None`` caches within
        this process; a path or ``joblib.Memory`` shares the cache across
        processes and runs.

    Attributes
    ----------
    sample_indices_ : ndarray of int
        Kept rows, in their original order.
    scores_ : ndarray of shape (n_samples,)
        Score of every row (higher = harder = kept first).
    class_counts_ : dict
        Kept rows per class.
    class_densities_ : dict
        Kept fraction of every class.
    sampling_strategy_ : dict
        Same as ``class_counts_`` (imbalanced-learn's name).
    class_weights_ : dict
        Density weight of every class, when ``quota`` is not ``None``.
    n_features_in_ : int
        Number of features (second dimension) seen in ``fit_resample``;
        absent for Dataset inputs.

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

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "density": [Interval(numbers.Real, 0, 1, closed="right")],
        "quota": [None, StrOptions(set(QUOTA_NAMES)), dict, BaseQuota],
        "random_state": ["random_state"],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
    }

    def __init__(self, estimator=None, *, density=0.5, quota=None, random_state=None, memory=None):
        self.estimator = estimator
        self.density = density
        self.quota = quota
        self.random_state = random_state
        self.memory = memory

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

    def _combine_runs(self, run_scores):
        """Combine the scores of ``n_runs`` runs (rows) into one score per sample."""
        return run_scores.mean(axis=0)

    def fit(self, X, y):
        """Prune ``(X, y)`` and keep the fitted attributes; returns ``self``.

        ``fit_resample`` does the same and also returns the kept rows.
        """
        self.fit_resample(X, y)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_resample(self, X, y):
        """Keep ``round(density * n_samples)`` rows of ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...), or torch Dataset
            Samples: arrays of any rank (e.g. NCHW images), lists, pandas
            objects, sparse matrices, or a ``torch.utils.data.Dataset``.
        y : array-like of shape (n_samples,)
            Class labels (a one-hot encoded target is accepted and returned
            one-hot).

        Returns
        -------
        X_kept : same type as X
            The kept rows in their original order; a ``torch.utils.data.Subset``
            (no copy) when ``X`` is a Dataset.
        y_kept : same type as y
            Their labels.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None: pruners keep samples per class."
            )
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
        self._fit_resample(X_checked, y_checked)
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
        try:
            return self._prune(X, y)
        finally:
            # The memo holds the data: a fitted pruner must not keep (or pickle) it.
            self.__dict__.pop("_data_fingerprint_memo", None)

    def _prune(self, X, y):
        classes, y_encoded = np.unique(y, return_inverse=True)
        class_sizes = np.bincount(y_encoded)
        n_keep = round(self.density * y.shape[0])
        if n_keep < classes.size:
            raise ValueError(
                f"density={self.density} keeps round({self.density} * {y.shape[0]}) = "
                f"{n_keep} samples, fewer than the {classes.size} classes in y; every "
                f"class keeps at least one sample. Use a density of at least "
                f"{classes.size / y.shape[0]:.4g}."
            )
        # Draws happen in a fixed order whatever the quota, so that scores and
        # quota statistics do not depend on density or quota (and can be cached).
        random_state = check_random_state(self.random_state)
        score_seed, quota_seed, tie_seed = random_state.randint(np.iinfo(np.int32).max, size=3)

        self.scores_ = self._scores(X, y, int(score_seed))
        order = rank_by_score(self.scores_, np.random.RandomState(tie_seed))
        if self.quota is None:
            self.sample_indices_ = select_global(order, y_encoded, classes.size, n_keep)
        else:
            weights, quota_attributes = quota_weights(
                self.quota, self, X, y, classes, int(quota_seed)
            )
            for name, value in quota_attributes.items():
                setattr(self, name, value)
            self.class_weights_ = dict(zip(classes.tolist(), np.asarray(weights).tolist()))
            counts = allocate_class_counts(class_sizes, weights, n_keep)
            self.sample_indices_ = select_per_class(order, y_encoded, counts)

        kept_per_class = np.bincount(y_encoded[self.sample_indices_], minlength=classes.size)
        self.class_counts_ = dict(zip(classes.tolist(), kept_per_class.tolist()))
        self.class_densities_ = dict(
            zip(classes.tolist(), (kept_per_class / class_sizes).tolist())
        )
        self.sampling_strategy_ = dict(self.class_counts_)
        kept = self.sample_indices_
        return _take_rows(X, X, kept), y[kept]

    def _data_fingerprint(self, X, y):
        """Fingerprint of the data being pruned, hashed once per fit.

        Scores and quota statistics (MetriQ) key their cache entries on it.
        ``None`` when the data cannot be hashed: then nothing is cached.
        """
        memo = self.__dict__.get("_data_fingerprint_memo")
        if memo is not None and memo[0] is X and memo[1] is y:
            return memo[2]
        try:
            key = fingerprint((X, y))
        except Exception as exc:  # e.g. a Dataset that cannot be pickled
            warnings.warn(
                f"{type(self).__name__} does not cache scores: its data cannot be "
                f"hashed ({exc}).",
                UserWarning,
                stacklevel=4,
            )
            key = None
        self._data_fingerprint_memo = (X, y, key)
        return key

    def _scores(self, X, y, seed):
        n_runs = getattr(self, "n_runs", 1)
        cacheable = self._cache_scores and isinstance(self.random_state, numbers.Integral)
        data_key = self._data_fingerprint(X, y) if cacheable else None
        cacheable = cacheable and data_key is not None
        score_params = {
            name: value
            for name, value in self.get_params(deep=False).items()
            if name not in _SELECTION_PARAMS
        }
        run_scores = []
        for run in range(n_runs):
            run_seed = int(np.random.SeedSequence([seed, run]).generate_state(1)[0] >> 1)
            key = (type(self).__qualname__, score_params, data_key, run_seed) if cacheable else None
            scores = cached_call(
                self.memory, key, lambda run_seed=run_seed: self._score_run(X, y, run_seed)
            )
            run_scores.append(np.asarray(scores, dtype=float))
        return self._combine_runs(np.stack(run_scores))

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


def _take_rows(original, checked, indices):
    """Kept rows of ``original``, in its own type (pandas keeps its index)."""
    if isinstance(original, torch.utils.data.Dataset):
        return torch.utils.data.Subset(original, indices.tolist())
    if hasattr(original, "iloc"):
        return original.iloc[indices]
    if isinstance(original, list):
        return [original[i] for i in indices]
    return checked[indices]
