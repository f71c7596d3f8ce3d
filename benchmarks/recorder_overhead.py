"""Cost of recording training dynamics, relative to plain skorch training.

Trains the same skorch MLP (784-256-10 on Fashion-MNIST, or 64-256-10 on
scikit-learn's digits where Fashion-MNIST is absent) on the same data for
the same epochs, with and without a
:class:`~skprune.callbacks.TrainingDynamicsRecorder` (and the
:class:`~skprune.callbacks.PositionBatchSampler` that tells it which samples
each batch holds). Both nets shuffle, use ``train_split=None`` and the same
batch size. After a warm-up round, repeats are interleaved (the order within
a round alternates) and the fastest runs (and the medians) are compared;
the ratio ``with / without`` is printed for CPU time (the process's own,
single threaded by default: steadier on a shared machine) and for
wall-clock time. Target: at most 1.02 for ``record="train"``, which reads
the training forward pass. The CPU time spent inside the recorder's hooks
and its sampler is printed too. ``record="eval"`` adds a forward pass per
epoch and is timed, for comparison, only with ``--eval``.

Run: ``python -m benchmarks.recorder_overhead [--n-samples 60000] [--epochs 2]
[--batch-size 128] [--repeats 21] [--threads 1] [--eval]``.
"""

import argparse
import statistics
import time

import numpy as np
import torch
from skorch import NeuralNetClassifier

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

    def _timed(self, hook, *args, **kwargs):
        start = time.process_time()
        getattr(super(), hook)(*args, **kwargs)
        self.seconds_ += time.process_time() - start

    def on_train_begin(self, net, **kwargs):
        self._timed("on_train_begin", net, **kwargs)

    def on_epoch_begin(self, net, **kwargs):
        self._timed("on_epoch_begin", net, **kwargs)

    def on_batch_end(self, net, **kwargs):
        self._timed("on_batch_end", net, **kwargs)

    def on_epoch_end(self, net, **kwargs):
        self._timed("on_epoch_end", net, **kwargs)

    def on_train_end(self, net, **kwargs):
        self._timed("on_train_end", net, **kwargs)


class TimedSampler(PositionBatchSampler):
    """The batch sampler, adding up the CPU time spent drawing batches."""

    seconds_ = 0.0

    def __iter__(self):
        batches = super().__iter__()
        while True:
            start = time.process_time()
            batch = next(batches, None)
            self.seconds_ += time.process_time() - start
            if batch is None:
                return
            yield batch


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
        recorder, sampler = (
            (TimedRecorder, TimedSampler) if timed
            else (TrainingDynamicsRecorder, PositionBatchSampler)
        )
        params.update(
            callbacks=[("dynamics", recorder(record))],
            iterator_train__batch_sampler=sampler(len(X), batch_size, shuffle=True),
            iterator_train__batch_size=1,
            iterator_train__shuffle=False,
        )
    return NeuralNetClassifier(**params)


def time_fit(net, X, y, seed):
    """CPU seconds and wall-clock seconds of ``net.fit(X, y)``."""
    torch.manual_seed(seed)
    cpu, wall = time.process_time(), time.perf_counter()
    net.fit(X, y)
    return time.process_time() - cpu, time.perf_counter() - wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval", action="store_true", help="also time record='eval'")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    X, y, name = load_data(args.n_samples)
    variants = {"without recorder": None, "record='train'": "train"}
    if args.eval:
        variants["record='eval'"] = "eval"
    print(
        f"{name}: {X.shape[0]} samples x {X.shape[1]} features, MLP {X.shape[1]}-256-10, "
        f"{args.epochs} epochs, batch size {args.batch_size}, {args.threads} thread(s), "
        f"{args.repeats} interleaved repeats after a warm-up"
    )
    names = list(variants)
    for label in names:  # warm-up: allocator, kernels, page cache
        time_fit(make_net(X, 1, args.batch_size, variants[label]), X, y, seed=0)
    times = {label: [] for label in names}
    for repeat in range(args.repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for label in order:
            net = make_net(X, args.epochs, args.batch_size, variants[label])
            times[label].append(time_fit(net, X, y, seed=repeat))

    # The time spent inside the recorder and its sampler does not depend on
    # other load on the machine as much as whole-run timings do.
    net = make_net(X, args.epochs, args.batch_size, "train", timed=True)
    cpu, _ = time_fit(net, X, y, seed=0)
    recorder = dict(net.callbacks_)["dynamics"]
    sampler = net.iterator_train__batch_sampler
    print(
        f"CPU time inside the recorder's hooks: {recorder.seconds_:.3f} s, inside its batch "
        f"sampler: {sampler.seconds_:.3f} s, of {cpu:.2f} s of training "
        f"({(recorder.seconds_ + sampler.seconds_) / cpu:.2%}; skorch's default sampler "
        "is not subtracted)"
    )
    # Load from other processes only ever adds time, so the fastest of the
    # repeats is the steadiest estimate; medians are shown too.
    for clock, column in (("CPU", 0), ("wall-clock", 1)):
        print(f"{clock} time:")
        runs = {label: [t[column] for t in times[label]] for label in names}
        for label in names:
            listed = ", ".join(f"{t:.2f}" for t in runs[label])
            print(f"  {label:>18}: min {min(runs[label]):.3f} s, median "
                  f"{statistics.median(runs[label]):.3f} s  (runs: {listed})")
        for label in names[1:]:
            by_min = min(runs[label]) / min(runs["without recorder"])
            by_median = (
                statistics.median(runs[label]) / statistics.median(runs["without recorder"])
            )
            print(f"  ratio {label} / without: {by_min:.3f} (of minima), "
                  f"{by_median:.3f} (of medians)")

if __name__ == "__main__":
    main()
