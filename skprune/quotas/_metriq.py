"""MetriQ: quotas from validation error rates."""

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, column_or_1d

from .._progress import progress
from .._query_training import (
    EpochPredictions,
    is_skorch_classifier,
    predict_classes,
    train_query_net,
)
from .._runs import SharedValidation
from ..cache import UncacheableError, cached_result, fingerprint
from ..utils._random_state import run_seeds, seeded
from ..utils._torch_data import take_rows
from ._base import BaseQuota
from ._error_rates import (
    ErrorEvidence,
    common_weights,
    equal_rates_test,
    weights_from_evidence,
    with_floor,
)
from ._validation import (
    ValidationPredictions,
    _check_recall,
    _random_splitter,
    _splits,
    evidence_schema,
    group_positions,
    validation_evidence,
)


class MetriQ(BaseQuota):
    """Metric-based quotas: keep more of the classes a model gets wrong.

    A clone of ``estimator`` is trained on the data given to the pruner, and
    its recall ``r_k`` on data it did not train on is measured for every
    class. Class ``k`` then gets a density weight that grows with its error
    rate: target class densities are proportional to the weights, classes
    whose density would exceed 1 are kept whole and their excess is
    redistributed (see :func:`~skprune.quotas.allocate_class_counts`).

    The paper's weight is the measured error rate ``1 - r_k``, read from a
    model trained on all the data and applied at the target density, where
    a class that is easy with all its rows is no longer easy with a few of
    them: a class with no validation error keeps a single sample and
    becomes the new worst class. skprune's default, chosen on the quota
    suite (``python -m benchmarks.quota_suite``; its table is in the user
    guide), differs from the paper in three ways, each one switch away:

    - ``floor=0.5``: half of the kept budget is spread as proportional
      quotas, the other half by error rates, so that no class keeps less
      than half the overall density.
    - ``error_rate="shrunk"``: each class's rate is an empirical-Bayes
      estimate pulled towards the pooled rate by as much as the spread
      between classes fails to exceed their noise.
    - ``significance=0.05``: when a test of one common error rate does not
      reject, validation cannot tell the classes apart, and every class
      keeps the same fraction.

    ``MetriQ(error_rate="observed", floor=0)`` is the paper's rule.

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

    validation : float, int, cross-validation generator, tuple or \
            ValidationPredictions, default=0.1
        Where recall is measured:

        - float in (0, 1): a stratified hold-out of that fraction of the data
          given to ``fit_resample``; the model trains on the rest. Held-out
          rows stay eligible for keeping.
        - int or CV splitter: out-of-fold predictions over the whole data,
          one training per fold.
        - ``(X_val, y_val)``: the model trains on all the data given to
          ``fit_resample`` and is evaluated on this set (the paper uses half
          of the test set). With ``groups``, ``(X_val, y_val, groups_val)``.
        - :class:`~skprune.quotas.ValidationPredictions`: predictions of a
          model you trained yourself; nothing is trained (see
          :meth:`from_predictions`).

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
        The error rate of class ``k``, from its ``e_k`` errors among ``n_k``
        validation samples (with several runs, a sample counts the fraction
        of the runs that erred on it):

        - ``"shrunk"``: the posterior mean ``(e_k + s p) / (n_k + s)`` of a
          random-effects model whose prior mean ``p`` is the pooled error
          rate and whose strength ``s = sigma2 / tau2`` comes from an
          unbiased estimate ``tau2`` of the variance of the classes' true
          rates and ``sigma2``, the variance of a sample's error within a
          class (:func:`~skprune.quotas.error_rate_spread`). No excess
          spread (``tau2 <= 0``), or a test that does not reject (see
          ``significance``), gives every class ``p``; a large spread gives
          ``s`` near 0 and the observed rates. A class without validation
          samples gets ``p``.
        - ``"observed"``: ``e_k / n_k``, the paper's ``1 - r_k``.

    significance : float in (0, 1) or None, default=0.05
        With ``error_rate="shrunk"``, MetriQ first tests whether the class
        error rates differ beyond their noise (a Monte Carlo test of one
        common error rate conditional on the validation table's margins,
        :func:`~skprune.quotas.equal_rates_pvalue`). When
        the test's p-value is ``significance`` or more, validation cannot
        tell the classes apart, and every class gets the same weight (the
        shrinkage with no spread between classes): MetriQ keeps the same
        fraction of every class, as ``quota="proportional"`` does. ``None``
        skips the test, and shrinks by the estimated spread however small.
        Not used with ``error_rate="observed"``.

    smoothing : float >= 0, default=0.0
        Pseudo-count ``a`` added to both the errors and the correct
        predictions of every class before the weights are computed:
        ``(e_k + a) / (n_k + 2a)`` with ``error_rate="observed"`` (``a = 1``
        is Laplace's rule). ``error_rate="observed", smoothing=0`` is the
        paper's exact ``1 - r_k``, under which a class with perfect
        validation recall keeps a single sample until every other class is
        kept whole.

    floor : float in [0, 1], default=0.5
        Share of the kept budget spread as proportional quotas; the rest
        follows the error rates. Class ``k``'s density weight is ``floor *
        q + (1 - floor) * rate_k``, with ``q`` the mean rate over the rows
        being pruned, so that every class keeps at least ``floor`` times the
        overall density. ``0`` is the paper's (weights are the rates), ``1``
        is ``quota="proportional"``. 0.5 is the default because it was the
        dependable one on the quota suite (see the user guide's MetriQ
        page): 0 starves classes that are easy with all their rows, 0.75
        gives too little to the hard ones.

    share_networks : bool, default=True
        Read recall from the pruner's own query networks when they are what
        MetriQ would train: with an explicit ``validation=(X_val, y_val)``
        and MetriQ's estimator the pruner's (``estimator=None``, or the very
        same object), every query network the strategy trains on all the
        rows also predicts the validation set (after each epoch with
        ``epoch="best"``, once after training with ``epoch="last"``), and
        MetriQ reads its recalls there (at the ``epoch`` asked, averaged over the
        strategy's runs: its ``n_runs``, not MetriQ's) as the DRoP authors
        do. One training, not two. With EL2N and GraNd those are their
        early-training networks. Not possible with a hold-out or folds (the
        strategy must score every row, held-out ones included), with
        ``RandomPruner`` (it trains nothing) or with another estimator;
        MetriQ then trains its own. ``False`` always trains its own.

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
    shared_networks_ : bool
        Whether the recalls were read from the pruner's own query networks
        (``share_networks``).
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
            ValidationPredictions,
        ],
        "n_runs": [Interval(numbers.Integral, 1, None, closed="left")],
        "epoch": [StrOptions({"last", "best"})],
        "error_rate": [StrOptions({"shrunk", "observed"})],
        "significance": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "smoothing": [Interval(numbers.Real, 0, None, closed="left")],
        "floor": [Interval(numbers.Real, 0, 1, closed="both")],
        "share_networks": ["boolean"],
    }

    def __init__(self, estimator=None, validation=0.1, *, n_runs=1, epoch="last",
                 error_rate="shrunk", significance=0.05, smoothing=0.0, floor=0.5,
                 share_networks=True):
        self.estimator = estimator
        self.validation = validation
        self.n_runs = n_runs
        self.epoch = epoch
        self.error_rate = error_rate
        self.significance = significance
        self.smoothing = smoothing
        self.floor = floor
        self.share_networks = share_networks

    @classmethod
    def from_predictions(cls, y_true, y_pred, *, groups=None, **params):
        """MetriQ from validation predictions of a model you trained yourself.

        For your own training loop: train on the data you will prune,
        predict a validation set, and give both here; no estimator is
        trained. The weights follow from the same statistics as MetriQ's own
        trainings (``error_rate``, ``significance``, ``smoothing``).

        Parameters
        ----------
        y_true : array-like of shape (n_val,)
            True labels of the validation rows.
        y_pred : array-like of shape (n_val,) or (n_runs, n_val)
            Predicted labels, one row per independent training.
        groups : array-like of shape (n_val,), default=None
            Group of every validation row, when the pruner is given groups.
        **params
            Further MetriQ parameters (``error_rate``, ``significance``,
            ``smoothing``).

        Returns
        -------
        MetriQ
            With ``validation=ValidationPredictions(y_true, y_pred, groups)``.

        Examples
        --------
        >>> import numpy as np
        >>> from skprune import MetriQ, ScorePruner
        >>> y = np.repeat([0, 1, 2], 100)
        >>> y_val = np.repeat([0, 1, 2], 200)
        >>> y_pred = y_val.copy()
        >>> y_pred[400:500] = 0  # class 2 is half wrong
        >>> pruner = ScorePruner(np.arange(300.0), density=0.3,
        ...                      quota=MetriQ.from_predictions(y_val, y_pred)).fit(None, y)
        >>> pruner.class_counts_[2] > pruner.class_counts_[0]
        True
        """
        return cls(validation=ValidationPredictions(y_true, y_pred, groups), **params)

    def _weights(self, context):
        return self._weights_from_evidence(self._validation_evidence(context), context)

    def _query_validation(self, context, pruner):
        # The pruner's query networks are clones of this estimator trained on
        # all the rows being pruned: exactly what MetriQ would train, when it
        # measures on a set of its own rather than on held-out rows.
        self._validate_params()
        if not (self.share_networks and isinstance(self.validation, tuple)
                and context.X is not None):
            return None
        estimator = self.estimator if self.estimator is not None else context.estimator
        if estimator is None or estimator is not pruner.estimator or not is_skorch_classifier(
                estimator):
            return None
        X_val, y_val = self._checked_validation(context)[:2]
        classes = np.unique(context.y)
        position, seen = _positions(classes, y_val)
        try:
            key = fingerprint(X_val) if context.data_key is not None else None
        except UncacheableError:
            key = None
        # A recall read after the last epoch needs one prediction pass per
        # network, not one per epoch.
        return SharedValidation(X_val, np.where(seen, position, -1), key,
                                every_epoch=self.epoch == "best")

    def _shared_evidence(self, context):
        """Evidence from the pruner's own query networks' validation predictions."""
        X_val, y_val, *groups = self._checked_validation(context)
        groups_val = groups[0] if groups else y_val
        classes = np.unique(context.y)
        position, seen = _positions(classes, y_val)
        target = np.where(seen, position, -1)
        hits = np.stack([run[self.epoch] == target for run in context.query_predictions])
        row_group, known = group_positions(groups_val, context.group_labels)
        return validation_evidence(hits[:, known], row_group[known],
                                   context.group_labels.shape[0])

    def _validation_evidence(self, context):
        """Validation recall, rows and error levels of every group (see
        :func:`~skprune.quotas._validation.validation_evidence`)."""
        self.shared_networks_ = context.query_predictions is not None
        if self.shared_networks_:
            return self._shared_evidence(context)
        if isinstance(self.validation, ValidationPredictions):
            if context.groups is not None and self.validation.groups is None:
                raise ValueError(
                    f"{context.owner} was given groups, so MetriQ measures group accuracy: "
                    "pass the validation rows' groups too, "
                    "MetriQ.from_predictions(y_true, y_pred, groups=groups_val)."
                )
            if self.n_runs != 1 or self.epoch != "last":
                raise ValueError(
                    "MetriQ's n_runs and epoch choose its own trainings; with given "
                    "predictions, pass one row of y_pred per run, each from the epoch you "
                    "want, and leave n_runs=1 and epoch='last'."
                )
            return self.validation.evidence(context.group_labels)
        if context.X is None:
            raise ValueError(
                f"MetriQ trains a model on the data being pruned, but {context.owner} was "
                "given X=None. Pass the data, or the validation predictions of a model you "
                "trained: quota=MetriQ.from_predictions(y_val, y_pred)."
            )
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
            schema=evidence_schema(context.group_labels.shape[0], self.n_runs),
            check=lambda result: _check_recall(result, context.group_labels.shape[0]),
            what="MetriQ recalls",
        )
        return result

    def _weights_from_evidence(self, result, context):
        recall, n_validation = result["recall"], result["n_validation"]
        evidence = ErrorEvidence(np.arange(result["error_counts"].shape[1])
                                 / (result["error_counts"].shape[1] - 1),
                                 result["error_counts"], float(self.smoothing))
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
        self.group_recall_ = dict(zip(labels.tolist(), recall.tolist(), strict=True))
        if context.groups is None:
            self.class_recall_ = self.group_recall_
        self.n_validation_ = dict(zip(labels.tolist(), n_validation.astype(int).tolist(),
                                      strict=True))
        self.equal_rates_pvalue_ = None
        if self.error_rate == "shrunk" and self.significance is not None:
            self.equal_rates_pvalue_ = equal_rates_test(evidence, context.seed)
            if self.equal_rates_pvalue_ >= self.significance:
                # No evidence of any difference: the shrinkage with no spread.
                return common_weights(evidence)
        return with_floor(weights_from_evidence(evidence, self.error_rate),
                          context.group_sizes, self.floor)

    def _starvation_hint(self):
        # Advice that changes something: never the setting already in use.
        advice = []
        if self.floor < 0.5:
            advice.append(f"MetriQ(floor={max(0.5, self.floor + 0.25):g}) keeps every class at "
                          "that fraction of the overall density or more")
        if self.error_rate == "observed":
            advice.append("MetriQ(error_rate='shrunk') pulls rates measured on few samples "
                          "towards the pooled one")
        advice.append("a larger validation set measures small error rates better")
        return (" MetriQ's weights follow validation error rates, and a class with "
                "(near-)perfect recall gets little: " + "; ".join(advice) + ".")

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
        """Validation evidence of every group over ``n_runs`` trainings (per split)."""
        labels = context.group_labels
        splits = list(_splits(validation, context))
        hits, positions = [], None
        with progress(self.n_runs * len(splits), "MetriQ query runs", context.verbose) as bar:
            for run_seed in run_seeds(context.seed, self.n_runs):
                run_hits, positions = self._measure_run(estimator, splits, labels, context,
                                                        run_seed, bar)
                hits.append(run_hits)
        return validation_evidence(np.stack(hits), positions, labels.shape[0])

    def _measure_run(self, estimator, splits, labels, context, run_seed, bar):
        """Hits of one run on every validation row of every split, and the rows' groups."""
        hits, positions = [], []
        for train, X_val, y_val, groups_val in splits:
            X_train = context.X if train is None else take_rows(context.X, train)
            y_train = context.y if train is None else context.y[train]
            split_hits = self._correct(estimator, X_train, y_train, X_val, y_val, run_seed)
            position, known = group_positions(groups_val, labels)
            hits.append(np.asarray(split_hits, dtype=bool)[known])
            positions.append(position[known])
            bar.update()
        return np.concatenate(hits), np.concatenate(positions)

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
        position, seen = _positions(np.unique(y_train), y_val)
        target = np.where(seen, position, -1)
        if self.epoch == "best":
            recorder = EpochPredictions(X_val)
            train_query_net(estimator, X_train, y_train, seed, owner="MetriQ",
                            callbacks=[("skprune_validation", recorder)])
            hits = recorder.predictions_ == target
            # The epoch with the best overall accuracy; the earliest of equals.
            return hits[int(np.argmax(hits.sum(axis=1)))]
        net, _ = train_query_net(estimator, X_train, y_train, seed, owner="MetriQ")
        return predict_classes(net, X_val) == target


def _positions(classes, labels):
    """Position of every label among the sorted ``classes``, and which labels are there."""
    position = np.searchsorted(classes, labels)
    seen = (position < classes.size) & (classes[np.minimum(position, classes.size - 1)] == labels)
    return np.minimum(position, classes.size - 1), seen
