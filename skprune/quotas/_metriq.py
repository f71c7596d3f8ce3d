"""MetriQ: class quotas from validation error rates."""

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import clone
from sklearn.metrics import recall_score
from sklearn.model_selection import (
    StratifiedShuffleSplit,
    check_cv,
    cross_val_predict,
)
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval

from .._query import (
    is_skorch_classifier,
    net_inputs,
    net_targets,
    resolve_device,
    seeded,
)
from ..cache import cached_call, fingerprint
from ._base import BaseQuota


class MetriQ(BaseQuota):
    """Metric-based quotas: keep more of the classes a model gets wrong.

    A clone of ``estimator`` is trained on the data given to the pruner and
    its recall ``r_k`` on data it did not train on is measured for every
    class. Class ``k`` then gets the density weight ``1 - r_k``: target class
    densities are proportional to the error rates, classes whose density
    would exceed 1 are kept whole and their excess is redistributed (see
    :func:`~skprune.quotas.allocate_class_counts`). If every recall is 1 the
    weights are uniform.

    Read more in the :ref:`User Guide <quotas>`.

    Parameters
    ----------
    estimator : classifier, default=None
        Any scikit-learn classifier or skorch ``NeuralNetClassifier``. It is
        cloned, never fitted in place. ``None`` uses the pruner's
        ``estimator``.

    validation : float, int, cross-validation generator or tuple, default=0.1
        Where recall is measured:

        - float in (0, 1): a stratified hold-out of that fraction of the data
          given to ``fit_resample``; the model trains on the rest. Held-out
          rows stay eligible for keeping.
        - int or CV splitter: out-of-fold predictions over the whole data
          (``cross_val_predict``).
        - ``(X_val, y_val)``: the model trains on all the data given to
          ``fit_resample`` and is evaluated on this set (the paper uses half
          of the test set).

    smoothing : float >= 0, default=0.0
        Pseudo-count ``a`` added to the validation error rates:
        ``w_k = (e_k + a) / (n_k + 2a)`` for ``e_k`` errors among ``n_k``
        validation samples of class ``k``. ``0`` is the paper's
        ``1 - r_k``, under which a class with perfect validation recall keeps
        a single sample, which can make it the new worst class when the
        validation set is small or easy; ``a = 1`` (Laplace) keeps such
        classes in proportion to their remaining uncertainty.

    See Also
    --------
    StrategyQ : quotas copied from another pruner's class ratios.
    allocate_class_counts : the allocator that turns weights into counts.

    Notes
    -----
    A quota is never fitted itself: the pruner that uses it gets
    ``class_recall_`` (dict class -> validation recall) and
    ``class_weights_``.

    Vysogorets, Ahuja and Kempe, "DRoP: Distributionally Robust Data
    Pruning", arXiv 2404.05579 (MetriQ is called DRoP there).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skprune import MetriQ, RandomPruner
    >>> X, y = load_digits(return_X_y=True)
    >>> pruner = RandomPruner(LogisticRegression(max_iter=200), density=0.5,
    ...                       quota=MetriQ(validation=0.2), random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X / 16, y)
    >>> X_kept.shape
    (898, 64)
    >>> worst = min(pruner.class_recall_, key=pruner.class_recall_.get)
    >>> bool(pruner.class_densities_[worst] >= 0.5)
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "validation": [
            Interval(numbers.Real, 0, 1, closed="neither"),
            Interval(numbers.Integral, 2, None, closed="left"),
            "cv_object",
            tuple,
        ],
        "smoothing": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, estimator=None, validation=0.1, smoothing=0.0):
        self.estimator = estimator
        self.validation = validation
        self.smoothing = smoothing

    def class_weights(self, pruner, X, y, classes, seed):
        self._validate_params()
        estimator = self.estimator if self.estimator is not None else pruner.estimator
        if estimator is None:
            raise ValueError(
                f"quota='metriq' needs a classifier to measure class recall: pass "
                f"one as {type(pruner).__name__}(estimator=...) or as "
                "MetriQ(estimator=...)."
            )
        if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
            raise TypeError(
                "MetriQ's estimator must be a classifier with fit and predict; got "
                f"{type(estimator).__name__}."
            )
        key = None
        data_key = None
        if isinstance(pruner.random_state, numbers.Integral):
            data_key = pruner._data_fingerprint(X, y)
        if data_key is not None:
            key = ("MetriQ", fingerprint(estimator), _validation_key(self.validation),
                   data_key, seed)
        recall, n_validation = cached_call(
            pruner.memory, key, lambda: self._class_recall(estimator, X, y, classes, seed)
        )
        errors = (1.0 - recall) * n_validation
        weights = np.where(
            n_validation > 0,
            (errors + self.smoothing) / np.maximum(n_validation + 2 * self.smoothing, 1e-300),
            1.0 - recall,
        )
        if not np.any(weights > 0):
            weights = np.ones_like(weights)
        class_recall = dict(zip(classes.tolist(), recall.tolist()))
        return weights, {"class_recall_": class_recall}

    def _class_recall(self, estimator, X, y, classes, seed):
        """Validation recall of every class, and its number of validation samples."""
        validation = self.validation
        if isinstance(validation, tuple):
            if len(validation) != 2:
                raise ValueError(
                    "MetriQ validation must be a hold-out fraction, a number of folds, "
                    f"a CV splitter or a pair (X_val, y_val); got a {len(validation)}-tuple."
                )
            X_val, y_val = validation
            model = _fit(estimator, X, y, seed)
            y_true, y_pred = np.asarray(y_val), _predict(model, X_val, y)
        elif isinstance(validation, numbers.Real) and not isinstance(validation, numbers.Integral):
            # At least one validation sample per class, or recall is undefined.
            n_held_out = max(int(np.ceil(validation * len(y))), classes.size)
            splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_held_out, random_state=seed)
            try:
                train, test = next(splitter.split(np.zeros(len(y)), y))
            except ValueError as exc:
                raise ValueError(
                    f"MetriQ(validation={validation}) cannot hold out a stratified "
                    f"validation set from {len(y)} samples of {classes.size} classes "
                    f"({exc}). Use a larger fraction, an int number of folds, or an "
                    "explicit (X_val, y_val)."
                ) from None
            model = _fit(estimator, _rows(X, train), y[train], seed)
            y_true, y_pred = y[test], _predict(model, _rows(X, test), y)
        else:
            cv = check_cv(validation, y, classifier=True)
            with seeded(seed):
                y_pred = cross_val_predict(
                    _prepare(estimator, seed), _fit_inputs(estimator, X),
                    _fit_targets(estimator, y), cv=cv,
                )
            y_true, y_pred = y, _decode(estimator, y_pred, y)

        n_validation = np.array([np.count_nonzero(y_true == label) for label in classes])
        present = n_validation > 0
        recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0.0)
        if not present.all():
            warnings.warn(
                f"MetriQ: classes {classes[~present].tolist()} have no validation samples; "
                "they get the mean recall of the other classes.",
                UserWarning,
                stacklevel=4,
            )
            recall = np.where(present, recall, recall[present].mean() if present.any() else 0.0)
        return np.asarray(recall, dtype=float), n_validation


def _rows(X, indices):
    if isinstance(X, torch.utils.data.Dataset):
        return torch.utils.data.Subset(X, indices.tolist())
    return _safe_indexing(X, indices)


def _validation_key(validation):
    if isinstance(validation, tuple):
        return ("pair", fingerprint(validation))
    return repr(validation)


def _prepare(estimator, seed):
    model = clone(estimator)
    params = model.get_params(deep=False)
    if is_skorch_classifier(model):
        model.set_params(verbose=0, device=resolve_device(model.device))
    elif "random_state" in params and params["random_state"] is None:
        model.set_params(random_state=seed)
    return model


def _fit_targets(estimator, y):
    # Torch losses need integer targets that index the output units.
    return net_targets(y) if is_skorch_classifier(estimator) else y


def _fit_inputs(estimator, X):
    # Torch modules need float32 where the data is float64.
    return net_inputs(X) if is_skorch_classifier(estimator) else X


def _decode(estimator, y_pred, y):
    if not is_skorch_classifier(estimator) or np.array_equal(net_targets(y), y):
        return np.asarray(y_pred)
    return np.unique(y)[np.asarray(y_pred)]


def _fit(estimator, X, y, seed):
    model = _prepare(estimator, seed)
    with seeded(seed):
        model.fit(_fit_inputs(estimator, X), _fit_targets(estimator, y))
    return model


def _predict(model, X, y_train):
    return _decode(model, model.predict(_fit_inputs(model, X)), y_train)
