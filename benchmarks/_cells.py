"""One benchmark cell: build a protocol's pipeline, fit it, evaluate it.

These functions run in worker processes (loky or dask), so they take plain
data (a settings dict, a cell, a cache path), not data sets or estimators.
"""

import inspect
import math
import random
import time
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import clone, is_classifier
from skorch import NeuralNet

from skprune import MetriQ, class_recall_report, group_recall_report, make_pipeline
from skprune.exceptions import StarvedGroupWarning
from skprune.models import MODELS, StepDecay, make_net

from ._config import BenchmarkConfig, Cell, InvalidConfigError, corrected_epochs
from ._data import load_benchmark_data, split_test_set
from ._registry import (
    FULL_GROUP_BALANCED,
    METRIQ_RULES,
    NO_STRATEGY,
    PROTOCOLS,
    REFERENCES,
    RegistryError,
    import_object,
    strategy,
)

#: Random+MetriQ's query model under the DRoP protocol. The authors' config.py
#: sets the query schedule (epochs_query, lr_drops_query, num_inits) only for
#: the EL2N, GradientBased, DynamicUncertainty, Forgetting and CoreSet scorers;
#: with the Random scorer main.py's argparse defaults apply: --epochs_query 16,
#: --lr_drops_query 50 100 (never reached in 16 epochs: a constant learning
#: rate) and --num_inits 1, with the model's own learning rate, weight decay
#: and batch size and no augmentation (--aug_query off).
DROP_RANDOM_QUERY_EPOCHS = 16
DROP_RANDOM_QUERY_LR_DROPS = (50, 100)
DROP_RANDOM_QUERY_RUNS = 1


def make_base_net(config, data):
    """The network of the benchmark, untrained, with the recipe's epochs.

    Pruners and MetriQ train their query networks from this one; a cell's
    final network is a clone with the epoch correction applied.

    Raises
    ------
    InvalidConfigError
        For a ``module:function`` model that does not return a skorch
        classifier, or parameters it does not take.
    """
    n_classes, input_shape = len(data.classes), tuple(data.X_train.shape[1:])
    if config.model in MODELS:
        try:
            net = make_net(config.model, n_classes, config.recipe, input_shape=input_shape,
                           **config.net_params)
        except ValueError as exc:  # a model that cannot take this data's shape
            raise InvalidConfigError(f"--model {config.model}: {exc}") from None
        return _with_rounding(net, config)
    try:
        make = import_object(config.model, "--model")
    except RegistryError as exc:
        raise InvalidConfigError(str(exc)) from None
    try:
        net = make(n_classes=n_classes, input_shape=input_shape)
    except TypeError as exc:
        raise InvalidConfigError(
            f"--model {config.model} must be callable as function(n_classes=..., "
            f"input_shape=...) and return a skorch classifier ({exc})."
        ) from None
    if not (isinstance(net, NeuralNet) and is_classifier(net)):
        raise InvalidConfigError(
            f"--model {config.model} must return a skorch classifier (for example "
            f"skorch.NeuralNetClassifier(...)); got {type(net).__name__}."
        )
    try:
        net.set_params(**config.net_params)
    except ValueError as exc:
        raise InvalidConfigError(f"--model {config.model}: {exc}") from None
    return _with_rounding(net, config)


def _with_rounding(net, config):
    """``net`` with its learning-rate drops made whole as the run's epochs are.

    The DRoP authors' ``epochs_correction`` truncates the drops of every
    network it trains (``int(drop * epochs / E)``), as it truncates the
    epochs; ``epochs_rounding="floor"`` does both.
    """
    if config.epochs_rounding == "floor":
        net.set_params(**{f"callbacks__{name}__rounding": "floor"
                          for name in step_decay_names(net)})
    return net


def step_decay_names(net):
    """Names of the :class:`~skprune.models.StepDecay` callbacks in effect on ``net``.

    A callback replaced or removed by ``set_params(callbacks__NAME=...)``
    counts as what replaced it.
    """
    params = net.get_params(deep=False)
    names = []
    for item in net.callbacks or []:
        if isinstance(item, tuple):
            name, callback = item
            if isinstance(params.get(f"callbacks__{name}", callback), StepDecay):
                names.append(name)
    return names


