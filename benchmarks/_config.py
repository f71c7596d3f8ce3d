"""What one fairness-benchmark run computes: its settings and its grid of cells."""

import ast
import dataclasses
import hashlib
import json
import numbers
from typing import NamedTuple

from skprune import corrected_epochs  # noqa: F401  (the benchmark's, re-exported)

from ._registry import (
    ALL_PROTOCOLS,
    ALL_STRATEGIES,
    FULL,
    FULL_GROUP_BALANCED,
    NO_STRATEGY,
    PROTOCOLS,
    RegistryError,
    strategy,
)

#: Bumped whenever a row's meaning changes, so old results are not mixed in.
#: 2: MetriQ's shrunk error rates, train_split=None for MetriQ's network, and
#: the global random state left alone by pruners.
#: 3: CoreSet's global k-center by default, OffsetWindow's offset counted from
#: the easy end, and the drop protocol's Forgetting, Dynamic Uncertainty,
#: Random+MetriQ query model and truncated learning-rate drops.
RESULTS_VERSION = 3

#: How query networks and MetriQ are set up (see :mod:`benchmarks._cells`).
QUERY_PROTOCOLS = ("skprune", "drop")
#: How the test set is halved into MetriQ validation and evaluation.
TEST_SPLITS = ("stratified", "ordered")
#: How corrected epoch counts are rounded.
EPOCH_ROUNDINGS = ("round", "floor")


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
        A name in ``skprune.datasets.DATASETS``, a path to an ``.npz`` file
        with ``X_train``, ``y_train``, ``X_test``, ``y_test`` (and optionally
        ``class_names``), or ``module:function`` returning those.
    model : str
        An architecture accepted by ``skprune.models.make_net``, or
        ``module:function`` called as ``function(n_classes=..., input_shape=...)``
        and returning a skorch classifier.
    recipe : str or None
        Training settings from ``skprune.models.RECIPES`` (built-in models).
    net_params : dict
        skorch parameters that override the recipe (e.g. ``max_epochs``,
        ``lr``, ``batch_size``, ``device``).
    strategies : tuple of str
        Names in :data:`benchmarks._registry.STRATEGIES`, or ``module:Class``.
    strategy_params : dict
        Extra parameters per strategy name, e.g. ``{"el2n": {"n_runs": 1}}``.
    protocols : tuple of str
        Names in :data:`benchmarks._registry.PROTOCOLS`.
    densities : tuple of float
        Kept fractions, each in (0, 1].
    seeds : tuple of int
    epochs_correction : bool
        Train the network of a cell at density ``f`` for
        ``E * (0.5 + 0.5 f) / f`` epochs instead of ``E`` (the paper's
        protocol: pruned runs get a comparable compute budget).
    full_reference : bool
        Also train on the whole training set once per seed (protocol
        ``Full``); with group protocols, also once per seed with every
        group drawn equally often (``Full, group-balanced``).
    n_train : int or None
        Stratified subsample of the training set (always the same rows);
        ``None`` uses all of it.
    data_root : str or None
        Where the dataset's files are; ``None`` uses the loader's default.
    preset : str or None
        The preset these settings started from (informational).
    query_protocol : {"skprune", "drop"}, default="skprune"
        ``"skprune"``: pruners and MetriQ use the benchmark's network as it
        is (skprune's defaults). ``"drop"``: the DRoP authors' configuration
        (see :class:`benchmarks._cells.PrunerFactory` and the user guide's
        "Fidelity to DRoP"): query networks without augmentation; EL2N and
        GraNd on 10% of the schedule with its learning-rate drops scaled, 5
        initializations; Forgetting's never-learned samples score 0;
        Dynamic Uncertainty's windows of ``J - 1`` epochs before the last;
        Random+MetriQ's query model of 16 epochs at a constant learning
        rate; MetriQ's recall read at the best validation epoch and averaged
        over the query initializations, with the paper's ``1 - r_k``.
    selection : str, default="hardest"
        The selection rule of every strategy's pruner (a name in
        ``skprune.selection.SELECTIONS``).
    test_split : {"stratified", "ordered"}, default="stratified"
        How the test set is halved, per class, into MetriQ validation and
        evaluation: at random for every seed, or the first half of every
        class in dataset order (the DRoP authors').
    epochs_rounding : {"round", "floor"}, default="round"
        How the corrected epoch count and the learning-rate drops of every
        network are made whole: rounded, or floored as the DRoP authors'
        ``epochs_correction`` does.
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
    query_protocol: str = "skprune"
    selection: str = "hardest"
    test_split: str = "stratified"
    epochs_rounding: str = "round"
    #: Digest of the user's own data, model and pruner classes (see
    #: :func:`own_inputs_digest`); ``None`` with built-in ones only.
    own_inputs: str | None = None

    #: Fields that change what a cell's row holds. The grid (strategies,
    #: protocols, densities, seeds) may grow between runs into the same
    #: directory; these may not.
    RESULT_FIELDS = ("dataset", "n_train", "model", "recipe", "net_params",
                     "strategy_params", "epochs_correction", "query_protocol", "selection",
                     "test_split", "epochs_rounding")
    #: skorch parameters a device choice does not change results by (in
    #: exact arithmetic): they are left out of the fingerprint, so that a run
    #: resumes on another device.
    DEVICE_PARAMS = ("device",)

    def __post_init__(self):
        # A frozen dataclass's fields are set through its __dict__ once, here.
        for name in ("strategies", "protocols", "densities", "seeds"):
            vars(self)[name] = tuple(getattr(self, name))
        self.validate()

    def validate(self):
        """Raise :class:`InvalidConfigError` for any unknown or invalid setting."""
        try:
            for name in self.strategies:
                strategy(name)
        except RegistryError as exc:
            raise InvalidConfigError(str(exc)) from None
        _check_choices("protocol", self.protocols, PROTOCOLS)
        _check_choices("query protocol", (self.query_protocol,), QUERY_PROTOCOLS)
        _check_choices("test split", (self.test_split,), TEST_SPLITS)
        _check_choices("epoch rounding", (self.epochs_rounding,), EPOCH_ROUNDINGS)
        from skprune.selection import SELECTIONS

        _check_choices("selection", (self.selection,), SELECTIONS)
        unknown = sorted(set(self.strategy_params) - set(self.strategies))
        if unknown:
            raise InvalidConfigError(
                f"strategy parameters are given for {unknown}, which are not among the "
                f"run's strategies {list(self.strategies)}."
            )
        for name, params in self.strategy_params.items():
            if not isinstance(params, dict):
                raise InvalidConfigError(
                    f"The parameters of strategy {name!r} must be a dict; got {params!r}."
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
        settings = {name: getattr(self, name) for name in self.RESULT_FIELDS}
        if self.own_inputs is not None:
            # Only then: built-in runs keep the fingerprints of earlier versions.
            settings["own_inputs"] = self.own_inputs
        settings["net_params"] = {
            name: value for name, value in self.net_params.items()
            if name not in self.DEVICE_PARAMS
        }
        return json.loads(json.dumps(
            {"results_version": RESULTS_VERSION, **settings},
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
        strategy ``"random"`` maps onto them (a protocol's
        ``random_equivalent``). Within a seed the densest cells come first:
        they take longest, and starting them early keeps parallel workers
        evenly busy.
        """
        cells = []
        for seed in self.seeds:
            if self.full_reference:
                cells.append(cell_key(FULL, NO_STRATEGY, 1.0, seed))
                if any(PROTOCOLS[name].uses_groups for name in self.protocols):
                    cells.append(cell_key(FULL_GROUP_BALANCED, NO_STRATEGY, 1.0, seed))
            for density in sorted(self.densities, reverse=True):
                for name in self.protocols:
                    protocol = PROTOCOLS[name]
                    if not protocol.uses_strategy:
                        cells.append(cell_key(name, NO_STRATEGY, density, seed))
                        continue
                    for strategy_name in self.strategies:
                        if strategy_name == "random":
                            cells.append(cell_key(protocol.random_equivalent, NO_STRATEGY,
                                                  density, seed))
                        else:
                            cells.append(cell_key(name, strategy_name, density, seed))
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


def parse_strategy_params(texts):
    """``{"el2n": {"n_runs": 3}}`` from ``["el2n:n_runs=3", ...]``.

    Values are Python literals (numbers, strings, booleans, None, tuples);
    anything else is kept as a string.

    Raises
    ------
    InvalidConfigError
        For an entry not written ``STRATEGY:NAME=VALUE``.
    """
    params = {}
    for text in texts:
        left, equals, value = text.partition("=")
        name, sep, key = left.rpartition(":")
        if not sep or not name or not equals or not key.isidentifier():
            raise InvalidConfigError(
                f"--strategy-params {text!r} must be written STRATEGY:PARAMETER=VALUE, for "
                "example el2n:n_runs=3 or dynunc:window=5."
            )
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        params.setdefault(name, {})[key] = parsed
    return params


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
