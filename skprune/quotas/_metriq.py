"""MetriQ: quotas from validation error rates."""

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import StratifiedShuffleSplit, check_cv
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, column_or_1d
from skorch.callbacks import Callback

from .._progress import progress
from .._query_training import is_skorch_classifier, predict_classes, train_query_net
from ..utils._random_state import run_seeds, seeded
from ..utils._torch_data import take_rows
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

    The paper's weight is the measured error rate ``1 - r_k``. With a few
    validation samples per class, or an easy problem, those rates are mostly
    noise: a class that made no error on its 13 validation samples gets
    weight 0 and keeps a single sample, and becomes the new worst class. By
    default skprune uses each class's *shrunk* error rate instead
    (``error_rate="shrunk"``), an empirical-Bayes estimate that pulls every
    rate towards the pooled one by as much as the spread between classes
    fails to exceed what binomial noise explains; clearly different classes
    (many validation samples, real differences) keep the paper's weights
    almost exactly. And it acts only on evidence: when a test of one common
    error rate does not reject (``significance``), validation cannot tell
    the classes apart, and every class keeps the same fraction.
    ``error_rate="observed"`` restores the paper.

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
          of the test set). With ``groups``, ``(X_val, y_val, groups_val)``.

        With ``groups`` given to the pruner, the recall of a group is the
        accuracy on its validation samples, and the weights are per group.

    n_runs : int, default=1
        Independent trainings (initialization, shuffling); their class
        recalls are averaged. The DRoP authors average over the strategy's
        query initializations (5 for EL2N and GraNd).

    epoch : {"last", "best"}, default="last"
        When recall is read: after the last epoch, or, for a skorch network,
        at the epoch with the best overall validation accuracy (each run and
        fold chooses its own), as the DRoP authors do.

    error_rate : {"shrunk", "observed"}, default="shrunk"
        The weight of class ``k``, from its ``e_k`` errors among ``n_k``
        validation samples (``e_k`` averaged over runs):

        - ``"shrunk"``: the posterior mean ``(e_k + s p) / (n_k + s)`` of a
          beta-binomial model whose prior mean ``p`` is the pooled error
          rate and whose strength ``s`` is fitted by the method of moments:
          ``s = p (1 - p) / tau2 - 1``, with ``tau2`` the spread of the
          class error rates beyond their binomial noise. No excess spread
          (``tau2 = 0``), or a test that does not reject (see
          ``significance``), gives equal weights; a large one gives ``s``
          near 0
          and the observed rates. A class without validation samples gets
          ``p``.
        - ``"observed"``: ``e_k / n_k``, the paper's ``1 - r_k``. Choose it
          to reproduce the paper, or when every class has hundreds of
          validation samples, where the two hardly differ.

    significance : float in (0, 1) or None, default=0.05
        With ``error_rate="shrunk"``, MetriQ first tests whether the class
        error rates differ beyond binomial noise (an exact Monte Carlo test
        of one common error rate, on the spread of the observed rates). When
        the test's p-value is ``significance`` or more, validation cannot
        tell the classes apart, and every class gets the same weight (the
        shrinkage with no spread between classes): MetriQ keeps the same
        fraction of every class, as ``quota="proportional"`` does. ``None``
        skips the test, and shrinks by the estimated spread however small.
        Not used with ``error_rate="observed"``, which follows the paper.

    smoothing : float >= 0, default=0.0
        Pseudo-count ``a`` added to both the errors and the correct
        predictions of every class before the weights are computed:
        ``(e_k + a) / (n_k + 2a)`` with ``error_rate="observed"`` (``a = 1``
        is Laplace's rule). ``error_rate="observed", smoothing=0`` is the
        paper's exact ``1 - r_k``, under which a class with perfect
        validation recall keeps a single sample until every other class is
        kept whole.

    Attributes
    ----------
    weights_ : ndarray of shape (n_groups,)
        Density weight of every class.
    group_labels_ : ndarray of shape (n_groups,)
        The classes, in the order of ``weights_``.
    group_recall_ : dict
        Validation recall of every class (accuracy of every group, with
        ``groups``), averaged over runs.
    class_recall_ : dict
        Same as ``group_recall_``, when the groups are the classes.
    n_validation_ : dict
        Validation samples of every class or group (over all folds).
    equal_rates_pvalue_ : float or None
        p-value of the test that every class (group) has the same error rate;
        ``None`` where no test was run (``error_rate="observed"`` or
        ``significance=None``).

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
        "error_rate": [StrOptions({"shrunk", "observed"})],
        "significance": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "smoothing": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, estimator=None, validation=0.1, *, n_runs=1, epoch="last",
                 error_rate="shrunk", significance=0.05, smoothing=0.0):
        self.estimator = estimator
        self.validation = validation
        self.n_runs = n_runs
        self.epoch = epoch
        self.error_rate = error_rate
        self.significance = significance
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
        validation = self._checked_validation(context)
        key = None
        if context.data_key is not None and context.cacheable_seed and not _random_splitter(
            validation
        ):
            # The class, not its name: a subclass measures differently.
            key = (type(self), estimator, validation, self.n_runs, self.epoch,
                   context.data_key, context.groups, context.seed)
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
                f"{type(self).__name__}: {'classes' if context.groups is None else 'groups'} "
                f"{labels[missing].tolist()} have no validation samples; "
                + "their recall is reported as the mean of the other classes', and their "
                + ("weight is the pooled error rate." if self.error_rate == "shrunk"
                   else "weight is the mean of the others'."),
                UserWarning,
                stacklevel=4,
            )
            recall = np.where(missing, recall[~missing].mean() if (~missing).any() else 0.0,
                              recall)
        self.group_recall_ = dict(zip(labels.tolist(), recall.tolist()))
        if context.groups is None:
            self.class_recall_ = self.group_recall_
        self.n_validation_ = dict(zip(labels.tolist(), n_validation.astype(int).tolist()))
        self.equal_rates_pvalue_ = None
        if self.error_rate == "shrunk" and self.significance is not None:
            self.equal_rates_pvalue_ = equal_rates_pvalue(
                recall[~missing], n_validation[~missing], self.smoothing, context.seed
            )
            if self.equal_rates_pvalue_ >= self.significance:
                # No evidence of any difference: the shrinkage with no spread.
                return _common_weights(*_smoothed_counts(recall, n_validation, self.smoothing))
        weights = error_weights(recall, n_validation, self.error_rate, self.smoothing)
        if missing.any() and self.error_rate == "observed":
            weights[missing] = weights[~missing].mean() if (~missing).any() else 1.0
        return weights

    def _starvation_hint(self):
        return (
            " MetriQ's weights are error rates: a class with (near-)perfect validation recall "
            "gets almost none. A larger validation set, MetriQ(error_rate='shrunk') (the "
            "default) or MetriQ(smoothing=1) keeps such classes."
        )

    def _checked_validation(self, context):
        validation = self.validation
        if not isinstance(validation, tuple):
            return validation
        expected = 2 if context.groups is None else 3
        if len(validation) != expected:
            raise ValueError(
                "MetriQ validation must be a hold-out fraction, a number of folds, a CV "
                "splitter or " + ("a pair (X_val, y_val)" if expected == 2 else
                                  "a triple (X_val, y_val, groups_val) when the pruner is "
                                  "given groups")
                + f"; got a {len(validation)}-tuple."
            )
        X_val, y_val = validation[:2]
        if not hasattr(X_val, "__getitem__") or not hasattr(X_val, "__len__"):
            raise ValueError("MetriQ validation=(X_val, y_val) needs an array-like X_val.")
        if not isinstance(X_val, torch.utils.data.Dataset):
            X_val = check_array(X_val, accept_sparse=["csr", "csc"], allow_nd=True,
                                dtype="numeric", input_name="X_val")
        y_val = column_or_1d(np.asarray(y_val), warn=True)
        if expected == 2:
            return X_val, y_val
        return X_val, y_val, column_or_1d(np.asarray(validation[2]), warn=True)

    def _measure(self, estimator, validation, context):
        """Validation recall of every class, averaged over runs, and validation counts."""
        labels = context.group_labels
        splits = list(_splits(validation, context))
        recalls, n_validation = [], None
        with progress(self.n_runs * len(splits), "MetriQ query runs", context.verbose) as bar:
            for run_seed in run_seeds(context.seed, self.n_runs):
                recall, n_validation = self._measure_run(estimator, splits, labels, context,
                                                         run_seed, bar)
                recalls.append(recall)
        return {"recall": np.mean(recalls, axis=0), "n_validation": n_validation}

    def _measure_run(self, estimator, splits, labels, context, run_seed, bar):
        """Recall of every group over the validation sets of one run, and their sizes."""
        correct = np.zeros(labels.shape[0])
        counts = np.zeros(labels.shape[0])
        for train, X_val, y_val, groups_val in splits:
            X_train = context.X if train is None else take_rows(context.X, train)
            y_train = context.y if train is None else context.y[train]
            hits = self._correct(estimator, X_train, y_train, X_val, y_val, run_seed)
            # Validation rows count for their group; one of a group absent
            # from the pruned data counts for none.
            group = np.searchsorted(labels, groups_val)
            known = (group < labels.shape[0]) & (labels[np.minimum(group, labels.size - 1)]
                                                 == groups_val)
            correct += np.bincount(group[known], weights=hits[known],
                                   minlength=labels.shape[0])
            counts += np.bincount(group[known], minlength=labels.shape[0])
            bar.update()
        recall = np.divide(correct, counts, out=np.zeros_like(correct), where=counts > 0)
        return recall, counts

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
    """``(train_rows or None, X_val, y_val, groups_val)`` for every training needed."""
    X, y = context.X, context.y
    groups = y if context.groups is None else context.groups
    if isinstance(validation, tuple):
        yield None, validation[0], validation[1], validation[-1]
        return
    # Stratified by group, so that every group has validation samples (the
    # groups are the classes unless the pruner was given groups).
    n_groups = np.unique(groups).shape[0]
    kind = "classes" if context.groups is None else "groups"
    if isinstance(validation, numbers.Real) and not isinstance(validation, numbers.Integral):
        n_held_out = max(int(np.ceil(validation * len(y))), n_groups)
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_held_out,
                                          random_state=context.seed)
        try:
            train, test = next(splitter.split(np.zeros(len(y)), groups))
        except ValueError as exc:
            raise ValueError(
                f"MetriQ(validation={validation}) cannot hold out a stratified validation "
                f"set from {len(y)} samples of {n_groups} {kind} ({exc}). Use a larger "
                "fraction, an int number of folds, or an explicit (X_val, y_val)."
            ) from None
        yield train, take_rows(X, test), y[test], groups[test]
        return
    if isinstance(validation, numbers.Integral):
        folds = check_cv(validation, groups, classifier=True).split(np.zeros(len(y)), groups)
    else:
        folds = check_cv(validation, y, classifier=True).split(
            np.zeros(len(y)), y, context.groups)
    for train, test in folds:
        yield train, take_rows(X, test), y[test], groups[test]


