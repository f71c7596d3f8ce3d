"""What one fairness-benchmark run computes: its settings and its grid of cells."""

import dataclasses
import hashlib
import json
import numbers
from typing import NamedTuple

from .presets import ALL_PROTOCOLS, ALL_STRATEGIES

#: CLI strategy name -> skprune pruner class name.
STRATEGY_CLASSES = {
    "random": "RandomPruner",
    "grand": "GraNdPruner",
    "el2n": "EL2NPruner",
    "forgetting": "ForgettingPruner",
    "dynunc": "DynamicUncertaintyPruner",
}
STRATEGY_LABELS = {
    "random": "Random",
    "grand": "GraNd",
    "el2n": "EL2N",
    "forgetting": "Forgetting",
    "dynunc": "DynUnc",
}
#: Protocols whose pruner does not depend on the strategy: run once per
#: density and seed, recorded with strategy ``NO_STRATEGY``.
STRATEGY_FREE_PROTOCOLS = ("Random", "Random+MetriQ")
#: The reference cell: the network trained on the whole training set.
FULL = "Full"
NO_STRATEGY = "-"
#: With strategy "random", each protocol is one of the strategy-free ones
#: (random scores, random quotas), so it is not run twice.
RANDOM_EQUIVALENT = {
    "Random": "Random",
    "Strategy": "Random",
    "Strategy+MetriQ": "Random+MetriQ",
    "Random+StrategyQ": "Random",
    "Random+MetriQ": "Random+MetriQ",
}
#: Bumped whenever a row's meaning changes, so old results are not mixed in.
RESULTS_VERSION = 1

assert set(STRATEGY_CLASSES) == set(ALL_STRATEGIES)
assert set(RANDOM_EQUIVALENT) == set(ALL_PROTOCOLS)


class InvalidConfigError(ValueError):
    """A benchmark setting is unknown or out of range."""


class Cell(NamedTuple):
    """One trained and evaluated network: protocol x strategy x density x seed."""

    protocol: str
    strategy: str
    density: float
    seed: int


