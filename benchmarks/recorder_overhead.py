"""Cost of recording training dynamics, relative to plain skorch training.

Two cases, each timed side by side in one run, repeats interleaved (the
order within a round alternates) after a warm-up; medians (and minima) of
CPU time (the process's own, single threaded by default: steadier on a
shared machine) and of wall-clock time are compared.

``recording``
    The same skorch MLP (784-256-10 on Fashion-MNIST, or 64-256-10 on
    scikit-learn's digits where Fashion-MNIST is absent) on the same data
    for the same epochs, with and without a
    :class:`~skprune.callbacks.TrainingDynamicsRecorder` (and the
    :class:`~skprune.callbacks.PositionBatchSampler` that tells it which
    samples each batch holds). Both nets shuffle, use ``train_split=None``
    and the same batch size. Target: at most 1.02 for ``record="train"``,
    which reads the training forward pass. The CPU time spent inside the
    recorder's hooks is printed too. ``record="eval"`` adds a forward pass
    per epoch and is timed, for comparison, only with ``--eval``.
``overhead``
    Where per-batch Python work is everything: a tiny MLP (32-32-10) on
    20,000 synthetic rows, batch size 128. A whole
    ``ForgettingPruner(net, random_state=seed).fit(X, y)`` (query training
    with its recorder and monitor, scoring, selection; a new seed every
    repeat, so nothing comes from the cache) against ``net.fit(X, y)``,
    skorch's own fit of the same net, and a plain PyTorch loop (a shuffling
    ``DataLoader``) for reference. The training alone (``on_train_begin``
    to ``on_train_end``, where the per-batch path runs) is timed too.
    Target: at most 1.05.

Run: ``python -m benchmarks.recorder_overhead [--case {recording,overhead,both}]
[--n-samples 60000] [--epochs 2] [--batch-size 128] [--repeats 21] [--threads 1]
[--eval] [--tiny-rows 20000] [--tiny-epochs 3]``.
"""

import argparse
import functools
import os
import statistics
import time

import numpy as np
import torch
from sklearn.base import clone
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback

from skprune import ForgettingPruner
from skprune.callbacks import PositionBatchSampler, TrainingDynamicsRecorder
from skprune.datasets import load_dataset
from skprune.models import MLP


def load_data(n_samples):
    """Fashion-MNIST training images as float32 rows in [0, 1], else digits."""
    try:
        data = load_dataset("fashion-mnist")
        name = "Fashion-MNIST"
    except FileNotFoundError:
        data = load_dataset("digits")
        name = "digits (Fashion-MNIST not found)"
    X = data.X_train[:n_samples].reshape(min(n_samples, len(data.X_train)), -1)
    return X, data.y_train[:n_samples].astype(np.int64), name


class TimedRecorder(TrainingDynamicsRecorder):
    """The recorder, adding up the CPU time spent in its hooks."""

    def initialize(self):
        self.seconds_ = 0.0
        return super().initialize()

    def timed(self, hook, *args, **kwargs):
        start = time.process_time()
        getattr(super(), hook)(*args, **kwargs)
        self.seconds_ += time.process_time() - start

    def on_train_begin(self, net, **kwargs):
        self.timed("on_train_begin", net, **kwargs)

    def on_epoch_begin(self, net, **kwargs):
        self.timed("on_epoch_begin", net, **kwargs)

    def on_batch_end(self, net, **kwargs):
        self.timed("on_batch_end", net, **kwargs)

    def on_epoch_end(self, net, **kwargs):
        self.timed("on_epoch_end", net, **kwargs)

    def on_train_end(self, net, **kwargs):
        self.timed("on_train_end", net, **kwargs)


class TrainingTime(Callback):
    """Adds the CPU and wall-clock time from ``on_train_begin`` to ``on_train_end`` to a total.

    The total is a class attribute: a pruner trains a clone of its estimator,
    callbacks included.
    """

    totals = [0.0, 0.0]

    def on_train_begin(self, net, **kwargs):
        self.start_ = (time.process_time(), time.perf_counter())

    def on_train_end(self, net, **kwargs):
        type(self).totals[0] += time.process_time() - self.start_[0]
        type(self).totals[1] += time.perf_counter() - self.start_[1]


def make_net(X, epochs, batch_size, record=None, timed=False):
    params = dict(
        module=MLP,
        module__in_features=X.shape[1],
        module__hidden=(256,),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        max_epochs=epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
    )
    if record is not None:
        recorder = TimedRecorder if timed else TrainingDynamicsRecorder
        params.update(
            callbacks=[("dynamics", recorder(record))],
            iterator_train__batch_sampler=PositionBatchSampler(len(X), batch_size,
                                                               shuffle=True),
            iterator_train__batch_size=1,
            iterator_train__shuffle=False,
        )
    return NeuralNetClassifier(**params)