def error_weights(recall, n_validation, error_rate="shrunk", smoothing=0.0):
    """Density weights from validation recalls: shrunk or observed error rates.

    Parameters
    ----------
    recall : ndarray of shape (n_groups,)
    n_validation : ndarray of shape (n_groups,)
        Validation samples behind each recall.
    error_rate : {"shrunk", "observed"}, default="shrunk"
        Empirical-Bayes posterior means, or the observed rates (see
        :class:`MetriQ`).
    smoothing : float, default=0.0
        Pseudo-count added to errors and to correct predictions.

    Returns
    -------
    weights : ndarray of shape (n_groups,)

    Examples
    --------
    Errors 0, 1 and 2 among 13 validation samples each are consistent with
    one error rate: the shrunk weights are equal, the observed ones are
    not.

    >>> import numpy as np
    >>> from skprune.quotas import error_weights
    >>> recall, n = 1 - np.array([0, 1, 2]) / 13, np.array([13, 13, 13])
    >>> error_weights(recall, n, "observed").round(3)
    array([0.   , 0.077, 0.154])
    >>> error_weights(recall, n).round(3)
    array([0.077, 0.077, 0.077])

    Errors 0, 25 and 150 among 500 are not: shrinkage hardly moves them.

    >>> error_weights(1 - np.array([0, 25, 150]) / 500, np.array([500] * 3)).round(3)
    array([0.001, 0.051, 0.298])
    """
    recall = np.asarray(recall, dtype=float)
    errors, trials = _smoothed_counts(recall, n_validation, smoothing)
    seen = trials > 0
    if error_rate == "observed":
        return np.divide(errors, trials, out=1.0 - recall, where=seen)
    pooled = errors[seen].sum() / trials[seen].sum() if seen.any() else 0.0
    if pooled <= 0.0 or pooled >= 1.0:
        return _common_weights(errors, trials)
    rates = errors[seen] / trials[seen]
    share = trials[seen] / trials[seen].sum()
    spread = np.sum(share * (rates - pooled) ** 2)
    # What the spread would be if every class had the pooled rate.
    noise = pooled * (1.0 - pooled) * np.count_nonzero(seen) / trials[seen].sum()
    excess = spread - noise
    if excess <= 0.0:
        return _common_weights(errors, trials)
    strength = max(pooled * (1.0 - pooled) / excess - 1.0, 0.0)
    return (errors + strength * pooled) / (trials + strength)


