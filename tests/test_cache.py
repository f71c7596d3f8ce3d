"""Scores and MetriQ recalls are computed once per data and scoring parameters."""

import os
import stat
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
    RandomPruner(CountingTree(max_depth=2), density=0.2, quota="metriq",
                 random_state=0).fit(X + 1, y)
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
    with pytest.warns(UserWarning, match="cannot see the content of an UnpicklableDataset"):
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


# Entries are files that other users and processes may have written ----------


def cache_files(memory):
    return sorted((Path(memory) / CACHE_FOLDER).iterdir())


def metriq_fit(memory, random_state=0):
    """A fast fit that stores one entry (MetriQ's recalls) under ``memory``."""
    X, y = blobs()
    return RandomPruner(CountingTree(max_depth=2), density=0.3, quota="metriq",
                        random_state=random_state, memory=memory).fit(X, y)


@pytest.fixture
def umask():
    """Set the process umask for a test; restored afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def test_an_entry_is_as_readable_as_the_umask_allows(tmp_path, umask):
    umask(0o022)
    metriq_fit(tmp_path)
    (entry,) = cache_files(tmp_path)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_a_setgid_group_directory_shares_entries_whatever_the_umask(tmp_path, umask):
    # What `install -d -m 2770 -g team DIR` makes; a writer with umask 077.
    team = tmp_path / "team"
    team.mkdir()
    group = os.getgid() if os.geteuid() != 0 else 61000
    os.chown(team, -1, group)
    os.chmod(team, 0o2770)
    umask(0o077)
    metriq_fit(team)
    folder = team / CACHE_FOLDER
    assert stat.S_IMODE(folder.stat().st_mode) == 0o2770 and folder.stat().st_gid == group
    (entry,) = cache_files(team)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o640
    assert entry.stat().st_gid == group


def test_racing_writers_leave_the_first_entry(tmp_path):
    from skprune.cache import CacheEntry

    first, second = (CacheEntry(tmp_path, ("race", 1)) for _ in range(2))
    assert first.load() is None and second.load() is None  # both miss, both compute
    first.store({"value": np.arange(3.0)})
    (entry,) = cache_files(tmp_path)
    published = entry.stat().st_ino
    second.store({"value": np.arange(3.0) + 1})
    # The entry is not replaced: readers that already hit keep hitting it.
    assert entry.stat().st_ino == published
    np.testing.assert_array_equal(CacheEntry(tmp_path, ("race", 1)).load()["value"],
                                  np.arange(3.0))
    assert cache_files(tmp_path) == [entry]  # and no partial file is left


TEAM_GID, FIRST_UID, SECOND_UID = 61000, 61001, 61002

SHARING_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from test_cache import metriq_fit, CountingTree
    metriq_fit(sys.argv[2], random_state=int(sys.argv[3]))
    print(CountingTree.fits)
""")


def as_user(uid, *args, cwd, env, umask=0o077):
    """Start this Python as ``uid`` (in the team group), with ``umask``."""
    return subprocess.Popen(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", f"--groups={TEAM_GID}",
         sys.executable, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, umask=umask, cwd=cwd,
        env=env)


@pytest.mark.slow
def test_two_users_share_a_team_cache():
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("switching between two users needs root (setpriv --reuid)")
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to run as two users")
    # Outside pytest's own temporary directory, which only its owner may enter.
    base = Path(tempfile.mkdtemp(prefix="skprune-team-"))
    try:
        os.chmod(base, 0o755)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(base),
               "PYTHONPATH": str(TESTS.parent), "PYTHONDONTWRITEBYTECODE": "1",
               "MPLCONFIGDIR": str(base), "OMP_NUM_THREADS": "1"}
        probe = as_user(FIRST_UID, "-c", "import numpy", cwd=base, env=env)
        if probe.wait(timeout=300) != 0:
            pytest.skip(f"another user cannot run this Python: {probe.stderr.read()[-300:]}")
        # The documented recipe: install -d -m 2770 -g team DIR.
        team = base / "team-cache"
        team.mkdir()
        os.chown(team, 0, TEAM_GID)
        os.chmod(team, 0o2770)

        def fits(*runs):
            """Training count of every ``(uid, seed)`` fit, run side by side."""
            started = [as_user(uid, "-c", SHARING_SCRIPT, str(TESTS), str(team), str(seed),
                               cwd=base, env=env) for uid, seed in runs]
            counts = []
            for process in started:
                out, err = process.communicate(timeout=300)
                assert process.returncode == 0, err
                assert "cache entry" not in err, err
                counts.append(int(out.split()[-1]))
            return counts

        # Each user computes one result, then reads the other's.
        assert fits((FIRST_UID, 0), (SECOND_UID, 1)) == [1, 1]
        assert fits((SECOND_UID, 0), (FIRST_UID, 1)) == [0, 0]
        entries = cache_files(team)
        assert len(entries) == 2
        assert {entry.stat().st_uid for entry in entries} == {FIRST_UID, SECOND_UID}
        assert {entry.stat().st_gid for entry in entries} == {TEAM_GID}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def el2n_fit(memory, X, y):
    """An EL2N fit with one query run, counted by ``CountTrainings.scoring``."""
    CountTrainings.scoring = 0
    return el2n(memory).fit(X, y)


