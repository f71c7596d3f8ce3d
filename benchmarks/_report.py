"""Tables and figures of the fairness benchmark, from its finished rows.

Tables give, for every metric, the mean over seeds with its min and max, per
method (protocol and strategy) and density: tidy numbers as CSV, and a
method x density layout as Markdown and LaTeX. Figures follow the paper's:
four panels against density, one line per method, min/max bands. Every file
is written atomically: a run killed while writing leaves the previous version.
"""

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ._config import FULL, NO_STRATEGY, STRATEGY_CLASSES, STRATEGY_LABELS
from ._files import atomic_path, make_directory, write_text_atomic
from .presets import ALL_PROTOCOLS

#: Metric column -> display name, in the order of the paper's panels.
METRICS = {
    "accuracy": "Accuracy",
    "worst_class_recall": "Worst-class recall",
    "recall_gap": "Best-worst recall gap",
    "recall_std": "Std of class recall",
}
_GROUP = ["method", "protocol", "strategy", "density"]


def summarize(rows):
    """Mean, min and max over seeds of every metric, per method and density.

    Parameters
    ----------
    rows : iterable of dict
        Rows of ``results.jsonl``.

    Returns
    -------
    pandas.DataFrame
        Columns ``method, protocol, strategy, density, metric, mean, min,
        max, n_seeds``, methods in display order.
    """
    cells = pd.DataFrame(list(rows))
    long = cells.melt(id_vars=_GROUP + ["seed"], value_vars=list(METRICS), var_name="metric")
    summary = (
        long.groupby(_GROUP + ["metric"], sort=False)["value"]
        .agg(mean="mean", min="min", max="max", n_seeds="count")
        .reset_index()
    )
    return _in_display_order(summary)


def summarize_classes(rows, field):
    """Mean, min and max over seeds of a per-class field, per method, density and class.

    Parameters
    ----------
    rows : iterable of dict
    field : {"class_recall", "class_counts"}

    Returns
    -------
    pandas.DataFrame
        Columns ``method, protocol, strategy, density, class, mean, min, max``.
    """
    records = [
        {**{name: row[name] for name in _GROUP}, "class": label, "value": value}
        for row in rows
        for label, value in row[field].items()
    ]
    summary = (
        pd.DataFrame(records)
        .groupby(_GROUP + ["class"], sort=False)["value"]
        .agg(mean="mean", min="min", max="max")
        .reset_index()
    )
    return _in_display_order(summary)


def display_table(summary, metric, digits=3):
    """One metric as a method x density table of ``"mean [min, max]"`` strings.

    The brackets are left out when every entry comes from a single seed.
    """
    part = summary[summary["metric"] == metric]
    with_range = part["n_seeds"].max() > 1

    def entry(record):
        text = f"{record['mean']:.{digits}f}"
        if with_range:
            text += f" [{record['min']:.{digits}f}, {record['max']:.{digits}f}]"
        return text

    table = (
        part.assign(entry=part.apply(entry, axis=1))
        .pivot(index="method", columns="density", values="entry")
        .reindex(index=part["method"].unique(), columns=sorted(part["density"].unique()))
        .fillna("")
    )
    table.columns = [repr(round(float(density), 6)) for density in table.columns]
    return table


def to_markdown(table):
    """A display table as Markdown, its entries exactly as formatted."""
    # tabulate would otherwise re-format "0.880" as the number 0.88.
    return table.to_markdown(disable_numparse=True)


def write_tables(rows, out_dir):
    """Write ``tables/<metric>.csv|md|tex`` and the per-class CSVs.

    Returns
    -------
    paths : list of Path

    Raises
    ------
    OutputDirectoryError
        If a file cannot be written; the message names it.
    """
    tables = make_directory(Path(out_dir) / "tables")
    summary = summarize(rows)
    paths = []
    for metric, title in METRICS.items():
        part = summary[summary["metric"] == metric].drop(columns="metric")
        paths.append(_write_csv(part, tables / f"{metric}.csv"))
        table = display_table(summary, metric)
        paths.append(write_text_atomic(tables / f"{metric}.md", to_markdown(table) + "\n"))
        paths.append(write_text_atomic(tables / f"{metric}.tex", table.to_latex(
            caption=f"{title} (mean over seeds [min, max]) against density.",
            label=f"tab:{metric.replace('_', '-')}",
        )))
    for field in ("class_recall", "class_counts"):
        paths.append(_write_csv(summarize_classes(rows, field), tables / f"{field}.csv"))
    return paths