class PrunerFactory:
    """The pruners of one run's protocols, set up for its query protocol.

    ``query_protocol="skprune"``: every pruner and MetriQ use the
    benchmark's network as it is, with skprune's defaults.
    ``query_protocol="drop"``: the DRoP authors' configuration (their
    ``config.py`` and ``main.py``; the user guide's "Fidelity to DRoP" lists
    every item with its source):

    - query networks train without augmentation (``--aug_query`` off);
    - EL2N and GraNd (``query="short"`` in the registry) train
      ``int(0.1 * E)`` epochs with the learning-rate drops scaled to that
      run, 5 initializations; the others the full schedule, 1
      initialization;
    - every strategy gets its registry entry's ``drop_params``: Forgetting
      scores never-learned samples 0, Dynamic Uncertainty averages windows
      of ``J - 1 = 9`` epochs that end before the final epoch;
    - MetriQ reads recall at the query epoch with the best validation
      accuracy, averaged over the query initializations of the strategy it
      serves, with the paper's ``1 - r_k``; Random+MetriQ's query model is
      the one ``main.py``'s defaults give the Random scorer: 16 epochs at a
      constant learning rate, 1 initialization.

    Parameters
    ----------
    config : BenchmarkConfig
    net : skorch.NeuralNetClassifier
        The benchmark's network (:func:`make_base_net`).
    validation : tuple
        ``(X_val, y_val)`` on which MetriQ measures class recall, or
        ``(X_val, y_val, groups_val)`` for data with groups.
    """

    def __init__(self, config, net, validation):
        self.config = config
        self.net = net
        self.validation = validation

    def random(self, **params):
        """A ``RandomPruner``; with a quota, it gets the network for MetriQ."""
        from skprune import RandomPruner

        if params.get("quota") is not None:
            params.setdefault("estimator", self.net)
        return RandomPruner(**params)

    def strategy(self, name, **params):
        """The pruner of strategy ``name``, with the run's selection and parameters."""
        entry = strategy(name)
        own = dict(self.config.strategy_params.get(name, {}))
        net = self.net
        pruner_class = entry.pruner_class()
        accepted = inspect.signature(pruner_class).parameters
        if self.config.query_protocol == "drop":
            net = self.query_net(entry.query)
            if entry.query == "short":
                own.setdefault("epochs", net.max_epochs)
            if "n_runs" in accepted:
                own.setdefault("n_runs", entry.query_runs)
            for param, value in entry.drop_params.items():
                own.setdefault(param, value)
        own.setdefault("selection", self.config.selection)
        unknown = sorted(set(own) - set(accepted))
        if unknown:
            raise ValueError(
                f"{pruner_class.__name__} has no parameter {', '.join(unknown)} "
                f"(--strategy-params {name}:...); it takes {', '.join(accepted)}."
            )
        return pruner_class(net, **{**own, **params})

    def metriq(self, name, groups=False, rule=None):
        """The MetriQ quota of strategy ``name`` (``"-"``: of Random+MetriQ).

        With ``groups=True`` it measures group accuracy, for a pruner fitted
        with the data's groups. ``rule`` names one of
        :data:`benchmarks._registry.METRIQ_RULES`, whose parameters replace
        MetriQ's weighting (never its measurement, so that every rule reads
        the same cached recalls).
        """
        validation = self.validation if groups else self.validation[:2]
        weighting = {} if rule is None else METRIQ_RULES[rule]
        # A strategy's MetriQ reads recall from the strategy's own query
        # networks (its estimator: None), as the DRoP authors do.
        shared = self.shares_networks(name)
        if self.config.query_protocol != "drop":
            return MetriQ(None if shared else self.net, validation=validation, **weighting)
        query, n_runs = self.metriq_source(name)
        params = {"error_rate": "observed", "floor": 0.0, **weighting}
        if shared:
            return MetriQ(validation=validation, epoch="best", **params)
        return MetriQ(self.query_net(query), validation=validation, n_runs=n_runs,
                      epoch="best", **params)

    def shares_networks(self, name):
        """Whether strategy ``name``'s MetriQ reads recall from its own query networks."""
        return name != NO_STRATEGY and strategy(name).query != "none"

    def records_validation(self, name):
        """Whether strategy ``name``'s query runs also predict MetriQ's validation set.

        They do when the run has a Strategy+MetriQ protocol for it: its scores
        and validation predictions are then computed and cached together,
        and its Strategy cells read the same scores.
        """
        return self.shares_networks(name) and any(
            PROTOCOLS[protocol].uses_strategy and PROTOCOLS[protocol].uses_metriq
            for protocol in self.config.protocols if protocol in PROTOCOLS)

    def metriq_source(self, name):
        """What MetriQ's recalls depend on besides the seed; equal ones are shared."""
        if self.config.query_protocol != "drop":
            return ("base", 1)
        if name == NO_STRATEGY:
            return ("random", DROP_RANDOM_QUERY_RUNS)
        entry = strategy(name)
        if entry.query == "none":
            return ("random", DROP_RANDOM_QUERY_RUNS)
        n_runs = self.config.strategy_params.get(name, {}).get("n_runs", entry.query_runs)
        return (entry.query, n_runs)

    def query_net(self, kind):
        """The benchmark's network as a query network of the DRoP protocol.

        Parameters
        ----------
        kind : {"short", "full", "random"}
            ``"short"``: ``int(0.1 * E)`` epochs (at least one) with the
            drops at the same fractions; ``"full"``: the whole schedule;
            ``"random"``: Random+MetriQ's model, 16 epochs without
            learning-rate drops (DRoP's default drops, at epochs 50 and 100,
            come after its last epoch).
        """
        net = clone(self.net)
        if "augment" in net.get_params(deep=False):
            net.set_params(augment=None)
        if kind == "short":
            net.set_params(max_epochs=max(1, math.floor(0.1 * self.net.max_epochs)))
        elif kind == "random":
            net.set_params(max_epochs=DROP_RANDOM_QUERY_EPOCHS)
            if min(DROP_RANDOM_QUERY_LR_DROPS) >= DROP_RANDOM_QUERY_EPOCHS:
                net.set_params(**{f"callbacks__{name}__fractions": ()
                                  for name in step_decay_names(net)})
        return net

    def pruner(self, protocol, strategy_name, *, density, seed, memory):
        """The pruner of a protocol (the user guide's Protocols page), or ``None`` for a
        reference.

        Every pruner gets the integer ``seed`` and the shared ``memory``:
        scores and MetriQ recalls then depend on neither the density nor the
        protocol, so they are computed once per (strategy, seed) and read
        from the cache by every other cell.
        """
        if protocol in REFERENCES:
            return None
        entry = PROTOCOLS[protocol]
        if entry.uses_strategy and strategy_name == NO_STRATEGY:
            raise ValueError(f"Protocol {protocol!r} needs a strategy.")
        return entry.build(self, strategy_name, density=density, random_state=seed,
                           memory=memory)


