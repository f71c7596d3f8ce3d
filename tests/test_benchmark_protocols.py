"""The benchmark's registry, DRoP-faithful protocol, own data and models, and reports."""

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from benchmarks import fairness
from benchmarks._cells import cell_inputs
from benchmarks._config import BenchmarkConfig, corrected_epochs, parse_strategy_params
from benchmarks._data import split_test_set
from benchmarks._registry import PROTOCOLS, STRATEGIES
from benchmarks._report import best_entries, display_table, summarize, to_latex, underfit_note
from skprune import MetriQ, RandomPruner, StrategyQ

SMALL = dict(dataset="digits", model="mlp", recipe="digits-mlp",
             net_params={"max_epochs": 10, "module__hidden": [16]}, densities=[0.5],
             seeds=[0])


def factory(**settings):
    config = BenchmarkConfig(**{**SMALL, **settings})
    return cell_inputs(config.to_dict(), 0)[2]


def test_every_registered_strategy_and_protocol_builds_a_pruner():
    built = factory(strategies=list(STRATEGIES))
    for protocol in PROTOCOLS:
        for name in STRATEGIES:
            if name == "random":
                continue
            pruner = built.pruner(protocol, name if PROTOCOLS[protocol].uses_strategy else "-",
                                  density=0.5, seed=0, memory=None)
            pruner._validate_params()


def test_drop_protocol_configures_query_networks_as_the_authors():
    drop = factory(strategies=["el2n", "forgetting"], query_protocol="drop")
    el2n = drop.pruner("Strategy+MetriQ", "el2n", density=0.5, seed=0, memory=None)
    # 10% of the schedule, floored, with the schedule compressed into it.
    assert el2n.estimator.max_epochs == 1 and el2n.epochs == 1 and el2n.n_runs == 5
    assert el2n.estimator.augment is None
    quota = el2n.quota
    # Recall from EL2N's own five query networks, at their best epochs.
    assert (quota.epoch, quota.error_rate, quota.estimator) == ("best", "observed", None)
    assert quota.share_networks
    forgetting = drop.pruner("Strategy+MetriQ", "forgetting", density=0.5, seed=0,
                             memory=None)
    assert forgetting.estimator.max_epochs == 10 and forgetting.n_runs == 1
    assert forgetting.quota.estimator is None
    assert forgetting.never_learned == "zero"
    random_metriq = drop.pruner("Random+MetriQ", "-", density=0.5, seed=0, memory=None)
    # DRoP's argparse defaults for the Random scorer: 16 epochs, constant rate.
    query = random_metriq.quota.estimator
    assert query.max_epochs == 16 and random_metriq.quota.n_runs == 1
    assert query.get_params(deep=False)["callbacks__lr_schedule__fractions"] == ()
    # A strategy's own parameters win over the protocol's conventions.
    own = factory(strategies=["forgetting"], query_protocol="drop",
                  strategy_params={"forgetting": {"never_learned": "presentations"}})
    assert own.pruner("Strategy", "forgetting", density=0.5, seed=0,
                      memory=None).never_learned == "presentations"

    default = factory(strategies=["el2n", "forgetting"])
    el2n = default.pruner("Strategy+MetriQ", "el2n", density=0.5, seed=0, memory=None)
    assert el2n.estimator.max_epochs == 10 and el2n.epochs is None
    assert el2n.quota.get_params()["error_rate"] == MetriQ().error_rate
    assert default.pruner("Strategy", "forgetting", density=0.5, seed=0,
                          memory=None).never_learned == "presentations"


def test_random_strategyq_and_random_metriq_protocols():
    built = factory(strategies=["el2n"])
    strategyq = built.pruner("Random+StrategyQ", "el2n", density=0.5, seed=3, memory="m")
    assert isinstance(strategyq, RandomPruner) and isinstance(strategyq.quota, StrategyQ)
    assert strategyq.quota.pruner.random_state == 3 and strategyq.quota.pruner.memory == "m"
    assert built.pruner("Full", "-", density=1.0, seed=0, memory=None) is None


