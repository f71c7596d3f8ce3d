"""Real datasets of the quota suite that skprune.datasets does not ship as they are.

Each function returns what the fairness benchmark's ``--dataset module:function``
takes: a dict with ``X_train``, ``y_train``, ``X_test``, ``y_test`` and
``class_names``. The test sets are balanced (the benchmark halves them per
class into MetriQ's validation and the evaluation), large enough for worst-class
recall to mean something where the data allows.
"""

import os

import numpy as np

from skprune.datasets import load_digits_images, load_fashion_mnist

#: Debian's r-cran-mlbench puts the UCI benchmark problems here.
MLBENCH = "/usr/share/R/site-library/mlbench/data", "/usr/lib/R/site-library/mlbench/data"


def fashion_mnist_long_tailed(largest=800, imbalance=10.0, seed=7):
    """Fashion-MNIST with a long-tailed training set and the balanced test set.

    Class sizes fall geometrically from ``largest`` to ``largest / imbalance``
    (800 to 80 rows: 3,266 in all); which class gets which size is a fixed
    random permutation, so that the rare classes are not the hardest ones by
    construction. The 10,000 test images are kept whole.

    Parameters
    ----------
    largest : int, default=800
    imbalance : float, default=10.0
        Ratio of the largest class size to the smallest.
    seed : int, default=7
        Seed of the permutation and of the rows drawn (the data, not a run).

    Returns
    -------
    dict
    """
    data = load_fashion_mnist()
    n_classes = len(data.class_names)
    sizes = np.round(largest * imbalance ** (-np.arange(n_classes) / (n_classes - 1)))
    rng = np.random.RandomState(seed)
    sizes = sizes[rng.permutation(n_classes)].astype(int)
    rows = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(data.y_train == label), size, replace=False)
        for label, size in enumerate(sizes)
    ]))
    return {"X_train": data.X_train[rows], "y_train": data.y_train[rows],
            "X_test": data.X_test, "y_test": data.y_test,
            "class_names": list(data.class_names)}


def satellite(test_per_class=400, seed=0):
    """Statlog (Landsat satellite): 36 spectral features, six imbalanced soil classes.

    6,435 rows from UCI, as Debian's ``r-cran-mlbench`` ships them (read with
    the ``rdata`` package). The test set holds ``test_per_class`` rows of
    every class (half for MetriQ's validation, half for evaluation), the
    training set the rest: 226 to 1,133 rows a class. Features are scaled to
    [0, 1].

    Parameters
    ----------
    test_per_class : int, default=400
    seed : int, default=0
        Seed of the test rows drawn (the data, not a run).

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError
        Without ``r-cran-mlbench``; the message says how to install it.
    """
    path = next((os.path.join(folder, "Satellite.rda") for folder in MLBENCH
                 if os.path.exists(os.path.join(folder, "Satellite.rda"))), None)
    if path is None:
        raise FileNotFoundError(
            "The Satellite data comes from Debian's r-cran-mlbench package: install it with "
            "`apt-get install --no-install-recommends r-cran-mlbench` (and `pip install "
            "rdata`)."
        )
    try:
        import rdata
    except ImportError:
        raise FileNotFoundError(
            "Reading the Satellite data needs the rdata package: pip install rdata "
            "(it is in skprune's [benchmark] extra)."
        ) from None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown encoding. Assumed ASCII."
        frame = rdata.read_rda(path)["Satellite"]
    classes = frame["classes"]
    class_names = [str(name) for name in classes.cat.categories]
    y = classes.cat.codes.to_numpy().astype(np.int64)
    X = (frame.drop(columns="classes").to_numpy(dtype=np.float32) / 255.0)
    rng = np.random.RandomState(seed)
    test = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(y == label), test_per_class, replace=False)
        for label in range(len(class_names))
    ]))
    train = np.setdiff1d(np.arange(len(y)), test)
    return {"X_train": X[train], "y_train": y[train], "X_test": X[test], "y_test": y[test],
            "class_names": class_names}


def digits_half():
    """scikit-learn's digits with half of the images as the test set (90 a class).

    The benchmark splits the test set per class into MetriQ's validation and
    the evaluation: 45 rows a class each, as much as 1,797 images allow.

    Returns
    -------
    dict
    """
    data = load_digits_images(test_size=0.5)
    return {name: data[name] for name in ("X_train", "y_train", "X_test", "y_test",
                                          "class_names")}
