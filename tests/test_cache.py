"""Scores and MetriQ recalls are computed once per data and scoring parameters."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_net
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

from skprune import MetriQ, RandomPruner, make_pipeline
from skprune.cache import cached_call, clear_process_cache, fingerprint

TESTS = Path(__file__).parent


class CountingTree(DecisionTreeClassifier):
    """A classifier that counts how often any clone of it is fitted."""

    fits = 0

    def fit(self, X, y, **params):
        CountingTree.fits += 1
        return super().fit(X, y, **params)


class CountTrainings(Callback):
    """Counts real trainings of skorch nets: scoring nets train with
    ``train_split=None``, MetriQ's clone keeps the user's split."""

    scoring = 0
    metriq = 0

    def on_train_begin(self, net, **kwargs):
        if net.train_split is None:
            CountTrainings.scoring += 1
        else:
            CountTrainings.metriq += 1


@pytest.fixture(autouse=True)
def fresh_counts():
    clear_process_cache()
    CountingTree.fits = 0
    CountTrainings.scoring = CountTrainings.metriq = 0
    yield
    clear_process_cache()


def blobs(seed=0, n=60):
    rng = np.random.RandomState(seed)
    y = np.repeat([0, 1, 2], n)
    return rng.normal(size=(y.size, 5)) + y[:, None], y


def test_fingerprint_ignores_memory_layout():
    X = np.random.RandomState(0).normal(size=(20, 6))
    assert fingerprint(X) == fingerprint(np.asfortranarray(X))
    assert fingerprint(X[:, ::2]) == fingerprint(X[:, ::2].copy())
    assert fingerprint(X) != fingerprint(X.astype(np.float32))
    changed = X.copy()
    changed[3, 4] += 1e-9
    assert fingerprint(X) != fingerprint(changed)


def test_metriq_recall_reused_across_density_and_quota_objects():
    X, y = blobs()
    for density in (0.2, 0.4, 0.6):
        RandomPruner(CountingTree(max_depth=2), density=density, quota="metriq",
                     random_state=0).fit(X, y)
    assert CountingTree.fits == 1
    # A different estimator parameter, different data or another seed train again.
    RandomPruner(CountingTree(max_depth=3), density=0.2, quota="metriq", random_state=0).fit(X, y)
    RandomPruner(CountingTree(max_depth=2), density=0.2, quota="metriq", random_state=0).fit(X + 1, y)
    RandomPruner(CountingTree(max_depth=2), density=0.2, quota="metriq", random_state=1).fit(X, y)
    assert CountingTree.fits == 4


def test_random_state_none_never_reuses():
    X, y = blobs()
    for _ in range(3):
        RandomPruner(CountingTree(max_depth=2), density=0.3, quota="metriq").fit(X, y)
    assert CountingTree.fits == 3


def test_layout_of_the_data_does_not_invalidate():
    X, y = blobs()
    RandomPruner(CountingTree(), density=0.3, quota="metriq", random_state=0).fit(X, y)
    RandomPruner(CountingTree(), density=0.3, quota="metriq", random_state=0).fit(
        np.asfortranarray(X), y
    )
    assert CountingTree.fits == 1


def test_process_cache_is_bounded(monkeypatch):
    import skprune.cache as cache

    monkeypatch.setattr(cache, "PROCESS_CACHE_SIZE", 2)
    calls = []
    for key in (1, 2, 3, 1):
        cached_call(None, key, lambda key=key: calls.append(key))
    # Key 1 was evicted by key 3 and had to be recomputed.
    assert calls == [1, 2, 3, 1]
    assert len(cache._process_cache) == 2


def test_disk_memory_is_shared_across_processes(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from test_cache import CountingTree, blobs
        from skprune import RandomPruner
        X, y = blobs()
        RandomPruner(CountingTree(max_depth=2), density=0.3, quota="metriq",
                     random_state=0, memory={str(tmp_path)!r}).fit(X, y)
        assert CountingTree.fits == 1
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    X, y = blobs()
    pruner = RandomPruner(CountingTree(max_depth=2), density=0.5, quota="metriq",
                          random_state=0, memory=tmp_path).fit(X, y)
    assert CountingTree.fits == 0
    assert len(pruner.class_recall_) == 3


def test_grid_search_trains_one_scoring_and_one_metriq_net_per_fold(digits):
    from skprune import GraNdPruner

    X, y = digits
    X, y = X[:400], y[:400]
    scoring_net = make_tiny_net(max_epochs=2, callbacks=[("count", CountTrainings())])
    metriq_net = make_tiny_net(max_epochs=2, callbacks=[("count", CountTrainings())],
                               train_split=ValidSplit(5, stratified=True))
    pipe = make_pipeline(
        GraNdPruner(scoring_net, n_runs=1, epochs=1, random_state=0),
        LogisticRegression(max_iter=200),
    )
    grid = {
        "grandpruner__density": [0.3, 0.5, 0.7],
        "grandpruner__quota": [None, "proportional", MetriQ(metriq_net, validation=0.2)],
    }
    search = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X, y)
    refit_metriq = isinstance(search.best_params_["grandpruner__quota"], MetriQ)
    # Two folds, plus the refit on all the data.
    assert CountTrainings.scoring == 2 + 1
    assert CountTrainings.metriq == 2 + int(refit_metriq)

    # The same search again in this process reuses everything.
    CountTrainings.scoring = CountTrainings.metriq = 0
    GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X, y)
    assert CountTrainings.scoring == CountTrainings.metriq == 0

    # Without a seed every fit scores again: 9 candidates x 2 folds + refit.
    pipe.set_params(grandpruner__random_state=None)
    GridSearchCV(pipe, {"grandpruner__density": [0.3, 0.5, 0.7]}, cv=2).fit(X, y)
    assert CountTrainings.scoring == 3 * 2 + 1


class UnpicklableDataset(torch.utils.data.Dataset):
    """A Dataset that cannot be hashed (it holds a lambda)."""

    def __init__(self, X, y):
        self.X, self.y, self.transform = X, y, lambda row: row

    def __len__(self):
        return len(self.y)

    def __getitem__(self, index):
        return self.transform(self.X[index]), self.y[index]


def test_unhashable_data_is_scored_without_cache(digits):
    from skprune import EL2NPruner

    X, y = digits
    dataset = UnpicklableDataset(X[:300], y[:300])
    pruner = EL2NPruner(make_tiny_net(max_epochs=2), n_runs=1, epochs=1, density=0.5,
                        quota="metriq", random_state=0)
    with pytest.warns(UserWarning, match="cannot be hashed"):
        subset, _ = pruner.fit_resample(dataset, y[:300])
    assert len(subset) == 150
    # The data is hashed once per fit, and the memo does not outlive it.
    assert "_data_fingerprint_memo" not in vars(pruner)


def test_a_changed_class_definition_is_a_different_key(tmp_path, monkeypatch):
    import importlib.util

    def load(source, folder):
        path = tmp_path / folder / "user_model.py"
        path.parent.mkdir()
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("user_model", path)
        module = importlib.util.module_from_spec(spec)
        # As an import (or a re-import after an edit) leaves it.
        monkeypatch.setitem(sys.modules, "user_model", module)
        spec.loader.exec_module(module)
        return module.Net

    # Keys are computed at fit time, from the class as it is imported then.
    old = fingerprint(load("class Net:\n    layers = 1\n", "old"))
    edited = fingerprint(load("class Net:\n    layers = 2\n", "edited"))
    reverted = fingerprint(load("class Net:\n    layers = 1\n", "reverted"))
    assert old != edited
    assert old == reverted