def test_fidelity_switches():
    assert corrected_epochs(160, 0.3) == round(160 * 0.65 / 0.3) == 347
    assert corrected_epochs(160, 0.3, "floor") == 346
    assert corrected_epochs(160, 0.5, "floor") == 240
    y = np.repeat([0, 1, 2], [4, 5, 6])
    validation, evaluation = split_test_set(y, seed=7, how="ordered")
    np.testing.assert_array_equal(validation, [0, 1, 4, 5, 9, 10, 11])
    assert set(validation) | set(evaluation) == set(range(15))
    again, _ = split_test_set(y, seed=8, how="ordered")
    np.testing.assert_array_equal(again, validation)
    assert not np.array_equal(split_test_set(y, 7)[0], split_test_set(y, 8)[0])


def test_strategy_params_parsing():
    assert parse_strategy_params(["el2n:n_runs=3", "dynunc:window=5", "el2n:selection=easiest",
                                  "mod:Pruner:alpha=0.5"]) == {
        "el2n": {"n_runs": 3, "selection": "easiest"}, "dynunc": {"window": 5},
        "mod:Pruner": {"alpha": 0.5}}


@pytest.mark.parametrize("argv, message", [
    (["--strategies", "dynunc", "--epochs", "3"], r"DynUnc: DynamicUncertaintyPruner\(window=10"),
    (["--strategy-params", "el2n:n_runs=0"], "EL2N: The 'n_runs' parameter"),
    (["--strategy-params", "el2n:colour=red"], "EL2N:.*colour"),
    (["--strategy-params", "forgetting:n_runs=2"], "not among the run's strategies"),
    (["--strategies", "os:path"], "is not a skprune pruner"),
    (["--model", "no_such_module:make"], "cannot import module 'no_such_module'"),
    (["--dataset", "missing.npz"], "missing.npz: no such file"),
])
def test_every_option_is_checked_before_the_first_cell(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    try:
        status = fairness.main(["--preset", "smoke", "--out", str(out), "--no-progress",
                                "--figure-formats", "png",
                                *argv])
    except SystemExit as exit_info:  # usage errors, from argparse
        status = exit_info.code
    assert status in (1, 2)
    error = capsys.readouterr().err
    assert re.search(message, error), error
    assert not (out / "results.jsonl").exists() or not (out / "results.jsonl").read_text()


OWN_MODEL = textwrap.dedent("""
    import torch
    from skorch import NeuralNetClassifier


    class Small(torch.nn.Module):
        def __init__(self, n_features=64, n_classes=10):
            super().__init__()
            self.layers = torch.nn.Sequential(
                torch.nn.Flatten(), torch.nn.Linear(n_features, 24), torch.nn.ReLU(),
                torch.nn.Linear(24, n_classes))

        def forward(self, X):
            return self.layers(X)


    def make(n_classes, input_shape):
        n_features = 1
        for size in input_shape:
            n_features *= size
        return NeuralNetClassifier(
            Small, module__n_features=n_features, module__n_classes=n_classes,
            criterion=torch.nn.CrossEntropyLoss, lr=0.3, max_epochs=4, batch_size=64,
            train_split=None, verbose=0)


    def data():
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        X = (X / 16).astype("float32")
        return X[:1200], y[:1200], X[1200:], y[1200:]
""")


def test_own_npz_data_and_module_function_model(tmp_path, monkeypatch, capsys):
    (tmp_path / "own_model.py").write_text(OWN_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    X, y = load_digits(return_X_y=True)
    names = np.array([f"digit {k}" for k in range(10)])
    np.savez(tmp_path / "digits.npz", X_train=(X[:1200] / 16), y_train=y[:1200],
             X_test=(X[1200:] / 16), y_test=y[1200:], class_names=names)
    common = ["--strategies", "el2n", "--strategy-params", "el2n:n_runs=1",
              "--protocols", "Random", "Strategy", "--densities", "0.5", "--seeds", "0",
              "--no-progress", "--figure-formats", "png", "--export-scores", "--lr", "0.2",
              "--batch-size", "32"]
    for dataset, out in ((str(tmp_path / "digits.npz"), tmp_path / "npz"),
                         ("own_model:data", tmp_path / "function")):
        status = fairness.main(["--dataset", dataset, "--model", "own_model:make",
                                "--out", str(out), *common])
        assert status == 0, capsys.readouterr().err
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert {row["method"] for row in rows} == {"Full", "Random", "EL2N"}
        settings = json.loads((out / "config.json").read_text())["config"]
        assert settings["net_params"] == {"lr": 0.2, "batch_size": 32}
        scores = pd.read_csv(out / "scores" / "el2n-seed0.csv")
        assert list(scores.columns) == ["row", "label", "score", "run_0"]
        assert len(scores) == 1200
    assert "digit 3" in rows[0]["class_recall"] or "3" in rows[0]["class_recall"]
    # The same path with other content holds other results: no resume into
    # the rows of the old file.
    np.savez(tmp_path / "digits.npz", X_train=(X[:600] / 16), y_train=y[:600],
             X_test=(X[1200:] / 16), y_test=y[1200:], class_names=names)
    status = fairness.main(["--dataset", str(tmp_path / "digits.npz"), "--model",
                            "own_model:make", "--out", str(tmp_path / "npz"), *common])
    assert status == 1
    assert "different configuration" in capsys.readouterr().err


def test_drop_protocol_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "drop"
    status = fairness.main(["--preset", "smoke", "--query-protocol", "drop", "--test-split",
                            "ordered", "--epochs-rounding", "floor", "--densities", "0.5",
                            "--strategy-params", "el2n:n_runs=2", "--out", str(out),
                            "--no-progress", "--figure-formats", "png"])
    assert status == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {row["method"] for row in rows} >= {"EL2N+MetriQ", "Random+MetriQ"}
    settings = json.loads((out / "config.json").read_text())["result_settings"]
    assert settings["query_protocol"] == "drop" and settings["epochs_rounding"] == "floor"


def rows_of(full_accuracy, worst):
    base = {"strategy": "-", "seed": 0, "recall_gap": 0.1, "recall_std": 0.1, "n_classes": 10,
            "class_recall": {str(k): worst for k in range(10)}}
    return [
        {**base, "protocol": "Full", "method": "Full", "density": 1.0,
         "accuracy": full_accuracy, "worst_class_recall": worst},
        {**base, "protocol": "Random", "method": "Random", "density": 0.5, "accuracy": 0.5,
         "worst_class_recall": 0.4},
    ]


def test_an_underfit_full_model_is_flagged_in_the_tables():
    assert underfit_note(rows_of(0.9, 0.8)) is None
    note = underfit_note(rows_of(0.12, 0.0))
    assert "near chance" in note and "--max-epochs" in note


def test_latex_uses_booktabs_bolds_the_best_and_has_one_header_row():
    rows = [
        {"protocol": p, "strategy": "-", "method": p, "density": d, "seed": s,
         "accuracy": a + 0.01 * s, "worst_class_recall": w, "recall_gap": g, "recall_std": 0.1}
        for p, a, w, g in (("Random", 0.8, 0.5, 0.3), ("Random+MetriQ", 0.7, 0.6, 0.2))
        for d in (0.3, 0.6) for s in (0, 1)
    ]
    summary = summarize(rows)
    table = display_table(summary, "recall_gap")
    assert best_entries(table, "recall_gap") == {("Random+MetriQ", "0.3"),
                                                 ("Random+MetriQ", "0.6")}
    latex = to_latex(table, "recall_gap", "Gap")
    assert "\\toprule" in latex and "\\midrule" in latex and "\\bottomrule" in latex
    header = latex.split("\\toprule")[1].split("\\midrule")[0].strip().splitlines()
    assert len(header) == 1 and "method" not in header[0]
    assert "\\textbf{0.200 $\\pm$ 0.000 [0.200, 0.200]}" in latex
    assert "& 2 \\\\\n\\bottomrule" in latex  # the seeds column, never bold
    best = best_entries(display_table(summary, "accuracy"), "accuracy")
    assert best == {("Random", "0.3"), ("Random", "0.6")}


def test_figures_come_in_three_formats_with_one_style_per_method(tmp_path):
    from matplotlib.figure import Figure

    from benchmarks._report import _save, method_style, write_figures

    run = Path(fairness.__file__).parent
    assert run.name == "benchmarks"
    assert method_style("Strategy", "el2n")["color"] == method_style(
        "Strategy+MetriQ", "el2n")["color"] == STRATEGIES["el2n"].color
    assert method_style("Strategy", "el2n")["linestyle"] != method_style(
        "Strategy+MetriQ", "el2n")["linestyle"]
    assert method_style("Random", "-")["linestyle"] != method_style(
        "Random+MetriQ", "-")["linestyle"]
    rows = [
        {"protocol": p, "strategy": st, "method": m, "density": d, "seed": 0,
         "accuracy": 0.8, "worst_class_recall": 0.5, "recall_gap": 0.2, "recall_std": 0.1,
         "class_recall": {"a": 0.5, "b": 0.9}, "class_counts": {"a": int(10 * d), "b": 5}}
        for p, st, m in (("Full", "-", "Full"), ("Random", "-", "Random"),
                         ("Strategy", "el2n", "EL2N"), ("Strategy+MetriQ", "el2n", "EL2N+MetriQ"))
        for d in ((1.0,) if p == "Full" else (0.3, 0.6))
    ]
    paths = write_figures(rows, tmp_path)
    names = {path.name for path in paths}
    for stem in ("el2n", "strategies", "class_density"):
        assert {f"{stem}.png", f"{stem}.pdf", f"{stem}.svg"} <= names
    assert (tmp_path / "figures" / "el2n.pdf").read_bytes()[:4] == b"%PDF"
    # One format only: the others, older than these results, are removed.
    paths = _save(Figure(figsize=(1, 1)), tmp_path / "figures" / "el2n", formats=("png",))
    assert [path.name for path in paths] == ["el2n.png"]
    assert {path.name for path in (tmp_path / "figures").glob("el2n.*")} == {"el2n.png"}



def test_figures_draw_both_references_as_lines_under_the_panel_titles():
    from benchmarks._report import METRICS, _plot

    rows = [
        {"protocol": p, "strategy": "-", "method": p, "density": d, "seed": 0,
         "accuracy": a, "worst_class_recall": 0.5, "recall_gap": 0.2, "recall_std": 0.1}
        for p, a in (("Full", 0.8), ("Full, group-balanced", 0.7), ("SUBG", 0.6))
        for d in ((1.0,) if p.startswith("Full") else (0.3, 0.6))
    ]
    summary = summarize(rows)
    methods = summary.drop_duplicates("method")[["method", "protocol", "strategy"]]
    figure = _plot(summary, methods[methods["protocol"] == "SUBG"], title="t")
    assert [axis.get_title() for axis in figure.axes] == list(METRICS.values())
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert lines["Full dataset"].get_ydata()[0] == 0.8
    assert lines["Full, group-balanced"].get_ydata()[0] == 0.7


GROUPED_DATA = textwrap.dedent("""
    import numpy as np
    from sklearn.datasets import load_digits


    def data():
        X, y = load_digits(return_X_y=True)
        X = (X / 16).astype("float32")
        attribute = (X[:, 20] > 0.5).astype(int)
        groups = y * 2 + attribute
        X = X.reshape(-1, 1, 8, 8)
        return {"X_train": X[:1200], "y_train": y[:1200], "X_test": X[1200:],
                "y_test": y[1200:], "groups_train": groups[:1200],
                "groups_test": groups[1200:]}
""")


def test_group_protocols_report_worst_group_accuracy(tmp_path, monkeypatch, capsys):
    (tmp_path / "grouped_data.py").write_text(GROUPED_DATA)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "groups"
    status = fairness.main([
        "--dataset", "grouped_data:data", "--model", "mlp", "--recipe", "digits-mlp",
        "--epochs", "4", "--strategies", "el2n", "--strategy-params", "el2n:n_runs=1",
        "--protocols", "Random+MetriQ", "Random+GroupMetriQ", "Strategy+GroupMetriQ", "SUBG",
        "--densities", "0.1", "0.5", "--seeds", "0", "--out", str(out), "--no-progress",
        "--figure-formats", "png"])
    assert status == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by_method = {(row["method"], row["density"]): row for row in rows}
    assert {method for method, _ in by_method} == {
        "Full", "Full, group-balanced", "Random+MetriQ", "Random+GroupMetriQ",
        "EL2N+GroupMetriQ", "SUBG"}
    # SUBG: one count for every group where the smallest allows it (120
    # rows at 0.1: 6 or 7 per group, from rounding), the small groups whole above.
    smallest = min(by_method["Full", 1.0]["group_counts"].values())
    subg = by_method["SUBG", 0.1]["group_counts"]
    assert smallest >= 7 and max(subg.values()) - min(subg.values()) <= 1
    dense = by_method["SUBG", 0.5]["group_counts"]
    full_counts = by_method["Full", 1.0]["group_counts"]
    assert min(dense.values()) == smallest and max(dense.values()) < max(full_counts.values())
    # The group-balanced reference trains on every row.
    assert by_method["Full, group-balanced", 1.0]["group_counts"] == full_counts
    by_method = {method: row for (method, density), row in by_method.items()
                 if density in (0.5, 1.0)}
    for row in rows:
        assert row["worst_group_accuracy"] == min(row["group_recall"].values())
        assert sum(row["group_counts"].values()) == row["n_kept"]
    # Group MetriQ measured group accuracy; class MetriQ, class recall.
    assert len(by_method["Random+GroupMetriQ"]["validation_group_recall"]) > 10
    assert by_method["Random+GroupMetriQ"]["validation_class_recall"] is None
    assert len(by_method["Random+MetriQ"]["validation_class_recall"]) == 10
    assert (out / "tables" / "worst_group_accuracy.md").exists()
    assert "Worst-group accuracy" in capsys.readouterr().out


def test_group_balanced_reference_draws_every_group_equally_often():
    from benchmarks._cells import final_network
    from benchmarks._config import Cell

    built = factory(protocols=["Random"])
    groups = np.repeat([0, 1, 2], [700, 200, 100])
    plain = final_network(built, Cell("Full", "-", 1.0, 0), groups)
    assert plain.get_params(deep=False).get("iterator_train__sampler") is None
    net = final_network(built, Cell("Full, group-balanced", "-", 1.0, 0), groups)
    sampler = net.get_params(deep=False)["iterator_train__sampler"]
    assert net.iterator_train__shuffle is False and sampler.num_samples == 1000
    assert sampler.replacement
    torch.manual_seed(0)
    drawn = np.bincount(groups[list(sampler)], minlength=3)
    assert np.all(np.abs(drawn - 1000 / 3) < 60), drawn
    assert net.max_epochs == built.net.max_epochs


def test_group_protocols_need_data_with_groups(tmp_path, capsys):
    status = fairness.main(["--preset", "smoke", "--protocols", "Random+GroupMetriQ",
                            "--out", str(tmp_path / "x"), "--no-progress",
                            "--figure-formats", "png"])
    assert status == 1
    assert "has no groups" in capsys.readouterr().err
