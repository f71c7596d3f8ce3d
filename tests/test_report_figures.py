"""The fairness benchmark's report: std and seeds in tables, figures readable in print."""

import numpy as np
import pandas as pd
import pytest

from benchmarks._registry import PROTOCOLS, is_rule_protocol
from benchmarks._report import (
    SEEDS_COLUMN,
    TABLE_LEGEND,
    _plot,
    _plot_class_density,
    display_table,
    method_style,
    summarize,
    write_tables,
)

WORST = {0: 0.4, 1: 0.5, 2: 0.9}  # Random's worst-class recall at density 0.3, by seed


def cell(protocol, strategy, method, density, seed, worst, counts=None):
    counts = counts or {"cat": 10, "dog": 10, "eel": 10}
    return {"protocol": protocol, "strategy": strategy, "method": method, "density": density,
            "seed": seed, "accuracy": 0.8, "worst_class_recall": worst, "recall_gap": 0.2,
            "recall_std": 0.1, "class_recall": {"cat": 0.9, "dog": 0.5, "eel": 0.7},
            "class_counts": counts}


@pytest.fixture
def rows():
    """Random over 3 seeds (2 at density 0.6), EL2N over one seed, the full data over 3."""
    rows = [cell("Full", "-", "Full", 1.0, seed, 0.6,
                 {"cat": 100, "dog": 50, "eel": 20}) for seed in range(3)]
    rows += [cell("Random", "-", "Random", 0.3, seed, worst,
                  {"cat": 30 + seed, "dog": 15, "eel": 6}) for seed, worst in WORST.items()]
    rows += [cell("Random", "-", "Random", 0.6, seed, 0.5,
                  {"cat": 60, "dog": 30, "eel": 12}) for seed in (0, 1)]
    rows += [cell("Strategy", "el2n", "EL2N", density, 0, 0.3,
                  {"cat": int(100 * density), "dog": 10, "eel": 2}) for density in (0.3, 0.6)]
    return rows


def test_tables_give_std_and_number_of_seeds(rows, tmp_path):
    summary = summarize(rows)
    worst = summary[summary["metric"] == "worst_class_recall"].set_index(["method", "density"])
    assert worst.loc[("Random", 0.3), "std"] == pytest.approx(np.std(list(WORST.values()),
                                                                     ddof=1))
    assert worst.loc[("Random", 0.3), "n_seeds"] == 3
    assert worst.loc[("Random", 0.6), "n_seeds"] == 2
    assert np.isnan(worst.loc[("EL2N", 0.3), "std"])

    table = display_table(summary, "worst_class_recall")
    assert list(table.columns) == ["0.3", "0.6", "1.0", SEEDS_COLUMN]
    assert table.loc["Random", "0.3"] == "0.600 ± 0.265 [0.400, 0.900]"
    assert table.loc["Random", SEEDS_COLUMN] == "2-3"
    # A single seed has neither a spread nor a range.
    assert table.loc["EL2N", "0.3"] == "0.300"
    assert table.loc["EL2N", SEEDS_COLUMN] == "1"
    assert table.loc["Full", SEEDS_COLUMN] == "3"

    write_tables(rows, tmp_path)
    csv = pd.read_csv(tmp_path / "tables" / "worst_class_recall.csv")
    assert list(csv.columns) == ["method", "protocol", "strategy", "density", "mean", "std",
                                 "min", "max", "n_seeds"]
    random = csv[(csv["method"] == "Random") & (csv["density"] == 0.3)].iloc[0]
    assert random["std"] == pytest.approx(0.2645751) and random["n_seeds"] == 3
    markdown = (tmp_path / "tables" / "worst_class_recall.md").read_text()
    header = markdown.splitlines()[0]
    assert header.startswith("| method") and header.rstrip(" |").endswith(SEEDS_COLUMN)
    assert "| 0.600 ± 0.265 [0.400, 0.900] |" in markdown and TABLE_LEGEND in markdown
    latex = (tmp_path / "tables" / "worst_class_recall.tex").read_text()
    assert "0.600 $\\pm$ 0.265 [0.400, 0.900]" in latex and "number of seeds" in latex
    counts = pd.read_csv(tmp_path / "tables" / "class_counts.csv")
    cat = counts[(counts["method"] == "Random") & (counts["density"] == 0.3)
                 & (counts["class"] == "cat")].iloc[0]
    assert cat["mean"] == 31 and cat["std"] == pytest.approx(1.0) and cat["n_seeds"] == 3


