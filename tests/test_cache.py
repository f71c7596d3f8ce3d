"""Scores and MetriQ recalls are computed once per data and scoring parameters."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_net, small_imbalanced
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

from skprune import EL2NPruner, ForgettingPruner, MetriQ, RandomPruner, StrategyQ, make_pipeline
from skprune.cache import CACHE_FOLDER, cached_result, clear_process_cache, fingerprint

TESTS = Path(__file__).parent


class CountingTree(DecisionTreeClassifier):
    """A classifier that counts how often any clone of it is fitted."""

    fits = 0

    def fit(self, X, y, **params):
        CountingTree.fits += 1
        return super().fit(X, y, **params)


class CountTrainings(Callback):
    """Counts real trainings of query nets, scoring nets and MetriQ's apart."""

    scoring = 0
    metriq = 0

    def on_train_begin(self, net, **kwargs):
        if dict(net.callbacks_)["skprune_monitor"].owner == "MetriQ":
            CountTrainings.metriq += 1
        else:
            CountTrainings.scoring += 1


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
        cached_result(None, key, lambda key=key: calls.append(key) or {"value": np.array(key)})
    # Key 1 was evicted by key 3 and had to be recomputed.
    assert calls == [1, 2, 3, 1]
    assert len(cache._process_cache) == 2


@pytest.mark.slow
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


class LazyFiles(torch.utils.data.Dataset):
    """Reads its rows from a file at every access, as image-folder datasets do."""

    def __init__(self, path, n):
        self.path, self.n = path, n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        X, y = np.load(self.path)["X"], np.load(self.path)["y"]
        return X[index], y[index]


class KeyedLazyFiles(LazyFiles):
    """The same, with a content key: the hash of its file."""

    def cache_key(self):
        return Path(self.path).read_bytes()


def count_scoring_runs(make, X, y, times=2):
    CountTrainings.scoring = 0
    for _ in range(times):
        make().fit_resample(X, y)
    return CountTrainings.scoring


def el2n(memory=None):
    from skprune import EL2NPruner

    net = make_tiny_net(max_epochs=1, callbacks=[("count", CountTrainings())])
    return EL2NPruner(net, n_runs=1, epochs=1, density=0.5, random_state=0, memory=memory)


def test_a_lazy_dataset_without_a_cache_key_is_never_cached(digits, tmp_path):
    X, y = digits
    path = tmp_path / "rows.npz"
    np.savez(path, X=X[:200], y=y[:200])
    dataset = LazyFiles(str(path), 200)
    with pytest.warns(UserWarning, match="cannot see the content of a LazyFiles.*cache_key"):
        assert count_scoring_runs(lambda: el2n(tmp_path / "cache"), dataset, y[:200]) == 2

    # With a cache_key the scores are reused, until the file changes.
    keyed = KeyedLazyFiles(str(path), 200)
    assert count_scoring_runs(lambda: el2n(tmp_path / "cache"), keyed, y[:200]) == 1
    before = el2n(tmp_path / "cache").fit(keyed, y[:200]).scores_
    np.savez(path, X=X[200:400], y=y[:200])
    assert count_scoring_runs(lambda: el2n(tmp_path / "cache"), keyed, y[:200], times=1) == 1
    assert not np.array_equal(el2n(tmp_path / "cache").fit(keyed, y[:200]).scores_, before)


HELPER_MODULE = """
import torch

SCALE = {scale}


def scaled(X):
    return X * SCALE


class HelperNet(torch.nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.linear = torch.nn.LazyLinear(n_classes)

    def forward(self, X):
        return self.linear(scaled(X.flatten(1)))
"""


def test_an_edit_to_a_helper_the_module_uses_is_a_new_key(tmp_path, monkeypatch, digits):
    import importlib.util

    from skorch import NeuralNetClassifier

    def load(scale, folder):
        path = tmp_path / folder / "helper_net.py"
        path.parent.mkdir()
        path.write_text(HELPER_MODULE.format(scale=scale))
        spec = importlib.util.spec_from_file_location("helper_net", path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "helper_net", module)
        spec.loader.exec_module(module)
        return module.HelperNet

    X, y = digits
    X, y = X[:300], y[:300]
    scores = []
    for scale, folder in ((1.0, "a"), (3.0, "b")):
        net = NeuralNetClassifier(load(scale, folder), criterion=torch.nn.CrossEntropyLoss,
                                  max_epochs=1, train_split=None, verbose=0,
                                  callbacks=[("count", CountTrainings())])
        from skprune import EL2NPruner

        CountTrainings.scoring = 0
        pruner = EL2NPruner(net, n_runs=1, epochs=1, random_state=0, memory=tmp_path / "c")
        scores.append(pruner.fit(X, y).scores_)
        # The class's own source did not change, only the helper's constant.
        assert CountTrainings.scoring == 1
    assert not np.allclose(scores[0], scores[1])


