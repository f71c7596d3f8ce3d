"""Small data and tiny networks shared by the tests."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier

torch.set_num_threads(1)


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
