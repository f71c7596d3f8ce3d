"""Tables and figures of the fairness benchmark, from its finished rows.

Tables give, for every metric, the mean over seeds with its min and max, per
method (protocol and strategy) and density: tidy numbers as CSV, and a
method x density layout as Markdown and LaTeX. Figures follow the paper's:
four panels against density, one line per method, min/max bands. Every file
is written atomically: a run killed while writing leaves the previous version.
"""

from functools import partial
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ._files import atomic_path, make_directory, write_text_atomic
from ._paired import REFERENCES_OF_METHODS, display_differences, paired_differences
from ._registry import (
    FULL,
    FULL_GROUP_BALANCED,
    NO_STRATEGY,
    PROTOCOLS,
    REFERENCES,
    STRATEGIES,
    strategy,
)

#: Metric column -> display name, in the order of the paper's panels.
METRICS = {
    "accuracy": "Accuracy",
    "worst_class_recall": "Worst-class recall",
    "recall_gap": "Best-worst recall gap",
    "recall_std": "Std of class recall",
}
#: Group metrics, in rows of data with groups.
GROUP_METRICS = {
    "worst_group_accuracy": "Worst-group accuracy",
    "group_accuracy_gap": "Best-worst group accuracy gap",
}
#: Protocols in the order of tables and legends.
PROTOCOL_ORDER = list(PROTOCOLS)
#: Metrics where lower is better (the best entry of a column is its minimum).
LOWER_IS_BETTER = ("recall_gap", "recall_std", "group_accuracy_gap")
#: Figure formats: raster for a README, vector for a paper.
FIGURE_FORMATS = ("png", "pdf", "svg")
_GROUP = ["method", "protocol", "strategy", "density"]


def metrics_of(rows):
    """The metrics every row has: :data:`METRICS`, and :data:`GROUP_METRICS` with groups."""
    rows = list(rows)
    metrics = dict(METRICS)
    if rows and all(name in row for row in rows for name in GROUP_METRICS):
        metrics.update(GROUP_METRICS)
    return metrics


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
    rows = list(rows)
    cells = pd.DataFrame(rows)
    long = cells.melt(id_vars=_GROUP + ["seed"], value_vars=list(metrics_of(rows)),
                      var_name="metric")
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


def underfit_note(rows):
    """A warning when the full-data model is near chance: then no table means much.

    Returns
    -------
    str or None
        The note, or ``None`` when the ``Full`` cells (if any) learnt.
    """
    full = [row for row in rows if row["protocol"] == FULL]
    if not full:
        return None
    n_classes = full[0].get("n_classes") or len(full[0]["class_recall"])
    chance = 1.0 / n_classes
    accuracy = sum(row["accuracy"] for row in full) / len(full)
    worst = sum(row["worst_class_recall"] for row in full) / len(full)
    if accuracy >= 2 * chance and worst > chance:
        return None
    return (
        f"Warning: the network trained on the full data is near chance (accuracy "
        f"{accuracy:.3f}, worst-class recall {worst:.3f}, chance {chance:.3f}): it "
        "underfits, so these comparisons say little. Train longer (--max-epochs) or "
        "raise the learning rate (--lr)."
    )


def to_latex(table, metric, title, note=None):
    """A display table as a booktabs LaTeX table, the best entry of every density in bold."""
    best = best_entries(table, metric)
    body = table.copy()
    for column in body.columns:
        body[column] = [
            f"\\textbf{{{text}}}" if (index, column) in best else text
            for index, text in zip(body.index, body[column])
        ]
    body.index.name = None
    body.columns.name = None
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    caption = (f"{title} (mean over seeds [min, max]) against density; bold: the best mean "
               f"at each density ({direction} is better).")
    if note:
        caption += " " + note
    return body.to_latex(caption=caption, label=f"tab:{metric.replace('_', '-')}",
                         escape=False, column_format="l" + "r" * len(body.columns))