def methods_of(summary, names):
    methods = summary.drop_duplicates("method")[["method", "protocol", "strategy"]]
    return methods[methods["method"].isin(names)]


def legend_texts(figure):
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


def test_figure_points_sit_at_the_densities_and_the_legend_explains_the_bands(rows):
    summary = summarize(rows)
    figure = _plot(summary, methods_of(summary, ["Random", "EL2N"]), title="t")
    for axis in figure.axes:
        lines = {line.get_label(): line for line in axis.get_lines()}
        assert list(lines["Random"].get_xdata()) == [0.3, 0.6]  # exactly, no offsets
        assert list(lines["EL2N"].get_xdata()) == [0.3, 0.6]
        assert [tick.get_text() for tick in axis.get_xticklabels()] == ["0.3", "0.6"]
    assert "band: min–max over 1–3 seeds" in legend_texts(figure)
    # Bands of single seeds are flat: nothing to explain.
    figure = _plot(summary, methods_of(summary, ["EL2N"]), title="t")
    assert not [text for text in legend_texts(figure) if text.startswith("band")]


def test_every_protocol_has_its_own_marker_and_line_style_in_print():
    pairs = {name: (entry.marker, str(entry.linestyle)) for name, entry in PROTOCOLS.items()}
    assert len(set(pairs.values())) == len(pairs)
    # Every protocol's marker is its own, so no two lines of a figure share one.
    assert len({marker for marker, _ in pairs.values()}) == len(pairs)
    # A figure of one strategy: every protocol of the paper and the suite's rules.
    names = [name for name, entry in PROTOCOLS.items() if not entry.uses_groups]
    rows = [cell(name, "el2n" if PROTOCOLS[name].uses_strategy else "-",
                 PROTOCOLS[name].label("el2n" if PROTOCOLS[name].uses_strategy else "-"),
                 density, seed, 0.5) for name in names for density in (0.3, 0.6)
            for seed in (0, 1)]
    summary = summarize(rows)
    methods = summary.drop_duplicates("method")[["method", "protocol", "strategy"]]
    assert any(is_rule_protocol(name) for name in methods["protocol"])
    figure = _plot(summary, methods, title="t")
    lines = [line for line in figure.axes[0].get_lines() if line.get_label() in
             set(methods["method"])]
    assert len(lines) == len(methods) == len(names)
    assert len({line.get_marker() for line in lines}) == len(lines)
    styles = {(style["marker"], str(style["linestyle"])) for style in
              (method_style(record.protocol, record.strategy)
               for record in methods.itertuples())}
    assert len(styles) == len(lines)
    # Strategy-free protocols are hollow and black; a strategy's, filled in its colour.
    random = method_style("Random", "-")
    el2n = method_style("Strategy", "el2n")
    assert random["markerfacecolor"] == "white" and el2n["markerfacecolor"] == el2n["color"]


def test_strategies_figure_gives_every_strategy_its_own_marker():
    rows = [cell("Strategy", name, label, density, 0, 0.5) for name, label in
            (("el2n", "EL2N"), ("grand", "GraNd"), ("forgetting", "Forgetting"))
            for density in (0.3, 0.6)]
    rows += [cell("Random", "-", "Random", density, 0, 0.5) for density in (0.3, 0.6)]
    summary = summarize(rows)
    methods = summary.drop_duplicates("method")[["method", "protocol", "strategy"]]
    figure = _plot(summary, methods.assign(by="strategy"), title="t")
    markers = [line.get_marker() for line in figure.axes[0].get_lines()
               if line.get_label() in set(methods["method"])]
    assert len(markers) == len(set(markers)) == 4


def test_class_density_names_the_classes_and_draws_every_density(rows):
    figure = _plot_class_density(rows)
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == ["Random", "EL2N"]
    for axis in panels:
        # Classes by full-data recall, the hardest first.
        assert [tick.get_text() for tick in axis.get_xticklabels()] == ["dog", "eel", "cat"]
        series = [line for line in axis.get_lines() if line.get_label().startswith("density")]
        assert [line.get_label() for line in series] == ["density 0.3", "density 0.6"]
        assert len({(line.get_marker(), tuple(line.get_color())) for line in series}) == 2
        for line in series:
            assert list(line.get_xdata()) == [0, 1, 2]
    random_03 = [line for line in panels[0].get_lines() if line.get_label() == "density 0.3"]
    # Kept fractions, mean over seeds: dog 15/50, eel 6/20, cat 31/100.
    assert list(random_03[0].get_ydata()) == pytest.approx([0.3, 0.3, 0.31])
    assert "dotted: the density (proportional share)" in legend_texts(figure)
