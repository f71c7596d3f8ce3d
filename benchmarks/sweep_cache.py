"""What the score cache saves in a sweep, and what Dataset inputs save in memory.

Prints, measured side by side in one run:

- the wall time of a ``GridSearchCV`` over density x quota with the score
  cache, divided by the same search without it (digits, an EL2N pruner);
- the peak memory of ``fit_resample`` on an in-memory array divided by that
  on a ``torch.utils.data.Dataset`` over the same (Fashion-MNIST-sized) data.

Run: ``python -m benchmarks.sweep_cache [--repeats 3]``.
"""

import argparse
import time
import tracemalloc

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

import skprune.cache
from skprune import EL2NPruner, RandomPruner, make_pipeline
from skprune.models import make_net


def sweep_seconds(X, y, cached):
    """Wall time of a 3 x 3 density x quota search with cv=3."""
    skprune.cache.clear_process_cache()
    # A zero-size in-process cache forgets every result at once: the sweep
    # then trains a query network for every candidate and fold.
    size = skprune.cache.PROCESS_CACHE_SIZE
    skprune.cache.PROCESS_CACHE_SIZE = size if cached else 0
    try:
        net = make_net("mlp", 10, "digits-mlp", max_epochs=10)
        pipe = make_pipeline(
            EL2NPruner(net, epochs=2, n_runs=2, random_state=0),
            LogisticRegression(max_iter=300),
        )
        grid = {
            "el2npruner__density": [0.2, 0.5, 0.8],
            "el2npruner__quota": [None, "proportional", "metriq"],
        }
        start = time.perf_counter()
        GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
        return time.perf_counter() - start
    finally:
        skprune.cache.PROCESS_CACHE_SIZE = size


def peak_bytes(X, y):
    """Peak bytes numpy and Python allocate during one ``fit_resample``."""
    pruner = RandomPruner(density=0.5, quota="proportional", random_state=0)
    tracemalloc.start()
    tracemalloc.reset_peak()
    kept = pruner.fit_resample(X, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del kept
    return peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    with_cache, without_cache = [], []
    for _ in range(args.repeats):  # interleaved, so load drifts hit both alike
        with_cache.append(sweep_seconds(X, y, cached=True))
        without_cache.append(sweep_seconds(X, y, cached=False))
    cached, uncached = np.median(with_cache), np.median(without_cache)
    print(f"sweep (digits, EL2N, 3 densities x 3 quotas, cv=3), medians of {args.repeats}:")
    print(f"  with cache    {cached:8.2f} s")
    print(f"  without cache {uncached:8.2f} s")
    print(f"  with cache / without cache = {cached / uncached:.3f}")

    rng = np.random.RandomState(0)
    images = rng.rand(60000, 1, 28, 28).astype(np.float32)
    labels = rng.randint(0, 10, size=60000)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))
    array_peaks = [peak_bytes(images, labels) for _ in range(args.repeats)]
    dataset_peaks = [peak_bytes(dataset, labels) for _ in range(args.repeats)]
    array_peak, dataset_peak = np.median(array_peaks), np.median(dataset_peaks)
    print("fit_resample peak memory (60000 x 1 x 28 x 28 float32, density 0.5):")
    print(f"  array   {array_peak / 2**20:8.1f} MiB")
    print(f"  Dataset {dataset_peak / 2**20:8.1f} MiB")
    print(f"  array / Dataset = {array_peak / dataset_peak:.1f}")


if __name__ == "__main__":
    main()