@pytest.fixture(scope="module")
def stored_scores(tmp_path_factory, digits):
    """A cache holding one valid EL2N scores entry: (X, y, scores, entry name, entry bytes)."""
    memory = tmp_path_factory.mktemp("scores")
    X, y = digits[0][:300], digits[1][:300]
    scores = el2n_fit(memory, X, y).scores_
    (entry,) = cache_files(memory)
    return X, y, scores, entry.name, entry.read_bytes()


def planted(stored_scores, memory):
    """Where the stored entry lives under ``memory``, its folder made."""
    folder = Path(memory) / CACHE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder / stored_scores[3]


def refit_warnings(stored_scores, memory):
    """Fit again, recording every warning; the scores and the warnings."""
    import warnings

    X, y = stored_scores[:2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = el2n_fit(memory, X, y).scores_
    return scores, caught


def assert_recomputed_and_replaced(stored_scores, memory, scores, caught):
    from skprune.exceptions import DegenerateTrainingWarning

    entry = planted(stored_scores, memory)
    naming = [str(warning.message) for warning in caught if str(entry) in str(warning.message)]
    assert len(naming) == 1, [str(warning.message) for warning in caught]
    assert not [warning for warning in caught
                if issubclass(warning.category, DegenerateTrainingWarning)]
    assert CountTrainings.scoring == 1
    np.testing.assert_array_equal(scores, stored_scores[2])
    assert not entry.is_symlink() and entry.is_file()
    assert entry.read_bytes() == stored_scores[4]  # replaced by the valid entry
    return naming[0]


def write_npz(path, **arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)


@pytest.mark.parametrize("craft, reason", [
    (lambda n: {"values": np.zeros(n)}, "members"),
    (lambda n: {"scores": np.zeros(n), "extra": np.ones(4)}, "members"),
    (lambda n: {"scores": np.zeros(n, dtype=bool)}, "dtype bool"),
    (lambda n: {"scores": np.zeros(n, dtype=np.int8)}, "dtype int8"),
], ids=["no-scores-member", "extra-member", "bool-scores", "int8-zero-scores"])
def test_a_crafted_scores_entry_is_recomputed_with_one_warning(stored_scores, tmp_path, craft,
                                                               reason):
    write_npz(planted(stored_scores, tmp_path), **craft(len(stored_scores[1])))
    scores, caught = refit_warnings(stored_scores, tmp_path)
    message = assert_recomputed_and_replaced(stored_scores, tmp_path, scores, caught)
    assert reason in message and "learning rate" not in message


def test_a_metriq_entry_with_string_recalls_is_recomputed(tmp_path):
    import warnings

    metriq_fit(tmp_path)
    (entry,) = cache_files(tmp_path)
    with np.load(entry) as stored:
        arrays = dict(stored)
    arrays["recall"] = arrays["recall"].astype(str)
    write_npz(entry, **arrays)
    CountingTree.fits = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metriq_fit(tmp_path)
    assert CountingTree.fits == 1
    assert len([w for w in caught if str(entry) in str(w.message)]) == 1
    with np.load(entry) as stored:
        assert stored["recall"].dtype == np.float64


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_a_planted_fifo_or_link_is_refused_without_blocking(stored_scores, tmp_path, kind):
    import threading

    entry = planted(stored_scores, tmp_path)
    if kind == "fifo":
        os.mkfifo(entry)
    else:
        target = tmp_path / "elsewhere.npz"
        target.write_bytes(stored_scores[4])
        entry.symlink_to(target)
    outcome = {}
    fit = threading.Thread(
        target=lambda: outcome.update(zip(("scores", "caught"),
                                          refit_warnings(stored_scores, tmp_path), strict=True)),
        daemon=True)
    fit.start()
    fit.join(60)
    if fit.is_alive():
        # Unblock the reader, so that the thread ends.
        os.close(os.open(entry, os.O_WRONLY | os.O_NONBLOCK))
        fit.join(60)
        pytest.fail("opening the planted FIFO blocked the fit")
    message = assert_recomputed_and_replaced(stored_scores, tmp_path, outcome["scores"],
                                             outcome["caught"])
    assert "not a regular file" in message
    if kind == "symlink":
        assert target.read_bytes() == stored_scores[4]  # the link's target is left alone


def zip_archive(members):
    """A zip archive of ``(name, method, crc, size, data chunks)`` members, as bytes chunks."""
    import struct

    chunks, directory, offset = [], [], 0
    for name, method, crc, size, data in members:
        compressed = sum(len(chunk) for chunk in data)
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 33, crc,
                             compressed, size, len(name), 0) + name
        directory.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0,
                                     33, crc, compressed, size, len(name), 0, 0, 0, 0, 0,
                                     offset) + name)
        chunks += [header, *data]
        offset += len(header) + compressed
    central = b"".join(directory)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central),
                      offset, 0)
    return chunks + [central, end]


