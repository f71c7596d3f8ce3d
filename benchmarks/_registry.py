"""Every strategy and protocol the fairness benchmark knows: one entry each.

Adding a strategy to the benchmark is one :class:`Strategy` entry in
:data:`STRATEGIES` (a pruner of ``skprune``); a pruner class of your own is
named on the command line as ``module:Class``. What a strategy's query
network is (its ``query_fraction`` and ``query_runs``) is not restated here:
the pruner class declares it in its tags (:class:`skprune.utils.PrunerTags`).
A protocol (how a strategy's scores and a quota combine into one pruner, the
user guide's :ref:`protocols`) is one :class:`Protocol` entry in
:data:`PROTOCOLS`. Everything else (presets, the grid of cells, the shared
computations, tables and figures) reads these.
"""

import dataclasses
import importlib
from collections.abc import Callable

from sklearn.utils import get_tags

import skprune

#: The strategy name of cells whose pruner has none (Random, Random+MetriQ, Full).
NO_STRATEGY = "-"
#: The reference cell: the network trained on the whole training set.
FULL = "Full"
#: The reference cell of data with groups: the whole training set, drawn so
#: that every group is seen equally often (see :func:`benchmarks._cells.run_cell`).
FULL_GROUP_BALANCED = "Full, group-balanced"
#: Cells without a pruner, trained once per seed at density 1.
REFERENCES = (FULL, FULL_GROUP_BALANCED)

#: Dynamic Uncertainty's window in the DRoP authors' code: ``--J`` of their
#: ``main.py`` (default 10; their ``config.py`` only changes it for
#: ``--test``). Their ``scorers/dynamic_uncertainty.py`` takes, at the first
#: batch of every epoch from the ``J``-th on, the standard deviation over the
#: ``J - 1`` epochs recorded so far in its buffer, and drops the oldest: the
#: windows are every ``J - 1`` consecutive epochs that end before the final
#: epoch, whose probabilities enter none.
DROP_DYNUNC_J = 10


class RegistryError(ValueError):
    """A strategy or protocol name that the benchmark does not know."""


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A pruning strategy of the benchmark.

    Parameters
    ----------
    name : str
        Its name on the command line and in ``results.jsonl``.
    label : str
        Its name in tables and legends.
    pruner : str
        A pruner class of ``skprune``, or ``"module:Class"``.
    color : str
        Its colour in every figure.
    marker : str
        Its marker in the figure of strategies alone (``strategies.*``),
        where the protocol's marker would be the same for every line.
    drop_params : dict
        Parameters the DRoP protocol gives the pruner: the conventions of
        the authors' code where they differ from skprune's defaults. The
        run's own ``strategy_params`` override them.
    """

    name: str
    label: str
    pruner: str
    color: str = "tab:gray"
    marker: str = "o"
    drop_params: dict = dataclasses.field(default_factory=dict, hash=False)

    def pruner_class(self):
        """The pruner class, imported."""
        if ":" in self.pruner:
            return import_object(self.pruner, "--strategies")
        return getattr(skprune, self.pruner)

    @property
    def tags(self):
        """The pruner class's :class:`skprune.utils.PrunerTags`."""
        return get_tags(self.pruner_class()()).pruner_tags

    @property
    def query(self):
        """Its query network under the DRoP authors' protocol, from its ``query_fraction``.

        ``"short"``: a fraction of the schedule, with the learning-rate
        drops scaled to it (EL2N, GraNd); ``"full"``: the whole schedule;
        ``"none"``: no network (random scores).
        """
        fraction = self.tags.query_fraction
        if fraction is None:
            return "none"
        return "short" if fraction < 1 else "full"

    @property
    def query_runs(self):
        """Query initializations under the DRoP protocol (its ``query_runs`` tag)."""
        return self.tags.query_runs


STRATEGIES = {
    strategy.name: strategy
    for strategy in (
        Strategy("random", "Random", "RandomPruner", color="black", marker="s"),
        Strategy("grand", "GraNd", "GraNdPruner", color="tab:blue", marker="o"),
        Strategy("el2n", "EL2N", "EL2NPruner", color="tab:orange", marker="^"),
        # DRoP's scorers/forgetting.py starts every sample at "incorrect"
        # (prev_accs = zeros) and counts only correct -> incorrect drops, so a
        # sample never classified correctly scores 0.
        Strategy("forgetting", "Forgetting", "ForgettingPruner", color="tab:green", marker="v",
                 drop_params={"never_learned": "zero"}),
        Strategy("dynunc", "DynUnc", "DynamicUncertaintyPruner", color="tab:red", marker="D",
                 drop_params={"windows": "before-last", "window": DROP_DYNUNC_J - 1}),
        Strategy("coreset", "CoreSet", "CoreSetPruner", color="tab:purple", marker="P"),
        Strategy("prototype", "Prototype", "PrototypePruner", color="tab:brown", marker="X"),
        Strategy("uncertainty", "Uncertainty", "UncertaintyPruner", color="tab:pink", marker="<"),
        Strategy("aum", "AUM", "AUMPruner", color="tab:olive", marker=">"),
    )
}

