"""What a pruning pipeline costs, against training the network once on all the data.

``python -m benchmarks.pipeline_cost`` fits, for every strategy, with and
without MetriQ (the default hold-out, and an explicit validation set), a
``make_pipeline(pruner, net)`` on a small real problem (4,000 Fashion-MNIST
images and the demo's MLP, or digits without Fashion-MNIST), and reports:

- ``scoring``: the pruner's ``fit_resample`` (query trainings, MetriQ's
  measurement, selection) divided by one plain training of the same network
  on all the rows;
- ``final``: training the final network on the kept rows (the pipeline's
  second step, trained for the paper's corrected E (0.5 + 0.5 f) / f epochs),
  divided by the same plain training;
- ``total``: their sum, what the pipeline costs in units of one training;
- ``memory``: the peak resident memory the fit added, divided by the size of
  the training inputs.

Every configuration runs in a fresh process (so that its peak memory is its
own), in turn with a plain training in another fresh process; the ratios
are medians over ``--repeats`` such pairs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

#: Strategy name -> (pruner class name, its parameters beyond the network).
STRATEGIES = {
    "random": ("RandomPruner", {}),
    "grand": ("GraNdPruner", {"n_runs": 1}),
    "el2n": ("EL2NPruner", {"n_runs": 1}),
    "forgetting": ("ForgettingPruner", {}),
    "dynunc": ("DynamicUncertaintyPruner", {"window": 5}),
    "coreset": ("CoreSetPruner", {}),
    "prototype": ("PrototypePruner", {}),
    "uncertainty": ("UncertaintyPruner", {}),
    "aum": ("AUMPruner", {}),
}
#: How MetriQ measures: not at all, its default hold-out, half of the test set
#: read off the strategy's own query networks (the default), or half of the test
#: set with networks of its own (``share_networks=False``, skprune before 0.2).
QUOTAS = ("none", "metriq-holdout", "metriq-validation", "metriq-validation-own")
DENSITY = 0.5


def load_problem(dataset="fashion-mnist"):
    """Training rows, a validation set and the network's recipe of the measurement."""
    from skprune.datasets import DatasetNotFoundError, load_dataset

    try:
        if dataset != "fashion-mnist":
            raise DatasetNotFoundError(dataset)
        data = load_dataset("fashion-mnist")
        recipe, n_train = "fashion-mnist-mlp", 4000
    except DatasetNotFoundError:
        data = load_dataset("digits")
        recipe, n_train = "digits-mlp", None
    rng = np.random.RandomState(0)
    rows = np.arange(len(data.y_train)) if n_train is None else np.sort(
        rng.choice(len(data.y_train), n_train, replace=False))
    X, y = data.X_train[rows], data.y_train[rows]
    validation = np.sort(rng.choice(len(data.y_test), len(data.y_test) // 2, replace=False))
    return X, y, (data.X_test[validation], data.y_test[validation]), recipe, data.name


def measure(strategy, quota, dataset="fashion-mnist"):
    """One configuration, in this process: seconds of each stage and peak memory.

    ``strategy="plain"`` trains the network once on all the rows instead.
    """
    import torch

    import skprune
    from skprune import MetriQ
    from skprune.models import make_net

    torch.set_num_threads(1)
    X, y, validation, recipe, _ = load_problem(dataset)
    n_classes = np.unique(y).size

    def net(epochs=None):
        params = {"device": "cpu"}
        if epochs is not None:
            params["max_epochs"] = epochs
        return make_net("mlp", n_classes, recipe, input_shape=X.shape[1:], **params)

    if strategy == "plain":
        start = time.perf_counter()
        torch.manual_seed(0)
        net().fit(X, y)
        return {"plain": time.perf_counter() - start}
    name, params = STRATEGIES[strategy]
    quota_param = {"none": None, "metriq-holdout": "metriq",
                   "metriq-validation": MetriQ(validation=validation),
                   "metriq-validation-own": MetriQ(validation=validation,
                                                   share_networks=False)}[quota]
    pruner = getattr(skprune, name)(net(), density=DENSITY, quota=quota_param,
                                    random_state=0, **params)
    epochs = skprune.corrected_epochs(net().max_epochs, DENSITY)
    with _PeakMemory() as memory:
        start = time.perf_counter()
        X_kept, y_kept = pruner.fit_resample(X, y)
        scoring = time.perf_counter() - start
        start = time.perf_counter()
        torch.manual_seed(0)
        net(epochs).fit(X_kept, y_kept)
        final = time.perf_counter() - start
    return {"scoring": scoring, "final": final, "memory": memory.added / X.nbytes}


class _PeakMemory:
    """The most resident memory a block adds, sampled every 5 ms from /proc (Linux)."""

    def __enter__(self):
        self.start = self.peak = _resident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _resident())

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _resident())
        self.added = max(0, self.peak - self.start)


def _resident():
    """Resident memory of this process now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run(strategies, quotas, repeats, dataset="fashion-mnist"):
    """Median ratios of every configuration, each repeat in its own process."""
    records = []
    for strategy in strategies:
        for quota in quotas:
            runs = []
            for _ in range(repeats):
                # The plain training and the pipeline in turn, each in a fresh process.
                plain = _one("plain", "none", dataset)["plain"]
                runs.append({**_one(strategy, quota, dataset), "plain": plain})
            ratio = {stage: statistics.median(run[stage] / run["plain"] for run in runs)
                     for stage in ("scoring", "final")}
            records.append({
                "strategy": strategy, "quota": quota, **ratio,
                "total": ratio["scoring"] + ratio["final"],
                "memory": statistics.median(run["memory"] for run in runs),
                "plain_seconds": statistics.median(run["plain"] for run in runs),
            })
            print(json.dumps(records[-1]), file=sys.stderr, flush=True)
    return records


def _one(strategy, quota, dataset):
    output = subprocess.run([sys.executable, "-m", "benchmarks.pipeline_cost", "--one",
                             strategy, quota, "--dataset", dataset],
                            capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def to_markdown(records):
    """The table of the scaling page: one row per strategy, one column group per quota."""
    import pandas as pd

    frame = pd.DataFrame(records)
    frame["entry"] = frame.apply(
        lambda r: f"{r['scoring']:.2f} + {r['final']:.2f} = {r['total']:.2f} "
                  f"({r['memory']:.1f}x)", axis=1)
    table = frame.pivot(index="strategy", columns="quota", values="entry")
    table = table.reindex(index=list(dict.fromkeys(frame["strategy"])),
                          columns=[quota for quota in QUOTAS if quota in table.columns])
    return table.to_markdown()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_cost",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", choices=list(STRATEGIES),
                        default=list(STRATEGIES))
    parser.add_argument("--quotas", nargs="+", choices=QUOTAS, default=list(QUOTAS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", choices=("fashion-mnist", "digits"),
                        default="fashion-mnist",
                        help="4,000 Fashion-MNIST images (digits where it is missing), or digits")
    parser.add_argument("--one", nargs=2, metavar=("STRATEGY", "QUOTA"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(*args.one, args.dataset)))
        return 0
    records = run(args.strategies, args.quotas, args.repeats, args.dataset)
    print("Pipeline cost in units of one plain training (scoring + final = total), and peak "
          "memory added over the training inputs' size; 1 torch thread, density "
          f"{DENSITY}, medians of {args.repeats} processes:\n")
    print(to_markdown(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
