"""Tables and figures of the fairness benchmark, from its finished rows.

Tables give, for every metric, the mean over seeds with its standard
deviation, min, max and number of seeds, per method (protocol and strategy)
and density: tidy numbers as CSV, and a method x density layout as Markdown
and LaTeX. Figures follow the paper's: four panels against density, one line
per method at the exact densities, min-max bands explained in the legend.
Every file is written atomically: a run killed while writing leaves the
previous version.
"""

from functools import partial
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

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
#: The column of a display table that gives the number of seeds.
SEEDS_COLUMN = "n"
#: What the entries of a display table are, under every Markdown table.
TABLE_LEGEND = (f"Entries: mean ± standard deviation [min, max] over seeds; "
                f"{SEEDS_COLUMN}: number of seeds.")
_GROUP = ["method", "protocol", "strategy", "density"]
#: Statistics over seeds, in the order of the CSV columns.
_STATISTICS = {"mean": "mean", "std": "std", "min": "min", "max": "max", "n_seeds": "count"}


def metrics_of(rows):
    """The metrics every row has: :data:`METRICS`, and :data:`GROUP_METRICS` with groups."""
    rows = list(rows)
    metrics = dict(METRICS)
    if rows and all(name in row for row in rows for name in GROUP_METRICS):
        metrics.update(GROUP_METRICS)
    return metrics


def summarize(rows):
    """Mean, standard deviation, min and max over seeds of every metric, per method and density.

    Parameters
    ----------
    rows : iterable of dict
        Rows of ``results.jsonl``.

    Returns
    -------
    pandas.DataFrame
        Columns ``method, protocol, strategy, density, metric, mean, std,
        min, max, n_seeds``, methods in display order. ``std`` is the
        sample standard deviation (``n_seeds - 1`` in the denominator),
        ``NaN`` for a single seed.
    """
    rows = list(rows)
    cells = pd.DataFrame(rows)
    long = cells.melt(id_vars=_GROUP + ["seed"], value_vars=list(metrics_of(rows)),
                      var_name="metric")
    summary = (
        long.groupby(_GROUP + ["metric"], sort=False)["value"]
        .agg(**_STATISTICS)
        .reset_index()
    )
    return _in_display_order(summary)


def summarize_classes(rows, field):
    """Mean, standard deviation, min and max over seeds of a per-class field.

    Per method, density and class.

    Parameters
    ----------
    rows : iterable of dict
    field : {"class_recall", "class_counts"}

    Returns
    -------
    pandas.DataFrame
        Columns ``method, protocol, strategy, density, class, mean, std, min,
        max, n_seeds``, as in :func:`summarize`.
    """
    records = [
        {**{name: row[name] for name in _GROUP}, "class": label, "value": value}
        for row in rows
        for label, value in row[field].items()
    ]
    summary = (
        pd.DataFrame(records)
        .groupby(_GROUP + ["class"], sort=False)["value"]
        .agg(**_STATISTICS)
        .reset_index()
    )
    return _in_display_order(summary)


def display_table(summary, metric, digits=3):
    """One metric as a method x density table of ``"mean ± std [min, max]"`` strings.

    The standard deviation and the brackets are left out of an entry from a
    single seed. The last column, :data:`SEEDS_COLUMN`, gives each method's
    number of seeds: one number, or ``"low-high"`` where its densities have
    different numbers of seeds.
    """
    part = summary[summary["metric"] == metric]

    def entry(record):
        text = f"{record['mean']:.{digits}f}"
        if record["n_seeds"] > 1:
            text += (f" ± {record['std']:.{digits}f}"
                     f" [{record['min']:.{digits}f}, {record['max']:.{digits}f}]")
        return text

    methods = part["method"].unique()
    table = (
        part.assign(entry=part.apply(entry, axis=1))
        .pivot(index="method", columns="density", values="entry")
        .reindex(index=methods, columns=sorted(part["density"].unique()))
        .fillna("")
    )
    table.columns = [repr(round(float(density), 6)) for density in table.columns]
    seeds = part.groupby("method", sort=False)["n_seeds"].agg(["min", "max"])
    table[SEEDS_COLUMN] = [_count_range(*seeds.loc[method]) for method in methods]
    return table