def best_entries(table, metric):
    """``(method, density)`` of the best mean of every density column of a display table."""
    best = set()
    for column in table.columns:
        means = {index: float(text.split()[0]) for index, text in table[column].items()
                 if text and table.loc[index, column] and index not in REFERENCES}
        if len(means) < 2:
            continue
        target = (min if metric in LOWER_IS_BETTER else max)(means.values())
        best.update((index, column) for index, value in means.items() if value == target)
    return best


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
    note = underfit_note(rows)
    paths = []
    for metric, title in metrics_of(rows).items():
        part = summary[summary["metric"] == metric].drop(columns="metric")
        paths.append(_write_csv(part, tables / f"{metric}.csv"))
        table = display_table(summary, metric)
        markdown = to_markdown(table) + "\n" + (f"\n> {note}\n" if note else "")
        paths.append(write_text_atomic(tables / f"{metric}.md", markdown))
        paths.append(write_text_atomic(tables / f"{metric}.tex",
                                       to_latex(table, metric, title, note)))
    for field in ("class_recall", "class_counts"):
        paths.append(_write_csv(summarize_classes(rows, field), tables / f"{field}.csv"))
    for against in REFERENCES_OF_METHODS:
        differences = paired_differences(rows, "worst_class_recall", against)
        if differences.empty:
            continue
        differences = _in_display_order(differences)
        stem = tables / f"worst_class_recall_vs_{against.lower()}"
        paths.append(_write_csv(differences, stem.with_suffix(".csv")))
        header = (f"Worst-class recall minus {against}'s{' own' if against == 'Strategy' else ''}"
                  ", paired by seed: mean difference [95% confidence interval] by density.\n\n")
        paths.append(write_text_atomic(
            stem.with_suffix(".md"), header + to_markdown(display_differences(differences))
            + "\n"))
    return paths


def _write_csv(frame, path):
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)
    return path


def method_style(protocol, strategy_name):
    """Colour, line style and marker of a method, the same in every figure.

    The colour is the strategy's (black for the strategy-free protocols,
    whose lines are then told apart by style), the line style and marker the
    protocol's.
    """
    entry = PROTOCOLS[protocol]
    color = "black" if strategy_name == NO_STRATEGY else strategy(strategy_name).color
    return {"color": color, "linestyle": entry.linestyle, "marker": entry.marker}


def write_figures(rows, out_dir, formats=FIGURE_FORMATS):
    """Write the paper-style figures, by default as PNG, PDF and SVG.

    ``figures/<strategy>.*`` (Figure 2): every protocol of one strategy, with
    the strategy-free ones. ``figures/strategies.*`` (Figure 1): each strategy
    on its own against random pruning. Without any strategy,
    ``figures/protocols.*`` shows the strategy-free protocols.
    ``figures/class_density.*``: at the lowest density, every class's kept
    fraction against its recall under the full-data model: which classes a
    method starves.

    Parameters
    ----------
    rows : iterable of dict
    out_dir : str or Path
    formats : sequence of {"png", "pdf", "svg"}, default=FIGURE_FORMATS
        A figure of another format left by an earlier run is removed, so that
        no figure is older than the results.

    Returns
    -------
    paths : list of Path
        One per figure and format.

    Raises
    ------
    OutputDirectoryError
        If a file cannot be written; the message names it.
    """
    figures = make_directory(Path(out_dir) / "figures")
    save = partial(_save, formats=tuple(formats))
    summary = summarize(rows)
    methods = summary.drop_duplicates("method")[["method", "protocol", "strategy"]]
    methods = methods[~methods["protocol"].isin(REFERENCES)]
    shared = methods[methods["strategy"] == NO_STRATEGY]
    paths = []
    strategies = [name for name in dict.fromkeys(methods["strategy"]) if name != NO_STRATEGY]
    for name in strategies:
        own = methods[methods["strategy"] == name]
        # A module:Class strategy's colon has no place in a file name.
        paths += save(_plot(summary, pd.concat([shared, own]),
                            title=f"{strategy(name).label}: pruning protocols"),
                      figures / name.replace(":", "."))
    plain = methods[methods["protocol"] == "Strategy"]
    if not plain.empty:
        paths += save(_plot(summary, pd.concat([shared[shared["protocol"] == "Random"], plain]),
                            title="Pruning strategies"), figures / "strategies")
    else:
        save(None, figures / "strategies")  # an earlier run's, now out of date
    if not strategies:
        paths += save(_plot(summary, shared, title="Pruning protocols"), figures / "protocols")
    else:
        save(None, figures / "protocols")
    density_figure = _plot_class_density(rows)
    if density_figure is not None:
        paths += save(density_figure, figures / "class_density")
    return paths


def write_report(rows, out_dir, figure_formats=FIGURE_FORMATS):
    """Write every table and figure; returns ``{"tables": [...], "figures": [...]}``."""
    rows = list(rows)
    return {"tables": write_tables(rows, out_dir),
            "figures": write_figures(rows, out_dir, figure_formats)}