def timed(run):
    """CPU seconds and wall-clock seconds of ``run()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - cpu, time.perf_counter() - wall


def interleaved(variants, repeats):
    """``{label: [(cpu, wall), ...]}`` of every variant, repeats interleaved.

    ``variants`` maps a label to ``run(seed)``. After one warm-up run of
    each (allocator, kernels, page cache), every repeat runs all variants,
    in alternating order.
    """
    labels = list(variants)
    for label in labels:
        variants[label](0)
    times = {label: [] for label in labels}
    for repeat in range(repeats):
        for label in labels if repeat % 2 == 0 else labels[::-1]:
            times[label].append(timed(functools.partial(variants[label], repeat + 1)))
    return times


def report(times, reference):
    """Print every variant's minimum and median, and its ratio to ``reference``."""
    # Load from other processes only ever adds time, so the fastest of the
    # repeats is the steadiest estimate; medians are shown too.
    for clock, column in (("CPU", 0), ("wall-clock", 1)):
        print(f"{clock} time:")
        runs = {label: [t[column] for t in runs] for label, runs in times.items()}
        for label, values in runs.items():
            listed = ", ".join(f"{t:.2f}" for t in values)
            print(f"  {label:>28}: min {min(values):.3f} s, median "
                  f"{statistics.median(values):.3f} s  (runs: {listed})")
        for label, values in runs.items():
            if label == reference:
                continue
            by_min = min(values) / min(runs[reference])
            by_median = statistics.median(values) / statistics.median(runs[reference])
            print(f"  ratio {label} / {reference}: {by_min:.3f} (of minima), "
                  f"{by_median:.3f} (of medians)")


def recording_case(args):
    """The recorder callback alone, on a real-sized MLP."""
    X, y, name = load_data(args.n_samples)
    variants = {"without recorder": None, "record='train'": "train"}
    if args.eval:
        variants["record='eval'"] = "eval"
    print(
        f"[recording] {name}: {X.shape[0]} samples x {X.shape[1]} features, MLP "
        f"{X.shape[1]}-256-10, {args.epochs} epochs, batch size {args.batch_size}, "
        f"{args.threads} thread(s), {args.repeats} interleaved repeats after a warm-up"
    )

    def fit(record):
        def run(seed):
            torch.manual_seed(seed)
            make_net(X, args.epochs, args.batch_size, record).fit(X, y)
        return run

    times = interleaved({label: fit(record) for label, record in variants.items()},
                        args.repeats)
    # The time spent inside the recorder does not depend on other load on
    # the machine as much as whole-run timings do.
    net = make_net(X, args.epochs, args.batch_size, "train", timed=True)
    torch.manual_seed(0)
    cpu, _ = timed(lambda: net.fit(X, y))
    recorder = dict(net.callbacks_)["dynamics"]
    print(f"CPU time inside the recorder's hooks: {recorder.seconds_:.3f} s of {cpu:.2f} s "
          f"of training ({recorder.seconds_ / cpu:.2%})")
    report(times, "without recorder")


def tiny_data(n_rows, seed=0):
    """``n_rows`` of 32 features in 10 overlapping classes, float32."""
    rng = np.random.RandomState(seed)
    y = rng.randint(10, size=n_rows)
    X = (rng.normal(size=(n_rows, 32)) + 0.3 * y[:, None]).astype(np.float32)
    return X, y


def plain_loop(module, X, y, epochs, batch_size, lr, seed):
    """The same training as skorch's: SGD over a shuffling DataLoader, in a plain loop."""
    torch.manual_seed(seed)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.SGD(module.parameters(), lr=lr)
    criterion = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        for inputs, targets in loader:
            optimizer.zero_grad()
            criterion(module(inputs), targets).backward()
            optimizer.step()


def overhead_case(args):
    """Forgetting's whole fit against skorch's own fit, where per-batch work is everything."""
    X, y = tiny_data(args.tiny_rows)
    net = NeuralNetClassifier(
        MLP, module__in_features=X.shape[1], module__hidden=(32,),
        criterion=torch.nn.CrossEntropyLoss, lr=0.05, max_epochs=args.tiny_epochs,
        batch_size=128, iterator_train__shuffle=True, train_split=None, verbose=0,
        callbacks=[("training_time", TrainingTime())],
    )
    print(
        f"[overhead] synthetic: {X.shape[0]} samples x {X.shape[1]} features, MLP 32-32-10, "
        f"{args.tiny_epochs} epochs, batch size 128, {args.threads} thread(s), "
        f"{args.repeats} interleaved repeats after a warm-up"
    )
    training = {}

    def training_time(label, run):
        # The training alone (on_train_begin to on_train_end), beside the whole call.
        def timed_run(seed):
            TrainingTime.totals = [0.0, 0.0]
            run(seed)
            training.setdefault(label, []).append(tuple(TrainingTime.totals))
        return timed_run

    def skorch_fit(seed):
        torch.manual_seed(seed)
        clone(net).fit(X, y)

    def forgetting_fit(seed):
        ForgettingPruner(net, random_state=seed).fit(X, y)

    def torch_loop(seed):
        module = MLP(in_features=X.shape[1], hidden=(32,))
        plain_loop(module, X, y, args.tiny_epochs, 128, 0.05, seed)

    whole = interleaved({"skorch net.fit": training_time("skorch net.fit", skorch_fit),
                         "ForgettingPruner.fit": training_time("ForgettingPruner.fit",
                                                               forgetting_fit),
                         "plain PyTorch loop": torch_loop}, args.repeats)
    print("Whole calls:")
    report(whole, "skorch net.fit")
    print("Training only (the net's on_train_begin to on_train_end; for Forgetting its query "
          "net's, with recorder and monitor):")
    # The first entry of each is the warm-up run.
    report({label: runs[1:] for label, runs in training.items()}, "skorch net.fit")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["recording", "overhead", "both"], default="both")
    parser.add_argument("--n-samples", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval", action="store_true", help="also time record='eval'")
    parser.add_argument("--tiny-rows", type=int, default=20000)
    parser.add_argument("--tiny-epochs", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")
    if args.case in ("overhead", "both"):
        overhead_case(args)
    if args.case in ("recording", "both"):
        recording_case(args)
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