def _count_range(low, high):
    return str(low) if low == high else f"{low}-{high}"


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
        if column == SEEDS_COLUMN:
            continue
        body[column] = [
            f"\\textbf{{{text}}}" if (index, column) in best else text
            for index, text in zip(body.index, body[column].str.replace("±", "$\\pm$"), strict=True)
        ]
    body.index.name = None
    body.columns.name = None
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    caption = (f"{title} (mean $\\pm$ standard deviation over seeds [min, max]; "
               f"{SEEDS_COLUMN}: number of seeds) against density; bold: the best mean "
               f"at each density ({direction} is better).")
    if note:
        caption += " " + note
    return body.to_latex(caption=caption, label=f"tab:{metric.replace('_', '-')}",
                         escape=False, column_format="l" + "r" * len(body.columns))


def best_entries(table, metric):
    """``(method, density)`` of the best mean of every density column of a display table."""
    best = set()
    for column in table.columns.drop(SEEDS_COLUMN, errors="ignore"):
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
        markdown = (to_markdown(table) + f"\n\n{TABLE_LEGEND}\n"
                    + (f"\n> {note}\n" if note else ""))
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


def method_style(protocol, strategy_name, by="protocol"):
    """Colour, line style and marker of a method, the same in every figure.

    The colour is the strategy's (black for the strategy-free protocols),
    the line style the quota's (solid without one, dashed for MetriQ, one
    style per MetriQ rule, shared by the rule's Random and strategy
    protocols) and the marker the protocol's own, so every protocol has its
    own marker and line style and stays apart in greyscale. Markers of the
    strategy-free protocols are hollow.

    Parameters
    ----------
    protocol : str
    strategy_name : str
    by : {"protocol", "strategy"}, default="protocol"
        ``"strategy"``: the strategy's marker instead of the protocol's, for
        the figure of strategies alone, where every line has the same
        protocol.
    """
    entry = PROTOCOLS[protocol]
    free = strategy_name == NO_STRATEGY
    color = "black" if free else strategy(strategy_name).color
    marker = entry.marker if by == "protocol" or free else strategy(strategy_name).marker
    return {"color": color, "linestyle": entry.linestyle, "marker": marker,
            "markerfacecolor": "white" if free else color}


