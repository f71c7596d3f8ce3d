"""Small data and tiny networks shared by the tests."""

import random
from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_global_generators():
    # pytest-xdist hands tests to workers in a varying order, so a test that
    # trains an unseeded network would otherwise start from whatever state the
    # previous test left and pass or fail by chance.
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


class TinyMLP(torch.nn.Module):
    """An MLP that adapts to any number of input features (``LazyLinear``)."""

    def __init__(self, n_classes=10, hidden=32):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.LazyLinear(hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, n_classes),
        )

    def forward(self, X):
        return self.layers(X)


def make_tiny_net(n_classes=10, max_epochs=5, **params):
    """A skorch classifier on ``TinyMLP`` that outputs logits."""
    defaults = dict(
        module=TinyMLP,
        module__n_classes=n_classes,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.1,
        max_epochs=max_epochs,
        batch_size=64,
        train_split=None,
        verbose=0,
    )
    defaults.update(params)
    return NeuralNetClassifier(**defaults)


def small_imbalanced(n=(60, 30, 10), n_features=4, seed=0):
    """Gaussian blobs of the given class sizes, class ``k`` shifted by ``k``."""
    rng = np.random.RandomState(seed)
    y = np.repeat(np.arange(len(n)), n)
    X = rng.normal(size=(y.size, n_features)) + y[:, None]
    return X, y


class RowCounter(Callback):
    """Counts the training rows a net sees in its first epoch (clones share the list)."""

    rows = []

    def on_epoch_begin(self, net, **kwargs):
        self.seen_ = 0

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            self.seen_ += len(batch[1])

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 1:
            type(self).rows.append(self.seen_)


@pytest.fixture
def fresh_cache():
    """An empty in-process cache before and after the test."""
    from skprune.cache import clear_process_cache

    clear_process_cache()
    yield
    clear_process_cache()


@pytest.fixture(scope="session")
def digits():
    """scikit-learn digits as float32 features in [0, 1] and int64 labels."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="session")
def flipped_digits(digits):
    """Digits with 10% of the labels replaced by a different class.

    Returns X, noisy y, and a boolean mask of the flipped rows.
    """
    X, y = digits
    rng = np.random.RandomState(0)
    flipped = np.zeros(y.shape[0], dtype=bool)
    flipped[rng.choice(y.shape[0], size=y.shape[0] // 10, replace=False)] = True
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.randint(1, 10, size=flipped.sum())) % 10
    return X, noisy, flipped


def stable_ids(parametrize):
    """The same estimator checks, with test ids that are equal in every process.

    The checks' default ids show the estimator's repr, and a skorch net's
    repr shows a set (``_params_to_validate``) whose order changes from one
    process to the next: pytest-xdist workers would then collect different
    tests and refuse to run.
    """
    argnames, argvalues = parametrize.args
    argvalues = list(argvalues)
    ids, seen = [], Counter()
    for estimator, check in argvalues:
        name = f"{type(estimator).__name__}-{getattr(check, 'func', check).__name__}"
        seen[name] += 1
        ids.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return pytest.mark.parametrize(argnames, argvalues, ids=ids)
