"""A new user's first day: torch Datasets through model selection, warnings that
catch silent failures, labels that cannot disagree, ``to_frame``."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_tiny_net
from PIL import Image
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from skorch.callbacks import Callback
from skorch.helper import SliceDataset

from skprune import DataPruner, ForgettingPruner, RandomPruner, ScorePruner, make_pipeline
from skprune.exceptions import DegenerateTrainingWarning
from skprune.utils._torch_data import take_rows

torchvision = pytest.importorskip("torchvision")


class CountTrainings(Callback):
    """Counts the query trainings of every clone (a class attribute)."""

    trainings = 0

    def on_train_begin(self, net, **kwargs):
        type(self).trainings += 1


def write_image_folder(root, n_per_class=12, size=8, seed=0):
    """Three classes of small PNGs whose brightness tells the class apart."""
    rng = np.random.RandomState(seed)
    for k, name in enumerate(["ant", "bee", "cat"]):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            pixels = rng.normal(50 + 75 * k, 15, size=(size, size, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                root / name / f"{i}.png")
    return torchvision.datasets.ImageFolder(root, transform=torchvision.transforms.ToTensor())


def image_net(**params):
    return make_tiny_net(3, max_epochs=3, batch_size=8, iterator_train__shuffle=True, **params)


# -- memory without a seed ------------------------------------------------------------


def test_memory_without_an_integer_seed_warns_naming_the_fix(digits, tmp_path):
    X, y = digits
    pruner = ForgettingPruner(make_tiny_net(max_epochs=1), memory=tmp_path)
    with pytest.warns(UserWarning, match=r"nothing will be cached.*random_state=0") as record:
        pruner.fit(X[:200], y[:200])
    # It points at the caller, not into skprune.
    assert [w.filename for w in record if "nothing will be cached" in str(w.message)] == [
        __file__]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*nothing will be cached")
        RandomPruner(random_state=0, memory=tmp_path).fit(X, y)
        RandomPruner().fit(X, y)  # no memory: nothing to say


def test_memory_warning_is_shown_once_per_call_site(digits, tmp_path):
    X, y = digits
    pruner = RandomPruner(density=0.5, memory=tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        GridSearchCV(make_pipeline(pruner, make_tiny_net(max_epochs=1)),
                     {"randompruner__density": [0.3, 0.5]}, cv=2).fit(X[:300], y[:300])
    # Four fits and a refit of clones: one warning.
    assert sum("nothing will be cached" in str(w.message) for w in record) == 1


# -- torch Datasets through model selection ----------------------------------------


def test_a_dataset_indexed_into_a_list_of_items_names_slicedataset(digits):
    X, y = digits
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X[:300]), torch.from_numpy(y[:300]))
    pipe = make_pipeline(RandomPruner(density=0.5, random_state=0), make_tiny_net(max_epochs=1))
    with pytest.raises(ValueError, match=r"list of 150 \(input, label\) tuples.*SliceDataset"):
        cross_validate(pipe, dataset, y[:300], cv=2, error_score="raise")
    # A list of plain rows is not mistaken for one.
    rows = [tuple(row) for row in X[:100]]
    assert RandomPruner(density=0.5, random_state=0).fit_resample(rows, y[:100])[1].size == 50


def test_grid_search_over_a_slicedataset_works_end_to_end(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    net = make_tiny_net(max_epochs=4, iterator_train__shuffle=True)
    pipe = make_pipeline(ForgettingPruner(clone(net), random_state=0), net)
    search = GridSearchCV(pipe, {"forgettingpruner__density": [0.5, 0.8]}, cv=2,
                          error_score="raise").fit(SliceDataset(dataset), y)
    assert search.best_params_["forgettingpruner__density"] in (0.5, 0.8)
    # The refit pipeline's final net trained on the kept rows of the Dataset.
    kept = search.best_estimator_[0].sample_indices_
    assert kept.size == round(search.best_params_["forgettingpruner__density"] * 300)
    assert search.best_estimator_.score(X, y) > 0.5


def test_take_rows_of_a_slicedataset_is_a_slicedataset_of_those_rows(digits):
    X, y = digits
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    rows = take_rows(SliceDataset(dataset)[10:50], [0, 5, 7])
    assert isinstance(rows, SliceDataset)
    np.testing.assert_array_equal(np.stack([r.numpy() for r in rows]), X[[10, 15, 17]])


def test_cross_validate_on_an_image_folder_and_again_from_the_cache(tmp_path):
    images = write_image_folder(tmp_path / "images")
    X, y = SliceDataset(images), np.array(images.targets)
    query_net = image_net(callbacks=[("count", CountTrainings())])
    pipe = make_pipeline(
        ForgettingPruner(query_net, density=0.5, quota="proportional", random_state=0,
                         memory=tmp_path / "cache"),
        image_net(),
    )
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    CountTrainings.trainings = 0
    torch.manual_seed(0)  # the final nets' initialisation
    first = cross_validate(pipe, X, y, cv=cv, error_score="raise")
    assert CountTrainings.trainings == 2  # one query network per fold
    assert np.isfinite(first["test_score"]).all()

    # The same run again: every fold's scores come from the cache (the
    # ImageFolder is keyed by its files), and the results are the same.
    CountTrainings.trainings = 0
    torch.manual_seed(0)
    again = cross_validate(clone(pipe), SliceDataset(images), y, cv=cv, error_score="raise")
    assert CountTrainings.trainings == 0
    np.testing.assert_array_equal(again["test_score"], first["test_score"])


def test_an_image_folder_key_follows_its_files(tmp_path):
    from skprune.cache import fingerprint

    images = write_image_folder(tmp_path / "images", n_per_class=2)
    before = fingerprint(images)
    assert fingerprint(torchvision.datasets.ImageFolder(
        tmp_path / "images", transform=torchvision.transforms.ToTensor())) == before
    path = images.samples[0][0]
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(path)  # a rewritten image
    assert fingerprint(images) != before
    assert fingerprint(SliceDataset(images)) != fingerprint(SliceDataset(images)[:3])


# -- labels that cannot disagree ---------------------------------------------------


def test_a_dataset_whose_labels_disagree_with_y_is_refused(digits):
    X, y = digits
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    shuffled = np.random.RandomState(0).permutation(y)
    with pytest.raises(ValueError, match=r"(?s)disagree with y.*Dataset says.*y says"
                                         r".*dataset\.targets.*SliceDataset"):
        RandomPruner(density=0.5, random_state=0).fit(dataset, shuffled)
    RandomPruner(density=0.5, random_state=0).fit(dataset, y)  # agreeing labels pass


class ItemsOnly(torch.utils.data.Dataset):
    """A Dataset with no label column: its labels are read from sampled items."""

    def __init__(self, X, y):
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


def test_labels_of_a_dataset_without_a_label_column_are_sampled(digits):
    X, y = digits
    wrong = (y + 1) % 10
    with pytest.raises(ValueError, match=r"of 64 evenly spaced rows differ"):
        RandomPruner(density=0.5, random_state=0).fit(ItemsOnly(X, y), wrong)
    RandomPruner(density=0.5, random_state=0).fit(ItemsOnly(X, y), y)


def test_an_image_folder_whose_targets_disagree_with_y_is_refused(tmp_path):
    images = write_image_folder(tmp_path / "images", n_per_class=3)
    y = np.array(images.targets)
    with pytest.raises(ValueError, match=r"ImageFolder.*every row"):
        RandomPruner(density=0.5, random_state=0).fit(images, y[::-1])
    # A SliceDataset's items are inputs alone: any y is the user's choice.
    RandomPruner(density=0.5, random_state=0).fit(SliceDataset(images), y[::-1])


# -- query training sanity --------------------------------------------------------


def test_sorted_labels_without_shuffling_warn_naming_the_parameter(digits):
    X, y = digits
    order = np.argsort(y, kind="stable")
    X, y = X[order][:400], y[order][:400]
    with pytest.warns(DegenerateTrainingWarning, match=r"sorted by class.*"
                                                      r"iterator_train__shuffle=True"):
        ForgettingPruner(make_tiny_net(max_epochs=2), random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*sorted by class")
        shuffled = make_tiny_net(max_epochs=2, iterator_train__shuffle=True)
        ForgettingPruner(shuffled, random_state=0).fit(X, y)
        mixed = np.random.RandomState(0).permutation(len(y))
        ForgettingPruner(make_tiny_net(max_epochs=2), random_state=0).fit(X[mixed], y[mixed])


def test_near_chance_training_accuracy_warns_naming_the_parameters(digits):
    X, y = digits
    X, y = X[:400], y[:400]
    # Labels that say nothing about the inputs: three epochs learn nothing.
    noise = np.random.RandomState(0).permutation(y)
    net = make_tiny_net(max_epochs=3, iterator_train__shuffle=True)
    with pytest.warns(DegenerateTrainingWarning, match=r"near chance.*\(lr\) or max_epochs"):
        ForgettingPruner(net, random_state=0).fit(X, noise)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=DegenerateTrainingWarning)
        learning = make_tiny_net(max_epochs=3, iterator_train__shuffle=True)
        ForgettingPruner(learning, random_state=0).fit(X, y)


@pytest.mark.parametrize("epochs", [2, 4, 5])
def test_forgetting_on_inputs_without_information_warns(digits, epochs):
    X, y = digits
    constant = np.ones((400, 64), dtype=np.float32)
    net = make_tiny_net(max_epochs=epochs, iterator_train__shuffle=True)
    with pytest.warns(DegenerateTrainingWarning):
        ForgettingPruner(net, random_state=0).fit(constant, y[:400])


class ConstantScores(DataPruner):
    """Scores every row alike, as a query network that tells no row apart does."""

    def _score_run(self, X, y, seed):
        return np.zeros(len(y))


def test_scores_alike_for_every_row_warn(digits):
    X, y = digits
    with pytest.warns(DegenerateTrainingWarning, match=r"scores are all 0 .* over 1797 rows"):
        ConstantScores(random_state=0).fit(X, y)


# -- to_frame -------------------------------------------------------------------------


def test_to_frame_of_arrays_is_indexed_by_position(digits):
    X, y = digits
    pruner = ForgettingPruner(make_tiny_net(max_epochs=2, iterator_train__shuffle=True),
                              density=0.4, random_state=0).fit(X[:300], y[:300])
    frame = pruner.to_frame()
    assert list(frame.columns) == ["label", "group", "score", "kept"]
    assert frame.index.name == "row" and frame.index.equals(pd.RangeIndex(300, name="row"))
    np.testing.assert_array_equal(frame["label"], y[:300])
    np.testing.assert_array_equal(frame["group"], y[:300])  # without groups: the classes
    np.testing.assert_array_equal(frame["score"], pruner.scores_)
    np.testing.assert_array_equal(np.flatnonzero(frame["kept"]), np.sort(pruner.sample_indices_))


def test_to_frame_keeps_a_pandas_index_and_the_groups(digits):
    X, y = digits
    index = pd.Index([f"img{i}" for i in range(len(y))], name="file")
    frame_X = pd.DataFrame(X, index=index)
    groups = np.arange(len(y)) % 3
    pruner = RandomPruner(density=0.3, random_state=0).fit(frame_X, pd.Series(y, index=index),
                                                           groups=groups)
    frame = pruner.to_frame()
    assert frame.index.equals(index)
    np.testing.assert_array_equal(frame["group"], groups)
    assert frame.loc[frame_X.index[pruner.sample_indices_], "kept"].all()
    assert frame["kept"].sum() == pruner.sample_indices_.size


def test_to_frame_before_fit_says_so():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        RandomPruner().to_frame()
    # A label-only pruner has no row index either.
    frame = ScorePruner(np.arange(10.0), density=0.5).fit(None, np.arange(10) % 2).to_frame()
    assert frame["kept"].sum() == 5


# -- epoch correction in pipelines ---------------------------------------------------


class CountEpochs(Callback):
    epochs = []

    def on_train_end(self, net, **kwargs):
        type(self).epochs.append(len(net.history))


@pytest.mark.parametrize("density", [0.3, 0.5, 1.0])
def test_correct_epochs_trains_the_final_net_for_the_papers_epochs(digits, density):
    from skprune import corrected_epochs

    X, y = digits
    X, y = X[:200], y[:200]
    final = make_tiny_net(max_epochs=4, callbacks=[("count", CountEpochs())])
    pipe = make_pipeline(RandomPruner(density=density, random_state=0), final,
                         correct_epochs=True)
    CountEpochs.epochs = []
    pipe.fit(X, y)
    expected = corrected_epochs(4, density)
    assert expected == round(4 * (0.5 + 0.5 * density) / density)
    assert CountEpochs.epochs == [expected] and pipe.final_epochs_ == expected
    # The parameter itself is unchanged: a refit or a clone starts from 4.
    assert pipe[-1].max_epochs == 4 and clone(pipe).get_params()["correct_epochs"]
    # Without the option, the same epochs on fewer rows.
    CountEpochs.epochs = []
    make_pipeline(RandomPruner(density=density, random_state=0), clone(final)).fit(X, y)
    assert CountEpochs.epochs == [4]


def test_correct_epochs_in_a_search_follows_each_density(digits):
    X, y = digits
    X, y = X[:200], y[:200]
    final = make_tiny_net(max_epochs=2, callbacks=[("count", CountEpochs())])
    pipe = make_pipeline(RandomPruner(random_state=0), final, correct_epochs=True)
    CountEpochs.epochs = []
    GridSearchCV(pipe, {"randompruner__density": [0.25, 1.0]}, cv=2, refit=False).fit(X, y)
    assert sorted(CountEpochs.epochs) == [2, 2, 5, 5]


def test_correct_epochs_stretch_a_schedule_in_fractions_of_max_epochs(digits):
    from skprune.models import StepDecay

    X, y = digits
    schedule = StepDecay(fractions=(0.5,))
    final = make_tiny_net(max_epochs=4, callbacks=[("lr_schedule", schedule)])
    pipe = make_pipeline(RandomPruner(density=0.5, random_state=0), final,
                         correct_epochs=True).fit(X[:200], y[:200])
    # 6 epochs at density 0.5: the drop comes after epoch 3, not 2.
    assert pipe.final_epochs_ == 6 and dict(pipe[-1].callbacks_)["lr_schedule"].milestones_ == [3]
    assert pipe[-1].max_epochs == 4


def test_correct_epochs_needs_a_skorch_final_step(digits):
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    pipe = make_pipeline(RandomPruner(density=0.5), LogisticRegression(), correct_epochs=True)
    with pytest.raises(ValueError, match="correct_epochs=True.*skorch"):
        pipe.fit(X, y)


def test_the_citation_is_the_same_in_the_readme_and_the_docs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def citation(path, heading):
        text = path.read_text()
        start = text.index(heading) + len(heading)
        return " ".join(text[start:].strip().split("\n\n")[0].split())

    readme = citation(root / "README.md", "## Citing\n")
    assert readme.startswith("If you use skprune") and "Ahuja" in readme
    assert citation(root / "docs" / "index.rst", "Citing\n======\n") == readme


def test_messages_name_types_with_the_right_article():
    from skprune.exceptions import with_article

    assert [with_article(name) for name in ("ImageFolder", "TensorDataset", "uint8", "int8",
                                            "UnpicklableDataset", "UserDict")] == [
        "an ImageFolder", "a TensorDataset", "a uint8", "an int8", "an UnpicklableDataset",
        "a UserDict"]


def test_the_progress_bar_of_a_single_run_counts_its_epochs(digits, capsys):
    X, y = digits
    ForgettingPruner(make_tiny_net(max_epochs=3), verbose=1, random_state=0).fit(X[:200],
                                                                                y[:200])
    err = capsys.readouterr().err
    # One run of three epochs: the bar moves epoch by epoch, not from 0/1 to 1/1.
    assert "ForgettingPruner query runs" in err and "1/3" in err and "3/3" in err
    assert "epoch" in err and "epoch 3/3" in err
