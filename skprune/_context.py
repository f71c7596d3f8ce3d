"""What a pruner knows about the data it prunes, built once per fit."""

import contextlib
import contextvars
import dataclasses
import warnings

import numpy as np

from .cache import UncacheableError, fingerprint

#: The keys of the fits in progress, with their data (see :meth:`DataKey.shared`).
_shared_keys = contextvars.ContextVar("skprune_shared_data_keys", default=())


class DataKey:
    """The content hash of ``(X, y)``, computed on first use and then remembered.

    Shared by a pruner's context and by the contexts of the pruners its
    quota fits on the same data (``StrategyQ``, through their public
    ``fit``), so that the data is hashed once per fit whatever reads the
    key: while a fit is in :meth:`shared`, :meth:`of` returns its key for the
    very same ``X`` object and equal labels.

    Parameters
    ----------
    X, y : the data being pruned
    owner : str
        Name of the pruner, for the warning when the data cannot be keyed.
    """

    _UNSET = object()

    def __init__(self, X, y, owner):
        self._data = (X, y)
        self._owner = owner
        self._value = self._UNSET

    @classmethod
    def of(cls, X, y, owner):
        """The key of ``(X, y)``: that of an enclosing fit on the same data, or a new one."""
        for key, shared_X, shared_y in _shared_keys.get():
            if shared_X is X and np.array_equal(shared_y, y):
                return key
        return cls(X, y, owner)

    @contextlib.contextmanager
    def shared(self, X, y):
        """Context in which fits on ``(X, y)`` itself reuse this key (see :meth:`of`)."""
        token = _shared_keys.set((*_shared_keys.get(), (self, X, y)))
        try:
            yield self
        finally:
            _shared_keys.reset(token)

    def get(self):
        """The hash, or ``None`` (with a warning) when the data cannot be keyed."""
        if self._value is self._UNSET:
            try:
                self._value = fingerprint(self._data)
            except UncacheableError as exc:
                warnings.warn(f"{self._owner} does not cache its results: {exc}.",
                              UserWarning, stacklevel=5)
                self._value = None
            self._data = None  # the key must not keep the data alive
        return self._value


@dataclasses.dataclass(frozen=True)
class PruningContext:
    """The data of one ``fit_resample`` call and everything derived from it once.

    Quotas are fitted on it (:meth:`skprune.quotas.BaseQuota.fit`), and
    scores are keyed on its ``data_key``, so that the data is validated,
    encoded, counted and hashed once per fit, whatever reads it.

    Parameters
    ----------
    X : validated array or torch Dataset
        The rows being pruned.
    y : ndarray of shape (n_samples,)
        Their class labels.
    groups : ndarray of shape (n_samples,) or None
        Group labels given as fit metadata; ``None`` when the groups are the
        classes.
    group_labels : ndarray of shape (n_groups,)
        Sorted unique groups (the classes, without ``groups``).
    group_index : ndarray of int, shape (n_samples,)
        Position of every row's group in ``group_labels``.
    group_sizes : ndarray of int, shape (n_groups,)
        Rows per group.
    n_keep : int
        Rows the pruner keeps, ``round(density * n_samples)``.
    density : float
    seed : int
        Seed of everything random in a quota.
    key : DataKey
        The content hash of ``(X, y)``, computed when first needed.
    cacheable_seed : bool
        Whether the pruner's ``random_state`` is an integer, so that results
        computed from ``seed`` may be reused.
    memory : None, str, path or joblib.Memory
        The pruner's cache.
    estimator : estimator object or None
        The pruner's estimator.
    owner : str
        Name of the pruner, for messages.
    verbose : int
        The pruner's ``verbose``: quotas that train show their progress too.
    query_predictions : list of dict or None
        Validation predictions of the pruner's own query networks, one dict
        per run (``"last"`` and ``"best"`` epoch), when its quota asked for
        them (:meth:`skprune.quotas.BaseQuota._query_validation`); MetriQ
        then reads class recall from them instead of training networks.
    """

    X: object
    y: np.ndarray
    groups: object
    group_labels: np.ndarray
    group_index: np.ndarray
    group_sizes: np.ndarray
    n_keep: int
    density: float
    seed: int
    key: DataKey
    cacheable_seed: bool
    memory: object
    estimator: object
    owner: str
    verbose: int = 0
    query_predictions: object = None

    @property
    def n_samples(self):
        """Rows being pruned."""
        return self.y.shape[0]

    @property
    def data_key(self):
        """Content hash of ``(X, y)``, or ``None`` when results must not be cached.

        ``None`` without an integer ``random_state`` (a result must not be
        reused when every fit should draw anew) and for data that cannot be
        keyed by content.
        """
        return self.key.get() if self.cacheable_seed else None