def test_a_helper_module_edited_and_reloaded_is_a_new_key(tmp_path, monkeypatch):
    # The class object stays the same (its module is not reloaded), as with
    # IPython's autoreload of the helper only.
    import importlib

    from skprune.cache import code_identity

    package = tmp_path / "reloadpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("SCALE = 1.0\n")
    (package / "nets.py").write_text(
        "import torch\nfrom . import helpers\n\n\nclass Net(torch.nn.Module):\n"
        "    def forward(self, X):\n        return X * helpers.SCALE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("reloadpkg", "reloadpkg.helpers", "reloadpkg.nets"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    nets = importlib.import_module("reloadpkg.nets")
    before = code_identity(nets.Net)
    helpers = package / "helpers.py"
    helpers.write_text("SCALE = 3.0\n")
    stat = helpers.stat()
    os.utime(helpers, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    importlib.reload(nets.helpers)
    assert code_identity(nets.Net) != before


def test_bfloat16_and_sparse_tensors_are_keyed_by_content():
    from skprune.cache import fingerprint

    values = torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)
    changed = values.clone()
    changed[0, 0] = 0.5
    assert fingerprint(values) == fingerprint(values.clone())
    assert fingerprint(values) != fingerprint(changed)
    sparse = torch.eye(3).to_sparse()
    assert fingerprint(sparse) == fingerprint(torch.eye(3).to_sparse())
    assert fingerprint(sparse) != fingerprint((2 * torch.eye(3)).to_sparse())


def test_splitters_with_the_same_repr_are_different_keys():
    from sklearn.model_selection import PredefinedSplit

    X, y = blobs(n=400)
    first = np.arange(1200) % 3
    second = first.copy()
    second[[500, 600, 700]] = (second[[500, 600, 700]] + 1) % 3
    assert repr(PredefinedSplit(first)) == repr(PredefinedSplit(second))
    for folds in (first, second):
        RandomPruner(CountingTree(max_depth=2), density=0.5, random_state=0,
                     quota=MetriQ(validation=PredefinedSplit(folds))).fit(X, y)
    assert CountingTree.fits == 6


def test_unseeded_splitters_are_never_cached():
    from sklearn.model_selection import KFold

    X, y = blobs()
    for _ in range(2):
        RandomPruner(CountingTree(max_depth=2), density=0.5, random_state=0,
                     quota=MetriQ(validation=KFold(3, shuffle=True))).fit(X, y)
    assert CountingTree.fits == 6


def test_a_user_subclass_with_a_builtin_name_is_a_different_key():
    import skprune

    class EL2NPruner(skprune.EL2NPruner):
        def _score_net(self, net, kind, X, target):
            return -super()._score_net(net, kind, X, target)

    X, y = blobs()
    X = X.astype(np.float32)
    net = make_tiny_net(max_epochs=1, module__n_classes=3)
    builtin = skprune.EL2NPruner(net, n_runs=1, random_state=0).fit(X, y).scores_
    user = EL2NPruner(net, n_runs=1, random_state=0).fit(X, y).scores_
    np.testing.assert_allclose(user, -builtin)


@pytest.mark.parametrize("damage", ["garbage", "wrong-length", "nan"])
def test_a_damaged_disk_entry_is_a_miss_and_is_replaced(digits, tmp_path, damage):
    X, y = digits
    X, y = X[:300], y[:300]
    reference = el2n(tmp_path).fit(X, y).scores_
    (entry,) = (tmp_path / CACHE_FOLDER).glob("*.npz")
    if damage == "garbage":
        entry.write_bytes(b"not a numpy file")
    else:
        scores = np.zeros(5) if damage == "wrong-length" else np.full(300, np.nan)
        with open(entry, "wb") as file:
            np.savez(file, scores=scores)
    with pytest.warns(UserWarning, match="recomputing|Recomputing"):
        assert count_scoring_runs(lambda: el2n(tmp_path), X, y, times=1) == 1
    np.testing.assert_array_equal(el2n(tmp_path).fit(X, y).scores_, reference)
    # The entry was replaced by the recomputed, valid one.
    assert count_scoring_runs(lambda: el2n(tmp_path), X, y, times=1) == 0


def test_a_pickle_planted_in_the_cache_is_never_executed(digits, tmp_path):
    X, y = digits
    X, y = X[:300], y[:300]
    el2n(tmp_path).fit(X, y)
    (entry,) = (tmp_path / CACHE_FOLDER).glob("*.npz")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    with open(entry, "wb") as file:
        np.savez(file, scores=np.array([Payload()], dtype=object))
    with pytest.warns(UserWarning):
        el2n(tmp_path).fit(X, y)
    # Unpickling the payload would have created the marker.
    assert not marker.exists()


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
    with pytest.warns(UserWarning, match="cannot see the content of a UnpicklableDataset"):
        subset, _ = pruner.fit_resample(dataset, y[:300])
    assert len(subset) == 150


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



def test_strategy_quota_hashes_the_data_once(monkeypatch):
    # StrategyQ fits its pruner through the public fit; that pruner reuses the
    # outer fit's content hash of the very same data instead of hashing it again.
    import skprune._context as context

    hashed = []
    original = context.fingerprint
    monkeypatch.setattr(context, "fingerprint",
                        lambda data: hashed.append(data) or original(data))
    X, y = small_imbalanced(n=(40, 30, 20))
    net = make_tiny_net(n_classes=3, max_epochs=2)
    pruner = ForgettingPruner(net, density=0.5, quota=StrategyQ(EL2NPruner(net, n_runs=1)),
                              random_state=0).fit(X, y)
    assert len(hashed) == 1
    assert sum(pruner.quota_.strategy_class_counts_.values()) == 45
    # A second fit on a copy is hashed anew (identity, not a stale memo).
    hashed.clear()
    ForgettingPruner(net, density=0.5, random_state=0).fit(X.copy(), y)
    assert len(hashed) == 1
