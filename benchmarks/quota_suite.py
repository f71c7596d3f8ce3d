"""The quota suite: MetriQ's weighting rules compared across data, models and strategies.

``python -m benchmarks.quota_suite`` runs the fairness benchmark on each of
:data:`CONFIGS` (real data: balanced, long-tailed and spurious Fashion-MNIST,
digits, an imbalanced tabular problem; an MLP and a small CNN), with the
protocols Random, Strategy (EL2N and Forgetting), and Random+MetriQ and
Strategy+MetriQ under every rule of ``--rules``, then writes one table: the
worst-class recall of each rule minus Random's, and minus the strategy's own,
per configuration and density, as paired differences over seeds with 95%
confidence intervals. It is the evidence behind MetriQ's default (see the user
guide's MetriQ page, which quotes its table).

Each configuration is an ordinary fairness run under ``--out/<name>``, so an
interrupted suite resumes where it stopped, scores and MetriQ's measurements
are computed once per seed and shared by every rule, and adding a seed or a
rule runs only the new cells.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ._config import BenchmarkConfig, InvalidConfigError
from ._files import OutputDirectoryError, make_directory, write_text_atomic
from ._paired import paired_differences
from ._registry import METRIQ_RULES, NO_STRATEGY
from ._report import to_markdown
from .fairness import run_benchmark

#: The default rule is MetriQ's own defaults (plain ``+MetriQ`` protocols).
DEFAULT_RULE = "default"
#: The rules a suite compares unless told otherwise: the default, the paper's
#: and skprune 0.1's (``floor25``/``floor75`` test the floor's sensitivity).
RULES = (DEFAULT_RULE, "paper", "shrunk")
#: The strategies of every configuration.
STRATEGIES = ("el2n", "forgetting")
DENSITIES = (0.1, 0.3, 0.5, 0.7)
SEEDS = (0, 1, 2, 3, 4)

_COMMON = {
    "strategies": STRATEGIES,
    "strategy_params": {"el2n": {"n_runs": 1}},
    "densities": DENSITIES,
    "epochs_correction": True,
    "full_reference": True,
}

#: Configuration name -> fairness-benchmark settings. Evaluation uses half of
#: each test set per class: 500 rows a class on Fashion-MNIST, 200 on
#: Satellite, 45 on digits (all the data allows).
CONFIGS = {
    "fashion-mnist-mlp": {
        "dataset": "fashion-mnist", "n_train": 4000, "model": "mlp",
        "recipe": "fashion-mnist-mlp", "net_params": {},
    },
    "fashion-mnist-long-tailed-mlp": {
        "dataset": "benchmarks.suite_datasets:fashion_mnist_long_tailed", "model": "mlp",
        "recipe": "fashion-mnist-mlp", "net_params": {},
    },
    "spurious-fashion-mnist-mlp": {
        "dataset": "spurious-fashion-mnist", "n_train": 4000, "model": "mlp",
        "recipe": "fashion-mnist-mlp", "net_params": {},
    },
    "fashion-mnist-cnn": {
        "dataset": "fashion-mnist", "n_train": 2000, "model": "cnn",
        "recipe": "fashion-mnist-cnn", "net_params": {"max_epochs": 8},
    },
    "digits-mlp": {
        "dataset": "benchmarks.suite_datasets:digits_half", "model": "mlp",
        "recipe": "digits-mlp", "net_params": {},
    },
    "satellite-mlp": {
        "dataset": "benchmarks.suite_datasets:satellite", "model": "mlp",
        "recipe": "fashion-mnist-mlp", "net_params": {"max_epochs": 30},
    },
}

#: What ``--quick`` runs (the tests): two small configurations, one seed.
QUICK = {"configs": ("digits-mlp",), "seeds": (0,), "densities": (0.3, 0.6),
         "net_params": {"max_epochs": 6, "module__hidden": [32]}}


def protocols(rules):
    """The fairness protocols of a suite comparing ``rules``."""
    names = ["Random", "Strategy"]
    for rule in rules:
        suffix = "" if rule == DEFAULT_RULE else f"[{rule}]"
        names += [f"Random+MetriQ{suffix}", f"Strategy+MetriQ{suffix}"]
    return names


def config_of(name, seeds, rules, densities=DENSITIES, net_params=None):
    """The :class:`~benchmarks._config.BenchmarkConfig` of configuration ``name``."""
    settings = {**_COMMON, **CONFIGS[name], "densities": densities}
    if net_params is not None:
        settings["net_params"] = {**settings["net_params"], **net_params}
    return BenchmarkConfig(**settings, seeds=seeds, protocols=protocols(rules),
                           preset=f"quota-suite:{name}")


def rule_of(protocol):
    """The rule a protocol runs (``DEFAULT_RULE`` for plain ``+MetriQ``), or ``None``."""
    if "MetriQ" not in protocol:
        return None
    return protocol[protocol.index("[") + 1:-1] if protocol.endswith("]") else DEFAULT_RULE


def suite_table(rows_by_config, rules):
    """Paired differences of worst-class recall, one row per configuration and density.

    Returns
    -------
    pandas.DataFrame
        Long format: ``config, density, comparison, rule, n_seeds, mean, std,
        ci_low, ci_high``, where ``comparison`` is ``"Random+MetriQ - Random"``
        or ``"<Strategy>+MetriQ - <Strategy>"``.
    """
    records = []
    for config, rows in rows_by_config.items():
        for against in ("Random", "Strategy"):
            differences = paired_differences(rows, "worst_class_recall", against)
            for record in differences.to_dict("records"):
                rule = rule_of(record["protocol"])
                if rule not in rules:
                    continue
                if against == "Random" and record["strategy"] != NO_STRATEGY:
                    continue
                if against == "Random":
                    comparison = "Random+MetriQ - Random"
                else:
                    label = record["method"].split("+")[0]
                    comparison = f"{label}+MetriQ - {label}"
                records.append({"config": config, "density": record["density"],
                                "comparison": comparison, "rule": rule,
                                **{key: record[key] for key in
                                   ("n_seeds", "mean", "std", "ci_low", "ci_high")}})
    return pd.DataFrame(records)


def display_suite(table, digits=3):
    """The suite table as ``(config, density) x (comparison, rule)`` strings ``mean ± ci``."""
    def entry(record):
        half = (record["ci_high"] - record["ci_low"]) / 2
        return (f"{record['mean']:+.{digits}f}" if np.isnan(half)
                else f"{record['mean']:+.{digits}f} ± {half:.{digits}f}")

    wide = (table.assign(entry=table.apply(entry, axis=1))
            .pivot_table(index=["config", "density"], columns=["comparison", "rule"],
                         values="entry", aggfunc="first", sort=False))
    wide.columns = [f"{comparison} [{rule}]" for comparison, rule in wide.columns]
    return wide


def summary(table, random_floor=0.02, strategy_margin=0.05, low_density=0.5):
    """Per comparison and rule: the mean over cells, the worst cell, and the targets.

    A Random+MetriQ cell fails its target when it is below Random by more
    than ``max(random_floor, 2 * standard error)`` at a density of at most
    ``low_density``; a Strategy+MetriQ cell when it is below its strategy by
    more than ``strategy_margin``.
    """
    records = []
    for (comparison, rule), part in table.groupby(["comparison", "rule"], sort=False):
        standard_error = part["std"] / np.sqrt(part["n_seeds"])
        if comparison.startswith("Random+"):
            allowed = np.maximum(random_floor, 2 * standard_error.fillna(0))
            failing = part[(part["density"] <= low_density) & (part["mean"] < -allowed)]
        else:
            failing = part[part["mean"] < -strategy_margin]
        worst = part.loc[part["mean"].idxmin()]
        records.append({
            "comparison": comparison, "rule": rule, "cells": len(part),
            "mean": part["mean"].mean(), "worst": worst["mean"],
            "worst_cell": f"{worst['config']} @ {worst['density']:g}",
            "cells_missing_target": len(failing),
        })
    return pd.DataFrame(records)


def write_suite(rows_by_config, rules, out_dir):
    """Write ``suite.csv`` (long), ``suite.md`` (the table and its summary)."""
    table = suite_table(rows_by_config, rules)
    out_dir = make_directory(out_dir)
    csv = out_dir / "suite.csv"
    write_text_atomic(csv, table.to_csv(index=False))
    summarized = summary(table)
    text = (
        "# Quota suite: worst-class recall, paired differences over seeds\n\n"
        "Mean difference ± half-width of its 95% confidence interval (Student's t over "
        "seeds), per configuration and density.\n\n"
        + to_markdown(display_suite(table)) + "\n\n## Summary over cells\n\n"
        + summarized.to_markdown(index=False, floatfmt="+.3f") + "\n\n"
        "Targets: Random+MetriQ never below Random by more than max(0.02, 2 SE) at "
        "densities <= 0.5; Strategy+MetriQ never below its strategy by more than 0.05.\n"
    )
    write_text_atomic(out_dir / "suite.md", text)
    return table, summarized, [csv, out_dir / "suite.md"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quota_suite",
        description="Compare MetriQ's weighting rules by worst-class recall against Random "
                    "and against each strategy, across real datasets and models.",
    )
    parser.add_argument("--out", default="results/quota-suite", type=Path)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--rules", nargs="+", choices=[DEFAULT_RULE, *METRIQ_RULES],
                        default=list(RULES), help="MetriQ rules to compare (default: "
                        f"{' '.join(RULES)}; also "
                        f"{' '.join(sorted(set(METRIQ_RULES) - set(RULES)))})")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--densities", nargs="+", type=float, default=list(DENSITIES))
    parser.add_argument("--n-jobs", type=int, default=-1, help="cells at once (default: "
                        "every core)")
    parser.add_argument("--quick", action="store_true",
                        help="seconds-long check: digits, one seed, two densities")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv=None):
    """Run the suite; returns the exit status (1 with one ``error:`` line)."""
    args = build_parser().parse_args(argv)
    configs, seeds, densities, net_params = args.configs, args.seeds, args.densities, None
    if args.quick:
        configs, seeds = QUICK["configs"], QUICK["seeds"]
        densities, net_params = QUICK["densities"], QUICK["net_params"]
    start = time.perf_counter()
    rows_by_config = {}
    try:
        for name in configs:
            config = config_of(name, tuple(seeds), args.rules, tuple(densities), net_params)
            result = run_benchmark(config, args.out / name, n_jobs=args.n_jobs,
                                   progress=not args.no_progress, figure_formats=("png",))
            rows_by_config[name] = result["rows"]
        _, summarized, paths = write_suite(rows_by_config, args.rules, args.out)
    except (OSError, InvalidConfigError, OutputDirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summarized.to_markdown(index=False, floatfmt="+.3f"))
    print(f"\nDone in {time.perf_counter() - start:.0f} s: {', '.join(map(str, paths))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