def write_figures(rows, out_dir, formats=FIGURE_FORMATS):
    """Write the paper-style figures, by default as PNG, PDF and SVG.

    ``figures/<strategy>.*`` (Figure 2): every protocol of one strategy, with
    the strategy-free ones. ``figures/strategies.*`` (Figure 1): each strategy
    on its own against random pruning. Without any strategy,
    ``figures/protocols.*`` shows the strategy-free protocols.
    ``figures/class_density.*``: one panel per method, every class's kept
    fraction at every density, classes in the order of their recall under
    the full-data model: which classes a method starves.

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
    methods = methods[~methods["protocol"].isin(REFERENCES)].assign(by="protocol")
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
        plain = plain.assign(by="strategy")
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
    """Four panels against density: one line and min-max band per method.

    Points sit at their densities exactly; methods with equal results are
    told apart by their markers and line styles (:func:`method_style`, of
    the ``by`` column of ``methods`` where it has one). The legend says what
    the bands are.
    """
    if "by" not in methods:
        methods = methods.assign(by="protocol")
    panels = {metric: title for metric, title in {**METRICS, **GROUP_METRICS}.items()
              if metric in set(summary["metric"])}
    figure = Figure(figsize=(4.2 * len(panels), 4.4), layout="constrained")
    axes = figure.subplots(1, len(panels))
    plotted = summary[summary["method"].isin(methods["method"])]
    densities = sorted(plotted["density"].unique())
    for axis, (metric, label) in zip(axes, panels.items(), strict=True):
        part = summary[summary["metric"] == metric]
        for record in methods.itertuples(index=False):
            style = method_style(record.protocol, record.strategy, record.by)
            line = part[part["method"] == record.method].sort_values("density")
            axis.plot(line["density"], line["mean"], label=record.method, markersize=6,
                      linewidth=1.4, markeredgewidth=1.1, **style)
            axis.fill_between(line["density"], line["min"], line["max"],
                              color=style["color"], alpha=_BAND_ALPHA, linewidth=0)
        for name, linestyle, legend in ((FULL, "-.", "Full dataset"),
                                        (FULL_GROUP_BALANCED, ":", FULL_GROUP_BALANCED)):
            reference = part[part["protocol"] == name]
            if not reference.empty:
                axis.axhline(reference["mean"].mean(), color="0.45", linestyle=linestyle,
                             linewidth=1, label=legend)
        axis.set_xticks(densities, [f"{density:g}" for density in densities])
        axis.set_xlabel("Density")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    band = band_label(plotted["n_seeds"])
    if band is not None:
        handles.append(Patch(facecolor="0.5", alpha=2.5 * _BAND_ALPHA, linewidth=0))
        labels.append(band)
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
                  fontsize="small")
    figure.suptitle(title)
    return figure


#: Opacity of the min-max bands: light, so that overlapping bands stay readable.
_BAND_ALPHA = 0.1


def band_label(n_seeds):
    """The legend entry of the bands: ``"band: min–max over 3 seeds"``.

    ``None`` when every point comes from a single seed (no band is drawn).
    """
    low, high = int(min(n_seeds)), int(max(n_seeds))
    if high < 2:
        return None
    return f"band: min–max over {_count_range(low, high).replace('-', '–')} seeds"


def _plot_class_density(rows):
    """Every class's kept fraction at every density, one panel per method.

    Classes run along the x axis by their recall under the full-data
    model (the hardest first); every density is one series, with the
    density itself as a thin line of the same style: a point below it is a
    class the method starves. ``None`` without both full-data and pruned
    rows.
    """
    full = [row for row in rows if row["protocol"] == FULL]
    pruned = [row for row in rows if row["protocol"] not in REFERENCES]
    if not full or not pruned:
        return None
    kept = summarize_classes(pruned, "class_counts")
    full_recall = summarize_classes(full, "class_recall").groupby("class")["mean"].mean()
    sizes = summarize_classes(full, "class_counts").groupby("class")["mean"].mean()
    classes = sorted(full_recall.index, key=lambda label: (full_recall[label], label))
    kept = kept.assign(fraction=kept["mean"] / kept["class"].map(sizes))
    methods = list(dict.fromkeys(kept["method"]))
    densities = sorted(kept["density"].unique())
    width = max(3.6, 0.3 * len(classes))
    n_columns = max(1, min(len(methods), 4, int(16 // width)))
    n_rows = -(-len(methods) // n_columns)
    figure = Figure(figsize=(width * n_columns, 3.0 * n_rows + 1.4), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, sharex=True, sharey=True, squeeze=False).ravel()
    colors = matplotlib.colormaps["viridis"](
        [0.85 * i / max(len(densities) - 1, 1) for i in range(len(densities))])
    positions = range(len(classes))
    for axis, method in zip(axes, methods, strict=False):
        own = kept[kept["method"] == method]
        for density, color, marker, linestyle in zip(
                densities, colors, _DENSITY_MARKERS * 2, _DENSITY_LINESTYLES * 2, strict=False):
            fraction = own[own["density"] == density].set_index("class")["fraction"]
            axis.axhline(density, color=color, linestyle=":", linewidth=0.8)
            axis.plot(positions, fraction.reindex(classes), color=color, marker=marker,
                      linestyle=linestyle, linewidth=1, markersize=5,
                      label=f"density {density:g}")
        axis.set_title(method, fontsize="medium")
        axis.grid(alpha=0.3)
    for axis in axes[len(methods):]:
        axis.set_visible(False)
    for axis in axes[:len(methods)]:
        axis.set_xticks(positions, classes, rotation=60, ha="right",
                        rotation_mode="anchor", fontsize="small")
        axis.tick_params(axis="x", labelbottom=True)
    for axis in axes[::n_columns]:
        axis.set_ylabel("Fraction of the class kept")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.4", linestyle=":", linewidth=0.8))
    labels.append("dotted: the density (proportional share)")
    figure.legend(handles, labels, loc="outside lower center",
                  ncols=min(len(labels), 6), fontsize="small")
    figure.suptitle("Which classes pruning starves: classes by full-data recall, "
                    "lowest first (mean over seeds)")
    return figure


_DENSITY_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Never dotted: a dotted line is a density's proportional share.
_DENSITY_LINESTYLES = ("-", "--", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (9, 3)),
                       (0, (1, 1, 4, 1)), (0, (6, 2)))


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
