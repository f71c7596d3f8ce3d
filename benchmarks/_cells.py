"""One benchmark cell: build a protocol's pipeline, fit it, evaluate it.

These functions run in worker processes (loky or dask), so they take plain
data (a settings dict, a cell, a cache path), not data sets or estimators.
"""

import time
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import clone

import skprune
from skprune import MetriQ, RandomPruner, StrategyQ, class_recall_report, make_pipeline
from skprune.models import make_net

from ._config import (
    FULL,
    NO_STRATEGY,
    STRATEGY_CLASSES,
    STRATEGY_LABELS,
    BenchmarkConfig,
    Cell,
    corrected_epochs,
)
from ._data import load_benchmark_data, split_test_set


def make_base_net(config, data):
    """The network of the benchmark, untrained, with the recipe's epochs.

    Pruners and MetriQ train their query networks from this one; a cell's
    final network is a clone with the epoch correction applied.
    """
    return make_net(
        config.model, len(data.classes), config.recipe,
        input_shape=tuple(data.X_train.shape[1:]), **config.net_params,
    )


def make_pruner(protocol, strategy, *, density, seed, net, validation, strategy_params,
                memory):
    """The pruner of a protocol (DESIGN.md section 2), or ``None`` for ``Full``.

    Every pruner gets the integer ``seed`` and the shared ``memory``: scores
    and MetriQ recalls then depend on neither the density nor the protocol,
    so they are computed once per (strategy, seed) and read from the cache
    by every other cell.

    Parameters
    ----------
    protocol : str
        ``"Full"`` or a protocol name.
    strategy : str
        A strategy name, or ``"-"`` for strategy-free protocols.
    density : float
    seed : int
    net : skorch.NeuralNetClassifier
        The query network of scoring strategies and of MetriQ.
    validation : tuple
        ``(X_val, y_val)`` on which MetriQ measures class recall.
    strategy_params : dict
        Extra parameters of each strategy's pruner, by strategy name.
    memory : str
        The disk cache shared by all cells.
    """
    if protocol == FULL:
        return None
    common = {"density": density, "random_state": seed, "memory": memory}
    metriq = MetriQ(net, validation=validation)

    def strategy_pruner(**params):
        return pruner_class(strategy)(net, **strategy_params.get(strategy, {}), **params)

    if protocol == "Random":
        return RandomPruner(**common)
    if protocol == "Random+MetriQ":
        return RandomPruner(net, quota=metriq, **common)
    if strategy == NO_STRATEGY:
        raise ValueError(f"Protocol {protocol!r} needs a strategy.")
    if protocol == "Strategy":
        return strategy_pruner(**common)
    if protocol == "Strategy+MetriQ":
        return strategy_pruner(quota=metriq, **common)
    if protocol == "Random+StrategyQ":
        # The inner pruner gets the same seed and cache as the Strategy
        # cells, so it reuses their scores instead of training again.
        inner = strategy_pruner(random_state=seed, memory=memory)
        return RandomPruner(quota=StrategyQ(inner), **common)
    raise ValueError(f"Unknown protocol {protocol!r}.")


def pruner_class(strategy):
    """The skprune pruner class of a strategy name."""
    return getattr(skprune, STRATEGY_CLASSES[strategy])


def warm_cache(settings, protocol, strategy, seed, cache_dir, torch_threads=None):
    """Compute the scores or MetriQ recalls that a group of cells shares.

    Fits the protocol's pruner once (keeping everything), which fills the
    disk cache; the cells that follow read from it. Used when no pending
    cell needs only this computation (see :func:`benchmarks._schedule.schedule`).

    Parameters
    ----------
    settings : dict
        :meth:`BenchmarkConfig.to_dict` of the run.
    protocol, strategy : str
        The protocol whose pruner computes the result, and its strategy.
    seed : int
    cache_dir : str
    torch_threads : int or None
        Threads torch may use in this worker; ``None`` leaves it unchanged.
    """
    config, data, net, validation, _ = _cell_inputs(settings, seed, torch_threads)
    pruner = make_pruner(
        protocol, strategy, density=1.0, seed=seed, net=net, validation=validation,
        strategy_params=config.strategy_params, memory=cache_dir,
    )
    pruner.fit_resample(data.X_train, data.y_train)


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
    config, data, net, validation, evaluation = _cell_inputs(settings, cell.seed, torch_threads)
    base_epochs = net.max_epochs
    epochs = (corrected_epochs(base_epochs, cell.density)
              if config.epochs_correction else base_epochs)
    final_net = clone(net).set_params(max_epochs=epochs)
    pruner = make_pruner(
        cell.protocol, cell.strategy, density=cell.density, seed=cell.seed, net=net,
        validation=validation, strategy_params=config.strategy_params, memory=cache_dir,
    )
    model = final_net if pruner is None else make_pipeline(pruner, final_net)

    start = time.perf_counter()
    with _seeded(cell.seed):
        model.fit(data.X_train, data.y_train)
    fit_seconds = time.perf_counter() - start

    X_eval, y_eval = evaluation
    report = class_recall_report(y_eval, model.predict(X_eval), labels=data.classes)
    names = _class_names(data)
    if pruner is None:
        labels, kept = np.unique(data.y_train, return_counts=True)
        class_counts = dict(zip(labels.tolist(), kept.tolist()))
    else:
        class_counts = pruner.class_counts_
    validation_recall = getattr(pruner, "class_recall_", None)
    return {
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
        "epochs": int(epochs),
        "fit_seconds": round(fit_seconds, 3),
        "config": fingerprint,
    }


def method_label(protocol, strategy):
    """How a protocol is named in tables and legends, e.g. ``"EL2N+MetriQ"``."""
    if strategy == NO_STRATEGY:
        return protocol
    label = STRATEGY_LABELS[strategy]
    if protocol == "Random+StrategyQ":
        return f"Random+{label}Q"
    return protocol.replace("Strategy", label)


def _cell_inputs(settings, seed, torch_threads):
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    config = BenchmarkConfig(**settings)
    data = load_benchmark_data(config.dataset, config.data_root, config.n_train)
    validation_rows, evaluation_rows = split_test_set(data.y_test, seed)
    validation = (data.X_test[validation_rows], data.y_test[validation_rows])
    evaluation = (data.X_test[evaluation_rows], data.y_test[evaluation_rows])
    return config, data, make_base_net(config, data), validation, evaluation


def _class_names(data):
    names = getattr(data, "class_names", None)
    if names is None or len(names) != len(data.classes):
        return {label: str(label) for label in data.classes.tolist()}
    return {label: str(name) for label, name in zip(data.classes.tolist(), names)}


@contextmanager
def _seeded(seed):
    # The final network's initialization and shuffling must not depend on
    # what ran before in this worker, or a resumed run would differ.
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