def shared_computations(factory, cell):
    """The cached results a cell reads, each named by the fit that computes it.

    A strategy's scores are computed by its ``Strategy`` pruner, or, when
    the run has Strategy+MetriQ cells, by its ``Strategy+MetriQ`` pruner,
    which also caches its query networks' validation predictions for
    MetriQ (``"scores+validation"``). Random+MetriQ's recalls are computed by
    a ``RandomPruner`` with that MetriQ (random scores cost nothing).

    Returns
    -------
    list of (kind, strategy, seed)
        ``kind`` is ``"scores"``, ``"scores+validation"``, ``"metriq"`` or
        ``"group-metriq"``; for MetriQ, ``strategy`` is the first of the
        strategies that share its recalls.
    """
    if cell.protocol in REFERENCES:
        return []
    protocol = PROTOCOLS[cell.protocol]
    computations = []
    if protocol.uses_strategy:
        kind = "scores+validation" if factory.records_validation(cell.strategy) else "scores"
        computations.append((kind, cell.strategy, cell.seed))
        if protocol.uses_metriq and factory.shares_networks(cell.strategy):
            return computations
    if protocol.uses_metriq:
        source = factory.metriq_source(cell.strategy)
        sharing = [NO_STRATEGY, *factory.config.strategies]
        first = next(name for name in sharing if factory.metriq_source(name) == source)
        kind = "group-metriq" if protocol.uses_groups else "metriq"
        computations.append((kind, first, cell.seed))
    return computations


def warm_cache(settings, kind, strategy_name, seed, cache_dir, torch_threads=None):
    """Compute the scores or MetriQ recalls that a group of cells shares.

    Fits one pruner that computes them (keeping everything), which fills the
    disk cache; the cells that follow read from it. Used when no pending
    cell needs only this computation (see :func:`benchmarks._stages.stages`).

    Parameters
    ----------
    settings : dict
        :meth:`BenchmarkConfig.to_dict` of the run.
    kind : {"scores", "scores+validation", "metriq", "group-metriq"}
    strategy_name : str
    seed : int
    cache_dir : str
    torch_threads : int or None
        Threads torch may use in this worker; ``None`` leaves it unchanged.
    """
    config, data, factory, _ = cell_inputs(settings, seed, torch_threads)
    groups = None
    if kind == "scores":
        pruner = factory.strategy(strategy_name, density=1.0, random_state=seed,
                                  memory=cache_dir)
    elif kind == "scores+validation":
        pruner = factory.strategy(strategy_name, quota=factory.metriq(strategy_name),
                                  density=1.0, random_state=seed, memory=cache_dir)
    else:
        groups = data.groups_train if kind == "group-metriq" else None
        pruner = factory.random(
            density=1.0, quota=factory.metriq(strategy_name, groups=groups is not None),
            random_state=seed, memory=cache_dir,
        )
    pruner.fit_resample(data.X_train, data.y_train, groups=groups)