def npy_member(name, array):
    import io
    import zlib

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    data = buffer.getvalue()
    return name, 0, zlib.crc32(data), len(data), [data]


def deflated_zeros_member(name, n_float64):
    """A ``.npy`` member of ``n_float64`` zeros (a multiple of 2**21), deflated, built cheaply."""
    import io
    import zlib

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": (n_float64,)})
    header, block = buffer.getvalue(), bytes(1 << 24)
    # Full flushes make every block stand on its own, so one compressed
    # block of zeros can be repeated.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats = n_float64 * 8 // len(block)
    crc = zlib.crc32(header)
    for _ in range(repeats):
        crc = zlib.crc32(block, crc)
    final = b"\x03\x00"  # an empty last block
    return name, 8, crc, len(header) + repeats * len(block), [head] + [zeros] * repeats + [final]


def test_a_huge_member_beside_valid_scores_is_never_inflated(stored_scores, tmp_path,
                                                             monkeypatch):
    import zipfile

    entry = planted(stored_scores, tmp_path)
    valid = npy_member(b"scores.npy", stored_scores[2])
    huge = deflated_zeros_member(b"junk.npy", 2**28)  # 2 GiB of float64 zeros
    with open(entry, "wb") as file:
        file.writelines(zip_archive([valid, huge]))
    assert entry.stat().st_size < 5 * 2**20
    opened = []
    zip_open = zipfile.ZipFile.open

    def recording_open(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return zip_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    scores, caught = refit_warnings(stored_scores, tmp_path)
    assert "junk.npy" not in opened
    assert_recomputed_and_replaced(stored_scores, tmp_path, scores, caught)


def test_partial_files_of_dead_writers_are_removed(tmp_path):
    import time

    from skprune import _cache_files

    folder = tmp_path / CACHE_FOLDER
    folder.mkdir()
    host = _cache_files._host()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    later = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "dead writer": f"0a.{host}.{dead.pid}.01.partial",
            "reused pid": f"0b.{host}.{later.pid}.02.partial",
            "old, elsewhere": "0c.otherhost.1.03.partial",
            "old, unnamed": "tmp9x2k.partial",
            "running writer": f"0d.{host}.{os.getpid()}.04.partial",
            "fresh, elsewhere": f"0e.otherhost.{dead.pid}.05.partial",
        }
        for name in names.values():
            (folder / name).write_bytes(b"PK")
        hour, days = time.time() - 3600, time.time() - 2 * 86400
        os.utime(folder / names["reused pid"], (hour, hour))  # before that process started
        for name in ("old, elsewhere", "old, unnamed"):
            os.utime(folder / names[name], (days, days))
        metriq_fit(tmp_path)  # a write cleans up
    finally:
        later.kill()
        later.wait()
    left = {path.name for path in folder.iterdir() if path.suffix == ".partial"}
    assert left == {names["running writer"], names["fresh, elsewhere"]}


KILLED_WRITE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from test_cache import metriq_fit

    def killed_savez(file, *args, **kwargs):
        file.write(b"PK half an entry")
        file.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    np.savez = killed_savez
    metriq_fit(sys.argv[2])
""")


@pytest.mark.slow
def test_a_killed_write_leaves_no_partial_file_for_ever(tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(TESTS), str(tmp_path)],
                            check=False, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    (partial,) = cache_files(tmp_path)
    assert partial.suffix == ".partial"
    metriq_fit(tmp_path)  # the next write removes it
    (entry,) = cache_files(tmp_path)
    assert entry.suffix == ".npz"
