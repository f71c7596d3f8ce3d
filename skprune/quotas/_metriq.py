"""MetriQ: quotas from validation error rates."""

import numbers
import warnings

import numpy as np
import torch
from scipy.special import betaincinv
from sklearn.base import clone
from sklearn.model_selection import StratifiedShuffleSplit, check_cv
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, column_or_1d
from skorch.callbacks import Callback

from .._query import is_skorch_classifier, predict_classes, train_query_net
from .._torch_utils import run_seeds, seeded, take_rows
from ..cache import cached_result
from ._base import BaseQuota


class MetriQ(BaseQuota):
    """Metric-based quotas: keep more of the classes a model gets wrong.

    A clone of ``estimator`` is trained on the data given to the pruner, and
    its recall ``r_k`` on data it did not train on is measured for every
    class. Class ``k`` then gets a density weight that grows with its error
    rate: target class densities are proportional to the weights, classes
    whose density would exceed 1 are kept whole and their excess is
    redistributed (see :func:`~skprune.quotas.allocate_class_counts`).

    The paper's weight is the measured error rate ``1 - r_k``. By default
    skprune uses an upper confidence bound on the error rate instead
    (``confidence=0.9``): a class with perfect recall on its 15 validation
    samples may well have an error rate of 14%, and is not starved as if it
    were known to be perfect. With many validation samples per class the
    bound approaches ``1 - r_k`` and the two agree.

    Read more in the :ref:`User Guide <metriq>`.

    Parameters
    ----------
    estimator : classifier, default=None
        Any scikit-learn classifier or skorch ``NeuralNetClassifier``. It is
        cloned, never fitted in place. ``None`` uses the pruner's
        ``estimator``. A skorch network trains as the strategies' query
        networks do: on every row it is given (``train_split=None``),
        silently, with the same output and label checks and the same
        divergence guard.

    validation : float, int, cross-validation generator or tuple, default=0.1
        Where recall is measured:

        - float in (0, 1): a stratified hold-out of that fraction of the data
          given to ``fit_resample``; the model trains on the rest. Held-out
          rows stay eligible for keeping.
        - int or CV splitter: out-of-fold predictions over the whole data,
          one training per fold.
        - ``(X_val, y_val)``: the model trains on all the data given to
          ``fit_resample`` and is evaluated on this set (the paper uses half
          of the test set).

    n_runs : int, default=1
        Independent trainings (initialization, shuffling); their class
        recalls are averaged. The DRoP authors average over the strategy's
        query initializations (5 for EL2N and GraNd).

    epoch : {"last", "best"}, default="last"
        When recall is read: after the last epoch, or, for a skorch network,
        at the epoch with the best overall validation accuracy (each run and
        fold chooses its own), as the DRoP authors do.

    confidence : float in (0, 1) or None, default=0.9
        The weight of class ``k`` is the upper end of a one-sided
        ``confidence`` Clopper-Pearson interval for its error rate, from its
        ``e_k`` errors among ``n_k`` validation samples: the
        ``confidence``-quantile of ``Beta(e_k + 1, n_k - e_k)``. A class with
        no validation sample gets weight 1. ``None`` uses the observed error
        rate ``e_k / n_k`` (the paper's ``1 - r_k``); choose it to reproduce
        the paper, or when every class has hundreds of validation samples,
        where the two hardly differ.

    smoothing : float >= 0, default=0.0
        Pseudo-count ``a`` added to both the errors and the correct
        predictions of every class: the observed rate becomes
        ``(e_k + a) / (n_k + 2a)`` (``a = 1`` is Laplace's rule), and the
        bound is taken on ``e_k + a`` errors among ``n_k + 2a``.
        ``confidence=None, smoothing=0`` is the paper's exact ``1 - r_k``,
        under which a class with perfect validation recall keeps a single
        sample until every other class is kept whole.

    Attributes
    ----------
    weights_ : ndarray of shape (n_groups,)
        Density weight of every class.
    group_labels_ : ndarray of shape (n_groups,)
        The classes, in the order of ``weights_``.
    class_recall_ : dict
        Validation recall of every class, averaged over runs.
    n_validation_ : dict
        Validation samples of every class (over all folds).

    See Also
    --------
    StrategyQ : quotas copied from another pruner's class ratios.
    allocate_class_counts : the allocator that turns weights into counts.

    Notes
    -----
    Vysogorets, Ahuja and Kempe, "DRoP: Distributionally Robust Data
    Pruning", arXiv 2404.05579 (MetriQ is called DRoP there). The DRoP
    authors' code and skprune's defaults differ in a few places; the user
    guide's :ref:`fidelity` lists them with the switch that restores each.

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
        "n_runs": [Interval(numbers.Integral, 1, None, closed="left")],
        "epoch": [StrOptions({"last", "best"})],
        "confidence": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "smoothing": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, estimator=None, validation=0.1, *, n_runs=1, epoch="last",
                 confidence=0.9, smoothing=0.0):
        self.estimator = estimator
        self.validation = validation
        self.n_runs = n_runs
        self.epoch = epoch
        self.confidence = confidence
        self.smoothing = smoothing

    def _weights(self, context):
        estimator = self.estimator if self.estimator is not None else context.estimator
        if estimator is None:
            raise ValueError(
                f"quota='metriq' needs a classifier to measure class recall: pass one as "
                f"{context.owner}(estimator=...) or as MetriQ(estimator=...)."
            )
        if self.epoch == "best" and not is_skorch_classifier(estimator):
            raise ValueError(
                "MetriQ(epoch='best') reads recall after every epoch of a skorch network; "
                f"{type(estimator).__name__} has no epochs. Use epoch='last'."
            )
        validation = self._checked_validation()
        key = None
        if context.data_key is not None and context.cacheable_seed and not _random_splitter(
            validation
        ):
            key = ("MetriQ", estimator, validation, self.n_runs, self.epoch,
                   context.data_key, context.seed)
        result = cached_result(
            context.memory, key,
            lambda: self._measure(estimator, validation, context),
            check=lambda result: _check_recall(result, context.group_labels.shape[0]),
            what="MetriQ recalls",
        )
        recall, n_validation = result["recall"], result["n_validation"]
        labels = context.group_labels
        missing = n_validation == 0
        if missing.any():
            warnings.warn(
                f"MetriQ: classes {labels[missing].tolist()} have no validation samples; "
                + ("they get the mean recall of the other classes."
                   if self.confidence is None else "they get the largest weight, 1."),
                UserWarning,
                stacklevel=4,
            )
            recall = np.where(missing, recall[~missing].mean() if (~missing).any() else 0.0,
                              recall)
        self.class_recall_ = dict(zip(labels.tolist(), recall.tolist()))
        self.n_validation_ = dict(zip(labels.tolist(), n_validation.astype(int).tolist()))
        return error_weights(recall, n_validation, self.confidence, self.smoothing)

    def _checked_validation(self):
        validation = self.validation
        if not isinstance(validation, tuple):
            return validation
        if len(validation) != 2:
            raise ValueError(
                "MetriQ validation must be a hold-out fraction, a number of folds, a CV "
                f"splitter or a pair (X_val, y_val); got a {len(validation)}-tuple."
            )
        X_val, y_val = validation
        if not hasattr(X_val, "__getitem__") or not hasattr(X_val, "__len__"):
            raise ValueError("MetriQ validation=(X_val, y_val) needs an array-like X_val.")
        if not isinstance(X_val, torch.utils.data.Dataset):
            X_val = check_array(X_val, accept_sparse=["csr", "csc"], allow_nd=True,
                                dtype="numeric", input_name="X_val")
        return X_val, column_or_1d(np.asarray(y_val), warn=True)

    def _measure(self, estimator, validation, context):
        """Validation recall of every class, averaged over runs, and validation counts."""
        labels = context.group_labels
        splits = list(_splits(validation, context))
        recalls, n_validation = [], None
        for run_seed in run_seeds(context.seed, self.n_runs):
            correct = np.zeros(labels.shape[0])
            counts = np.zeros(labels.shape[0])
            for train, X_val, y_val in splits:
                X_train = context.X if train is None else take_rows(context.X, train)
                y_train = context.y if train is None else context.y[train]
                hits = self._correct(estimator, X_train, y_train, X_val, y_val, run_seed)
                group = np.searchsorted(labels, y_val)
                known = (group < labels.shape[0]) & (labels[np.minimum(group, labels.size - 1)]
                                                     == y_val)
                correct += np.bincount(group[known], weights=hits[known],
                                       minlength=labels.shape[0])
                counts += np.bincount(group[known], minlength=labels.shape[0])
            recalls.append(np.divide(correct, counts, out=np.zeros_like(correct),
                                     where=counts > 0))
            n_validation = counts
        return {"recall": np.mean(recalls, axis=0), "n_validation": n_validation}

    def _correct(self, estimator, X_train, y_train, X_val, y_val, seed):
        """Whether each validation row is predicted correctly by a model trained under ``seed``."""
        if not is_skorch_classifier(estimator):
            model = clone(estimator)
            if model.get_params(deep=False).get("random_state", 0) is None:
                model.set_params(random_state=seed)
            with seeded(seed):
                model.fit(X_train, y_train)
                return np.asarray(model.predict(X_val)) == y_val
        # The net learns class indices of y_train; a validation label it never
        # saw cannot be predicted, so it maps to -1 (always wrong).
        trained_classes = np.unique(y_train)
        position = np.searchsorted(trained_classes, y_val)
        seen = (position < trained_classes.size) & (
            trained_classes[np.minimum(position, trained_classes.size - 1)] == y_val
        )
        target = np.where(seen, position, -1)
        if self.epoch == "best":
            recorder = _EpochPredictions(X_val)
            train_query_net(estimator, X_train, y_train, seed, owner="MetriQ",
                            callbacks=[("skprune_validation", recorder)])
            hits = recorder.predictions_ == target
            # The epoch with the best overall accuracy; the earliest of equals.
            return hits[int(np.argmax(hits.sum(axis=1)))]
        net, _ = train_query_net(estimator, X_train, y_train, seed, owner="MetriQ")
        return predict_classes(net, X_val) == target


class _EpochPredictions(Callback):
    """Predicted class index of every validation row after every epoch."""

    def __init__(self, X_val):
        self.X_val = X_val

    def initialize(self):
        self.predictions_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.predictions_.append(predict_classes(net, self.X_val))

    def on_train_end(self, net, **kwargs):
        self.predictions_ = np.stack(self.predictions_)
        self.X_val = None  # a fitted net must not carry the validation data


def _splits(validation, context):
    """``(train_rows or None, X_val, y_val)`` for every training a measurement needs."""
    X, y = context.X, context.y
    if isinstance(validation, tuple):
        yield None, validation[0], validation[1]
        return
    n_classes = context.group_labels.shape[0]
    if isinstance(validation, numbers.Real) and not isinstance(validation, numbers.Integral):
        # At least one validation sample per class, or recall is undefined.
        n_held_out = max(int(np.ceil(validation * len(y))), n_classes)
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_held_out,
                                          random_state=context.seed)
        try:
            train, test = next(splitter.split(np.zeros(len(y)), y))
        except ValueError as exc:
            raise ValueError(
                f"MetriQ(validation={validation}) cannot hold out a stratified validation "
                f"set from {len(y)} samples of {n_classes} classes ({exc}). Use a larger "
                "fraction, an int number of folds, or an explicit (X_val, y_val)."
            ) from None
        yield train, take_rows(X, test), y[test]
        return
    cv = check_cv(validation, y, classifier=True)
    for train, test in cv.split(np.zeros(len(y)), y):
        yield train, take_rows(X, test), y[test]


def error_weights(recall, n_validation, confidence=None, smoothing=0.0):
    """Density weights from validation recalls: error rates or their upper bounds.

    Parameters
    ----------
    recall : ndarray of shape (n_groups,)
    n_validation : ndarray of shape (n_groups,)
        Validation samples behind each recall.
    confidence : float in (0, 1) or None, default=None
        Level of the one-sided Clopper-Pearson upper bound; ``None`` uses
        the observed error rate.
    smoothing : float, default=0.0
        Pseudo-count added to errors and to correct predictions.

    Returns
    -------
    weights : ndarray of shape (n_groups,)

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.quotas import error_weights
    >>> recall, n = np.array([1.0, 0.8]), np.array([15, 15])
    >>> error_weights(recall, n)
    array([0. , 0.2])
    >>> error_weights(recall, n, confidence=0.9).round(3)
    array([0.142, 0.393])
    """
    recall = np.asarray(recall, dtype=float)
    n_validation = np.asarray(n_validation, dtype=float)
    errors = n_validation * (1.0 - recall) + smoothing
    trials = n_validation + 2.0 * smoothing
    if confidence is None:
        return np.divide(errors, trials, out=1.0 - recall, where=trials > 0)
    successes = trials - errors
    bound = np.ones_like(errors)
    defined = successes > 0
    bound[defined] = betaincinv(errors[defined] + 1.0, successes[defined], confidence)
    return bound


def _random_splitter(validation):
    """Whether a CV splitter draws its folds from unseeded randomness (never cached)."""
    if isinstance(validation, (numbers.Real, tuple)):
        return False
    random_state = getattr(validation, "random_state", 0)
    shuffles = getattr(validation, "shuffle", True)
    return shuffles and not isinstance(random_state, numbers.Integral)


def _check_recall(result, n_groups):
    for name in ("recall", "n_validation"):
        value = result.get(name)
        if value is None or value.shape != (n_groups,) or not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be {n_groups} finite numbers")
    if np.any((result["recall"] < 0) | (result["recall"] > 1)) or np.any(
        result["n_validation"] < 0
    ):
        raise ValueError("recalls must lie in [0, 1] and counts be non-negative")