def run_cell(settings, cell, cache_dir, fingerprint, torch_threads=None):
    """Fit one cell's pipeline on the training set and evaluate it.

    Parameters
    ----------
    settings : dict
        :meth:`BenchmarkConfig.to_dict` of the run.
    cell : Cell
    cache_dir : str
        The disk cache for scores and MetriQ recalls.
    fingerprint : str
        The run's settings fingerprint, stored in the row.
    torch_threads : int or None
        Threads torch may use in this worker; ``None`` leaves it unchanged.

    Returns
    -------
    row : dict
        Plain JSON data: the cell, its metrics, per-class recall and kept
        counts, and timings.
    """
    cell = Cell(*cell)
    config, data, factory, evaluation = cell_inputs(settings, cell.seed, torch_threads)
    final_net = final_network(factory, cell, data.get("groups_train"))
    epochs = final_net.max_epochs
    pruner = factory.pruner(cell.protocol, cell.strategy, density=cell.density,
                            seed=cell.seed, memory=cache_dir)
    model = final_net if pruner is None else make_pipeline(pruner, final_net)

    fit_params = {}
    if pruner is not None and PROTOCOLS[cell.protocol].uses_groups:
        fit_params[f"{model.steps[0][0]}__groups"] = data.groups_train

    start = time.perf_counter()
    # The final network's initialization and shuffling must not depend on
    # what ran before in this worker, or a resumed run would differ.
    uses_groups = pruner is not None and PROTOCOLS[cell.protocol].uses_groups
    with seeded(cell.seed), named_warnings(group_names(data) if uses_groups
                                           else class_names(data)):
        model.fit(data.X_train, data.y_train, **fit_params)
    fit_seconds = time.perf_counter() - start

    X_eval, y_eval, *groups_eval = evaluation
    y_pred = model.predict(X_eval)
    report = class_recall_report(y_eval, y_pred, labels=data.classes)
    names = class_names(data)
    if pruner is None:
        labels, kept = np.unique(data.y_train, return_counts=True)
        class_counts = dict(zip(labels.tolist(), kept.tolist(), strict=True))
    else:
        class_counts = pruner.class_counts_
    validation_recall = getattr(pruner, "class_recall_", None)
    row = {
        "protocol": cell.protocol,
        "strategy": cell.strategy,
        "method": method_label(cell.protocol, cell.strategy),
        "density": cell.density,
        "seed": cell.seed,
        "accuracy": report["accuracy"],
        "worst_class_recall": report["worst"],
        "recall_gap": report["gap"],
        "recall_std": report["std"],
        "mean_class_recall": report["mean"],
        "class_recall": {names[label]: recall for label, recall in report["class_recall"].items()},
        "class_counts": {names[label]: int(class_counts.get(label, 0))
                         for label in data.classes.tolist()},
        "validation_class_recall": (
            None if validation_recall is None
            else {names[label]: recall for label, recall in validation_recall.items()}
        ),
        "n_kept": int(sum(class_counts.values())),
        "n_train": int(len(data.y_train)),
        "n_eval": int(len(y_eval)),
        "n_classes": int(len(data.classes)),
        "epochs": int(epochs),
        "fit_seconds": round(fit_seconds, 3),
        "config": fingerprint,
    }
    if groups_eval:
        row.update(group_fields(data, y_eval, y_pred, groups_eval[0], pruner))
    return row