def cell_key(protocol, strategy, density, seed):
    """A hashable key for a cell, robust to float noise in ``density``."""
    return Cell(str(protocol), str(strategy), round(float(density), 6), int(seed))


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """Settings of a fairness-benchmark run.

    Parameters
    ----------
    dataset : str
        A name in ``skprune.datasets.DATASETS``.
    model : str
        An architecture accepted by ``skprune.models.make_net``.
    recipe : str or None
        Training settings from ``skprune.models.RECIPES``.
    net_params : dict
        skorch parameters that override the recipe (e.g. ``max_epochs``).
    strategies : tuple of str
        Names in :data:`STRATEGY_CLASSES`.
    strategy_params : dict
        Extra parameters per strategy name, e.g. ``{"el2n": {"n_runs": 1}}``.
    protocols : tuple of str
        Names in :data:`~benchmarks.presets.ALL_PROTOCOLS`.
    densities : tuple of float
        Kept fractions, each in (0, 1].
    seeds : tuple of int
    epochs_correction : bool
        Train the network of a cell at density ``f`` for
        ``E * (0.5 + 0.5 f) / f`` epochs instead of ``E`` (the paper's
        protocol: pruned runs get a comparable compute budget).
    full_reference : bool
        Also train on the whole training set once per seed (protocol ``Full``).
    n_train : int or None
        Stratified subsample of the training set (always the same rows);
        ``None`` uses all of it.
    data_root : str or None
        Where the dataset's files are; ``None`` uses the loader's default.
    preset : str or None
        The preset these settings started from (informational).
    """

    dataset: str
    model: str
    recipe: str | None = None
    net_params: dict = dataclasses.field(default_factory=dict)
    strategies: tuple = tuple(ALL_STRATEGIES)
    strategy_params: dict = dataclasses.field(default_factory=dict)
    protocols: tuple = tuple(ALL_PROTOCOLS)
    densities: tuple = (0.1, 0.3, 0.5, 0.7, 0.9)
    seeds: tuple = (0, 1, 2)
    epochs_correction: bool = True
    full_reference: bool = True
    n_train: int | None = None
    data_root: str | None = None
    preset: str | None = None

    #: Fields that change what a cell's row holds. The grid (strategies,
    #: protocols, densities, seeds) may grow between runs into the same
    #: directory; these may not.
    RESULT_FIELDS = ("dataset", "n_train", "model", "recipe", "net_params",
                     "strategy_params", "epochs_correction")

    def __post_init__(self):
        for name in ("strategies", "protocols", "densities", "seeds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self.validate()

    def validate(self):
        """Raise :class:`InvalidConfigError` for any unknown or invalid setting."""
        _check_choices("strategy", self.strategies, STRATEGY_CLASSES)
        _check_choices("protocol", self.protocols, ALL_PROTOCOLS)
        unknown = sorted(set(self.strategy_params) - set(STRATEGY_CLASSES))
        if unknown:
            raise InvalidConfigError(
                f"strategy_params has unknown strategies {unknown}; use names from "
                f"{list(STRATEGY_CLASSES)}."
            )
        for name in ("strategies", "protocols", "densities", "seeds"):
            if not getattr(self, name):
                raise InvalidConfigError(
                    f"The benchmark needs at least one of {name}; got none."
                )
        for density in self.densities:
            check_density(density)
        for seed in self.seeds:
            if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
                raise InvalidConfigError(
                    f"Seeds must be non-negative integers (they make scores cacheable); "
                    f"got {seed!r}."
                )
        if self.n_train is not None and (not isinstance(self.n_train, numbers.Integral)
                                         or self.n_train < 2):
            raise InvalidConfigError(
                f"n_train must be an integer >= 2 or None; got {self.n_train!r}."
            )

    def result_settings(self):
        """The settings a row depends on beyond its own cell, as plain JSON data."""
        return json.loads(json.dumps(
            {"results_version": RESULTS_VERSION,
             **{name: getattr(self, name) for name in self.RESULT_FIELDS}},
            sort_keys=True, default=_json_default,
        ))

    def fingerprint(self):
        """A short hash of :meth:`result_settings`, stored in every row."""
        text = json.dumps(self.result_settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self):
        """Every setting, as plain JSON data."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=_json_default))

    def cells(self):
        """Every cell of the grid, each once, seed by seed.

        Strategy-free protocols appear once per density and seed, and
        strategy ``"random"`` maps onto them (see :data:`RANDOM_EQUIVALENT`).
        Within a seed the densest cells come first: they take longest, and
        starting them early keeps parallel workers evenly busy.
        """
        cells = []
        for seed in self.seeds:
            if self.full_reference:
                cells.append(cell_key(FULL, NO_STRATEGY, 1.0, seed))
            for density in sorted(self.densities, reverse=True):
                for protocol in self.protocols:
                    if protocol in STRATEGY_FREE_PROTOCOLS:
                        cells.append(cell_key(protocol, NO_STRATEGY, density, seed))
                        continue
                    for strategy in self.strategies:
                        if strategy == "random":
                            cells.append(cell_key(RANDOM_EQUIVALENT[protocol], NO_STRATEGY,
                                                  density, seed))
                        else:
                            cells.append(cell_key(protocol, strategy, density, seed))
        return list(dict.fromkeys(cells))


def check_density(density):
    """Return ``density`` as a float; raise :class:`InvalidConfigError` unless in (0, 1]."""
    try:
        value = float(density)
    except (TypeError, ValueError):
        raise InvalidConfigError(
            f"A density must be a number in (0, 1]; got {density!r}."
        ) from None
    if not 0.0 < value <= 1.0:
        raise InvalidConfigError(
            f"A density is the fraction of training samples kept and must be in (0, 1]; "
            f"got {density!r}."
        )
    return value


def corrected_epochs(epochs, density):
    """Epochs of a network trained on a fraction ``density`` of the data.

    The paper trains pruned runs for ``E * (0.5 + 0.5 f) / f`` epochs, so that
    their number of optimizer steps is halfway between the full run's and a
    run with the same number of epochs.
    """
    return max(1, round(epochs * (0.5 + 0.5 * density) / density))


def _check_choices(kind, values, known):
    unknown = [value for value in values if value not in known]
    if unknown:
        raise InvalidConfigError(
            f"Unknown {kind} {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(known)}."
        )


def _json_default(obj):
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"{obj!r} is not JSON data.")