def _save(figure, stem, formats):
    """Write ``figure`` as ``stem.<format>``; remove the other formats (all, for ``None``)."""
    paths = []
    for extension in FIGURE_FORMATS:
        path = stem.with_suffix(f".{extension}")
        if figure is None or extension not in formats:
            path.unlink(missing_ok=True)
            continue
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=150, format=extension)
        paths.append(path)
        # The constrained layout is found once: every format has the same
        # sizes in points, and a layout pass costs as much as drawing.
        figure.set_layout_engine("none")
    return paths


def _plot(summary, methods, title):
    """Four panels against density: one line and min/max band per method.

    Lines are shifted sideways by a fraction of the smallest density step,
    so that methods with equal results stay visible.
    """
    panels = {metric: title for metric, title in {**METRICS, **GROUP_METRICS}.items()
              if metric in set(summary["metric"])}
    figure = Figure(figsize=(4.2 * len(panels), 4.2), layout="constrained")
    axes = figure.subplots(1, len(panels))
    densities = sorted(summary.loc[~summary["protocol"].isin(REFERENCES), "density"].unique())
    step = min((b - a for a, b in zip(densities, densities[1:])), default=0.1)
    offsets = (pd.RangeIndex(len(methods)) - (len(methods) - 1) / 2) * 0.04 * step
    for axis, (metric, label) in zip(axes, panels.items()):
        part = summary[summary["metric"] == metric]
        for offset, record in zip(offsets, methods.itertuples(index=False)):
            style = method_style(record.protocol, record.strategy)
            line = part[part["method"] == record.method].sort_values("density")
            x = line["density"] + offset
            axis.plot(x, line["mean"], label=record.method, markersize=5, linewidth=1.5,
                      **style)
            axis.fill_between(x, line["min"], line["max"], color=style["color"],
                              alpha=0.12, linewidth=0)
        for name, linestyle, legend in ((FULL, "-.", "Full dataset"),
                                        (FULL_GROUP_BALANCED, ":", FULL_GROUP_BALANCED)):
            reference = part[part["protocol"] == name]
            if not reference.empty:
                axis.axhline(reference["mean"].mean(), color="0.5", linestyle=linestyle,
                             linewidth=1, label=legend)
        axis.set_xlabel("Density")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6))
    figure.suptitle(title)
    return figure


def _plot_class_density(rows):
    """Kept fraction of every class against its full-data recall, at the lowest density.

    ``None`` without both full-data and pruned rows.
    """
    full = [row for row in rows if row["protocol"] == FULL]
    pruned = [row for row in rows if row["protocol"] not in REFERENCES]
    if not full or not pruned:
        return None
    density = min(row["density"] for row in pruned)
    classes = list(full[0]["class_recall"])
    full_recall = {label: sum(row["class_recall"][label] for row in full) / len(full)
                   for label in classes}
    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    axis = figure.subplots()
    at_density = [row for row in pruned if row["density"] == density]
    for method in dict.fromkeys(row["method"] for row in at_density):
        own = [row for row in at_density if row["method"] == method]
        style = method_style(own[0]["protocol"], own[0]["strategy"])
        kept = [sum(row["class_counts"][label] for row in own) / len(own) for label in classes]
        sizes = [full[0]["class_counts"][label] for label in classes]
        axis.plot([full_recall[label] for label in classes],
                  [count / size for count, size in zip(kept, sizes)],
                  linestyle="none", marker=style["marker"], color=style["color"],
                  markerfacecolor="none" if style["linestyle"] != "-" else style["color"],
                  label=method)
    axis.axhline(density, color="0.5", linestyle="-.", linewidth=1, label="Overall density")
    axis.set_xlabel("Class recall of the full-data model")
    axis.set_ylabel("Fraction of the class kept")
    axis.set_title(f"Which classes pruning starves (density {density:g})")
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize="small")
    return figure


def _method_rank(protocol, strategy_name, strategies):
    if protocol in REFERENCES:
        return (0, REFERENCES.index(protocol), 0)
    if strategy_name == NO_STRATEGY:
        return (1, 0, PROTOCOL_ORDER.index(protocol))
    return (2, strategies.index(strategy_name), PROTOCOL_ORDER.index(protocol))


def _in_display_order(frame):
    # Built-in strategies in the registry's order, then the user's, by name.
    strategies = list(STRATEGIES) + sorted(set(frame["strategy"]) - set(STRATEGIES))
    rank = frame.apply(lambda r: _method_rank(r["protocol"], r["strategy"], strategies), axis=1)
    order = sorted(range(len(frame)), key=lambda i: (rank.iloc[i], frame["density"].iloc[i]))
    return frame.iloc[order].reset_index(drop=True)