def final_network(factory, cell, groups=None):
    """The untrained network a cell fits on the rows its pruner keeps.

    The benchmark's network with the epoch correction of the cell's
    density (the recipe's learning-rate drops follow its ``max_epochs``).
    For ``Full, group-balanced`` it trains on every row, drawn with
    replacement with probability ``1 / N_g`` for a row of a group of
    ``N_g`` rows, ``n`` draws per epoch: every group is seen equally often
    (group-balanced sampling, the sampling form of Idrissi et al.'s RWG).

    Parameters
    ----------
    factory : PrunerFactory
    cell : Cell
    groups : ndarray of shape (n_train,) or None
        The training rows' groups, for ``Full, group-balanced``.

    Returns
    -------
    skorch.NeuralNetClassifier
    """
    config = factory.config
    base_epochs = factory.net.max_epochs
    epochs = (corrected_epochs(base_epochs, cell.density, config.epochs_rounding)
              if config.epochs_correction else base_epochs)
    net = clone(factory.net).set_params(max_epochs=epochs)
    if cell.protocol == FULL_GROUP_BALANCED:
        _, group_of, sizes = np.unique(groups, return_inverse=True, return_counts=True)
        # Drawn from torch's global generator, which run_cell seeds per cell.
        sampler = torch.utils.data.WeightedRandomSampler(
            torch.as_tensor(1.0 / sizes[group_of], dtype=torch.float64),
            num_samples=len(group_of), replacement=True)
        net.set_params(iterator_train__sampler=sampler, iterator_train__shuffle=False)
    return net


@contextmanager
def seeded(seed):
    """Context with torch's, numpy's and Python's global generators seeded, then restored.

    A cell's final network must not depend on what ran before it in its
    worker, or a resumed run would differ from an uninterrupted one.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def group_fields(data, y_true, y_pred, groups, pruner):
    """A row's group metrics: worst-group accuracy, gap, per-group accuracy and counts."""
    names = group_names(data)
    report = group_recall_report(y_true, y_pred, groups)
    if pruner is None:
        labels, kept = np.unique(data.groups_train, return_counts=True)
    else:
        kept_groups = data.groups_train[pruner.sample_indices_]
        labels = np.unique(data.groups_train)
        kept = np.array([np.count_nonzero(kept_groups == label) for label in labels])
    validation_recall = getattr(pruner, "group_recall_", None)
    return {
        "validation_group_recall": (
            None if validation_recall is None
            else {names[label]: value for label, value in validation_recall.items()}
        ),
        "worst_group_accuracy": report["worst"],
        "group_accuracy_gap": report["gap"],
        "mean_group_accuracy": report["mean"],
        "group_recall": {names[label]: value for label, value in report["group_recall"].items()},
        "group_counts": {names[label]: int(count)
                         for label, count in zip(labels.tolist(), kept, strict=True)},
    }


def group_names(data):
    """Group label -> name, from the data's ``group_names`` where it has them."""
    labels = np.unique(np.concatenate([data.groups_train, data.groups_test])).tolist()
    names = getattr(data, "group_names", None)
    if names is not None and len(names) == len(labels):
        return {label: str(name) for label, name in zip(labels, names, strict=True)}
    return {label: str(label) for label in labels}


def method_label(protocol, strategy_name):
    """How a protocol is named in tables and legends, e.g. ``"EL2N+MetriQ"``."""
    from ._registry import method_label as label

    return label(protocol, strategy_name)


def cell_inputs(settings, seed, torch_threads=None):
    """The config, data, pruner factory and evaluation half of one seed's cells."""
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    config = BenchmarkConfig(**settings)
    data = load_benchmark_data(config.dataset, config.data_root, config.n_train)
    groups = data.get("groups_test")
    validation_rows, evaluation_rows = split_test_set(data.y_test, seed, config.test_split,
                                                      groups)
    parts = [data.X_test, data.y_test] + ([] if groups is None else [groups])
    validation = tuple(part[validation_rows] for part in parts)
    evaluation = tuple(part[evaluation_rows] for part in parts)
    factory = PrunerFactory(config, make_base_net(config, data), validation)
    return config, data, factory, evaluation


@contextmanager
def named_warnings(names):
    """Re-issue the warnings of a block, with starved classes named by ``names``.

    A pruner knows labels only (0 to 9); the benchmark knows that 6 is
    "Shirt", so its warnings say so.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        message = warning.message
        if isinstance(message, StarvedGroupWarning):
            message = message.described(names)
        warnings.warn_explicit(message, warning.category, warning.filename, warning.lineno)


def class_names(data):
    """Class label -> name, from the data's ``class_names`` where it has them."""
    names = getattr(data, "class_names", None)
    if names is None or len(names) != len(data.classes):
        return {label: str(label) for label in data.classes.tolist()}
    return {label: str(name) for label, name in zip(data.classes.tolist(), names, strict=True)}