def _write_csv(frame, path):
    with atomic_path(path) as partial:
        frame.to_csv(partial, index=False)
    return path


def write_figures(rows, out_dir):
    """Write the paper-style figures as PNG.

    ``figures/<strategy>.png`` (Figure 2): every protocol of one strategy,
    with the strategy-free ones. ``figures/strategies.png`` (Figure 1): each
    strategy on its own against random pruning. Without any strategy,
    ``figures/protocols.png`` shows the strategy-free protocols.

    Returns
    -------
    paths : list of Path

    Raises
    ------
    OutputDirectoryError
        If a file cannot be written; the message names it.
    """
    figures = make_directory(Path(out_dir) / "figures")
    summary = summarize(rows)
    methods = summary.drop_duplicates("method")[["method", "protocol", "strategy"]]
    shared = methods[(methods["strategy"] == NO_STRATEGY) & (methods["protocol"] != FULL)]
    # A protocol keeps its color in every figure, a strategy in Figure 1.
    by_protocol = {protocol: f"C{index}" for index, protocol in enumerate(ALL_PROTOCOLS)}
    by_strategy = {strategy: f"C{index}" for index, strategy in enumerate(STRATEGY_CLASSES)}

    def lines(frame, colors, key):
        return [(record.method, colors[getattr(record, key)])
                for record in frame.itertuples(index=False)]

    paths = []
    strategies = [s for s in STRATEGY_CLASSES if s in set(methods["strategy"])]
    for strategy in strategies:
        own = methods[methods["strategy"] == strategy]
        paths.append(_plot(
            summary, lines(shared, by_protocol, "protocol") + lines(own, by_protocol, "protocol"),
            figures / f"{strategy}.png", title=f"{STRATEGY_LABELS[strategy]}: pruning protocols",
        ))
    plain = methods[methods["protocol"] == "Strategy"]
    if not plain.empty:
        random = [(method, by_strategy["random"]) for method in shared["method"]
                  if method == "Random"]
        paths.append(_plot(summary, random + lines(plain, by_strategy, "strategy"),
                           figures / "strategies.png", title="Pruning strategies"))
    if not strategies:
        paths.append(_plot(summary, lines(shared, by_protocol, "protocol"),
                           figures / "protocols.png", title="Pruning protocols"))
    return paths


def write_report(rows, out_dir):
    """Write every table and figure; returns ``{"tables": [...], "figures": [...]}``."""
    rows = list(rows)
    return {"tables": write_tables(rows, out_dir), "figures": write_figures(rows, out_dir)}


def _plot(summary, lines, path, title):
    """Four panels against density: one line and min/max band per (method, color)."""
    figure = Figure(figsize=(4.2 * len(METRICS), 4.0), layout="constrained")
    axes = figure.subplots(1, len(METRICS))
    full = summary[summary["protocol"] == FULL]
    for axis, (metric, label) in zip(axes, METRICS.items()):
        part = summary[summary["metric"] == metric]
        for method, color in lines:
            line = part[part["method"] == method].sort_values("density")
            axis.plot(line["density"], line["mean"], marker="o", color=color, label=method)
            axis.fill_between(line["density"], line["min"], line["max"], color=color,
                              alpha=0.2, linewidth=0)
        reference = full[full["metric"] == metric]
        if not reference.empty:
            axis.axhline(reference["mean"].mean(), color="0.4", linestyle="--",
                         label="Full dataset")
        axis.set_xlabel("Density")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6))
    figure.suptitle(title)
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=120)
    return path


def _method_rank(protocol, strategy):
    if protocol == FULL:
        return (0, 0, 0)
    if strategy == NO_STRATEGY:
        return (1, 0, ALL_PROTOCOLS.index(protocol))
    return (2, list(STRATEGY_CLASSES).index(strategy), ALL_PROTOCOLS.index(protocol))


def _in_display_order(frame):
    rank = frame.apply(lambda r: _method_rank(r["protocol"], r["strategy"]), axis=1)
    order = sorted(range(len(frame)), key=lambda i: (rank.iloc[i], frame["density"].iloc[i]))
    return frame.iloc[order].reset_index(drop=True)