def _smoothed_counts(recall, n_validation, smoothing):
    """Errors and trials of every group, each with the pseudo-counts added."""
    n_validation = np.asarray(n_validation, dtype=float)
    errors = n_validation * (1.0 - np.asarray(recall, dtype=float)) + smoothing
    return errors, n_validation + 2.0 * smoothing


def _common_weights(errors, trials):
    """One weight for every group: the pooled error rate, or 1 where it is 0 or 1."""
    seen = trials > 0
    pooled = errors[seen].sum() / trials[seen].sum() if seen.any() else 0.0
    return np.full(errors.shape, pooled if 0.0 < pooled < 1.0 else 1.0)


def equal_rates_pvalue(recall, n_validation, smoothing=0.0, seed=0, n_draws=10_000):
    """p-value of the hypothesis that every class has the same error rate.

    The statistic is the spread of the observed error rates around the
    pooled one, weighted by validation samples (the quantity whose excess
    over binomial noise sets :func:`error_weights`' shrinkage). Its null
    distribution is simulated exactly: every class's errors drawn from a
    binomial with the pooled rate. Valid with a handful of errors, where a
    chi-squared approximation is not.

    Parameters
    ----------
    recall : ndarray of shape (n_groups,)
    n_validation : ndarray of shape (n_groups,)
        Validation samples behind each recall.
    smoothing : float, default=0.0
        Pseudo-count added to errors and to correct predictions.
    seed : int, default=0
        Seed of the simulation; the same inputs and seed give the same value.
    n_draws : int, default=10000
        Simulated validation sets (standard error of the p-value at most
        0.005).

    Returns
    -------
    pvalue : float
        1.0 where the rates cannot differ (fewer than two classes, no error
        or no correct prediction at all).

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.quotas import equal_rates_pvalue
    >>> n = np.array([13, 13, 13])
    >>> bool(equal_rates_pvalue(1 - np.array([0, 1, 2]) / n, n) > 0.05)
    True
    >>> n = np.array([500, 500, 500])
    >>> bool(equal_rates_pvalue(1 - np.array([0, 25, 150]) / n, n) < 0.001)
    True
    """
    n_validation = np.asarray(n_validation, dtype=float)
    seen = n_validation > 0
    n_validation = n_validation[seen]
    errors = n_validation * (1.0 - np.asarray(recall, dtype=float)[seen])
    trials = n_validation + 2.0 * smoothing
    pooled = errors.sum() / n_validation.sum() if errors.size else 0.0
    if errors.size < 2 or pooled <= 0.0 or pooled >= 1.0:
        return 1.0

    def spread(errors):
        # Around each set's own pooled rate, as for the observed set.
        smoothed = errors + smoothing
        pooled = smoothed.sum(axis=-1, keepdims=True) / trials.sum()
        return np.sum(trials * (smoothed / trials - pooled) ** 2, axis=-1)

    # Averaged recalls (several runs) give fractional errors; the simulation
    # draws whole ones from the rounded validation sizes.
    simulated = np.random.RandomState(seed).binomial(
        np.rint(n_validation).astype(int), pooled, size=(n_draws, errors.size)
    ).astype(float)
    observed = spread(errors)
    # A tolerance, so that the observed set counts among its equals.
    return float(np.mean(spread(simulated) >= observed * (1 - 1e-9)))


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