#: Colours of ``module:Class`` strategies, in the order they are named.
_EXTRA_COLORS = ("tab:cyan", "goldenrod", "teal", "indigo", "crimson", "darkkhaki")
#: Markers of ``module:Class`` strategies, none a built-in strategy's.
_EXTRA_MARKERS = ("p", "h", "*", "d", "H", "8")


def strategy(name):
    """The :class:`Strategy` of a name in :data:`STRATEGIES` or a ``module:Class``.

    Raises
    ------
    RegistryError
        For an unknown name, or a ``module:Class`` that is not a pruner.
    """
    if name in STRATEGIES:
        return STRATEGIES[name]
    if ":" not in name:
        raise RegistryError(
            f"Unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}, or name a "
            "pruner class of your own as module:Class."
        )
    pruner_class = import_object(name, "--strategies")
    if not (isinstance(pruner_class, type) and issubclass(pruner_class, skprune.DataPruner)):
        raise RegistryError(
            f"--strategies {name}: {pruner_class!r} is not a skprune pruner; subclass "
            "skprune.DataPruner (see the user guide's 'Writing your own pruner')."
        )
    code = sum(map(ord, name))
    return Strategy(name, pruner_class.__name__, name,
                    color=_EXTRA_COLORS[code % len(_EXTRA_COLORS)],
                    marker=_EXTRA_MARKERS[code % len(_EXTRA_MARKERS)])


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a protocol builds its pruner from a strategy and a quota.

    Parameters
    ----------
    name : str
    build : callable
        ``build(factory, strategy, **common)`` returns the pruner, where
        ``factory`` is a :class:`benchmarks._cells.PrunerFactory`.
    uses_strategy : bool
        Whether its cells have a strategy (else they run once per density
        and seed, with strategy ``"-"``).
    uses_metriq : bool
        Whether its pruner measures MetriQ recalls.
    random_equivalent : str
        The protocol it equals with random scores (strategy ``"random"``
        runs as that one, never twice).
    linestyle : str or tuple
        Its line style in every figure (a matplotlib style).
    marker : str
        Its marker in every figure.
    uses_groups : bool, default=False
        Whether its pruner is fitted with the data's groups (quotas over
        groups, for data that has them).
    """

    name: str
    build: Callable
    uses_strategy: bool
    uses_metriq: bool
    random_equivalent: str
    linestyle: str = "-"
    marker: str = "o"
    uses_groups: bool = False

    def label(self, strategy_name):
        """How the method is named in tables and legends, e.g. ``"EL2N+MetriQ"``."""
        if strategy_name == NO_STRATEGY:
            return self.name
        label = strategy(strategy_name).label
        if self.name == "Random+StrategyQ":
            return f"Random+{label}Q"
        return self.name.replace("Strategy", label)


PROTOCOLS = {
    protocol.name: protocol
    for protocol in (
        Protocol("Random", lambda factory, strategy, **common: factory.random(**common),
                 False, False, "Random", "-", "s"),
        Protocol("Random+MetriQ",
                 lambda factory, strategy, **common: factory.random(
                     quota=factory.metriq(NO_STRATEGY), **common),
                 False, True, "Random+MetriQ", "--", "D"),
        Protocol("Strategy", lambda factory, strategy, **common: factory.strategy(
            strategy, **common), True, False, "Random", "-", "o"),
        Protocol("Strategy+MetriQ",
                 lambda factory, strategy, **common: factory.strategy(
                     strategy, quota=factory.metriq(strategy), **common),
                 True, True, "Random+MetriQ", "--", "^"),
        Protocol("Random+GroupMetriQ",
                 lambda factory, strategy, **common: factory.random(
                     quota=factory.metriq(NO_STRATEGY, groups=True), **common),
                 False, True, "Random+GroupMetriQ", (0, (5, 1)), "H", uses_groups=True),
        Protocol("Strategy+GroupMetriQ",
                 lambda factory, strategy, **common: factory.strategy(
                     strategy, quota=factory.metriq(strategy, groups=True), **common),
                 True, True, "Random+GroupMetriQ", (0, (5, 1)), "d", uses_groups=True),
        # Idrissi et al.'s SUBG: every group subsampled to the same size, at
        # random within groups (skprune.quotas.SUBG says what happens at
        # densities the smallest group cannot fill).
        Protocol("SUBG",
                 lambda factory, strategy, **common: factory.random(quota="subg", **common),
                 False, False, "SUBG", (0, (1, 1)), "+", uses_groups=True),
        Protocol("Random+StrategyQ",
                 lambda factory, strategy, **common: factory.random(
                     quota=skprune.StrategyQ(factory.strategy(
                         strategy, random_state=common["random_state"],
                         memory=common["memory"])),
                     **common),
                 True, False, "Random", ":", "x"),
    )
}

#: MetriQ's weighting rules that the quota suite compares (``benchmarks.quota_suite``),
#: as MetriQ parameters. ``Random+MetriQ[rule]`` and ``Strategy+MetriQ[rule]`` run
#: MetriQ with them; ``Random+MetriQ`` and ``Strategy+MetriQ`` run its defaults. Every
#: rule reads the same measurement (one MetriQ training per seed).
METRIQ_RULES = {
    # The paper's exact 1 - r_k.
    "paper": {"error_rate": "observed", "floor": 0.0},
    # skprune 0.1's default: shrunk rates, acting only on evidence.
    "shrunk": {"error_rate": "shrunk", "floor": 0.0},
    # The default with a lower and a higher floor (sensitivity).
    "floor25": {"floor": 0.25},
    "floor75": {"floor": 0.75},
}


def _rule_protocol(base, rule):
    entry = PROTOCOLS[base]

    def build(factory, strategy, **common):
        quota = factory.metriq(strategy if entry.uses_strategy else NO_STRATEGY, rule=rule)
        if entry.uses_strategy:
            return factory.strategy(strategy, quota=quota, **common)
        return factory.random(quota=quota, **common)

    # The line style is the rule's, shared by its Random and Strategy
    # protocols; the marker is the protocol's own.
    position = list(METRIQ_RULES).index(rule)
    markers = _RULE_MARKERS[entry.uses_strategy]
    return dataclasses.replace(entry, name=f"{base}[{rule}]", build=build,
                               random_equivalent=f"{entry.random_equivalent}[{rule}]",
                               linestyle=_RULE_LINESTYLES[position % len(_RULE_LINESTYLES)],
                               marker=markers[position % len(markers)])


#: Line styles of the MetriQ rules, in the order of :data:`METRIQ_RULES`.
_RULE_LINESTYLES = ("-.", (0, (3, 1, 1, 1, 1, 1)), (0, (9, 3)), (0, (10, 2, 2, 2)),
                    (0, (2, 3)), (0, (1, 1, 4, 1)))
#: Markers of the rule protocols without (False) and with (True) a strategy.
_RULE_MARKERS = {False: ("p", "X", "*", "P", "1", "2"), True: ("v", "<", ">", "h", "3", "4")}


PROTOCOLS.update({
    f"{base}[{rule}]": _rule_protocol(base, rule)
    for rule in METRIQ_RULES for base in ("Random+MetriQ", "Strategy+MetriQ")
})


def is_rule_protocol(name):
    """Whether a protocol runs one of :data:`METRIQ_RULES` (``...+MetriQ[rule]``)."""
    return name.endswith("]") and "[" in name


#: The protocols of the paper: class quotas, for any data.
ALL_PROTOCOLS = [name for name, entry in PROTOCOLS.items()
                 if not entry.uses_groups and not is_rule_protocol(name)]
#: Protocols with quotas over groups, for data with groups (class x attribute).
GROUP_PROTOCOLS = [name for name, entry in PROTOCOLS.items() if entry.uses_groups]
#: Every built-in strategy.
ALL_STRATEGIES = list(STRATEGIES)


def protocol(name):
    """The :class:`Protocol` of a name in :data:`PROTOCOLS`."""
    if name not in PROTOCOLS:
        raise RegistryError(f"Unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}.")
    return PROTOCOLS[name]


def method_label(protocol_name, strategy_name):
    """How a cell's method is named in tables and legends."""
    if protocol_name in REFERENCES:
        return protocol_name
    return protocol(protocol_name).label(strategy_name)


def import_object(spec, option):
    """The object named by ``module:attribute``; errors name the option and the fix."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise RegistryError(f"{option} {spec!r} must be written module:name.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(
            f"{option} {spec}: cannot import module {module_name!r} ({exc}). Run from the "
            "directory that holds it, or add it to PYTHONPATH."
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise RegistryError(
            f"{option} {spec}: module {module_name!r} has no {attribute!r}."
        ) from None
