"""Labels of any type and pandas inputs through a pruner into a network.

skprune's own net (``RecipeNet``) must take what a scikit-learn classifier
takes. A plain skorch ``NeuralNetClassifier`` cannot be changed: for it the
documented recipe (docs/user_guide/pipelines.rst, "Labels and inputs") must
work where the raw pipeline fails inside skorch.
"""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import FunctionTransformer, LabelEncoder, StandardScaler
from skorch import NeuralNetClassifier

from skprune import EL2NPruner, RandomPruner, make_pipeline
from skprune.models import MLP, RecipeNet, make_net
from skprune.utils._torch_data import net_inputs

NOT_WRITABLE = "The given NumPy array is not writable"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "pipelines.rst"

#: Labels that are not class indices 0 .. K - 1, built from digits 0 .. 9.
LABELINGS = {
    "strings": lambda y: np.array(list("abcdefghij"))[y],
    "floats 1..K": lambda y: (y + 1).astype(float),
    "ints 1..K": lambda y: y + 1,
    "negative ints": lambda y: y - 5,
}


@pytest.fixture(scope="module")
def digits():
    """900 of scikit-learn's digits (every class), as float32 in [0, 1]: small and fast."""
    X, y = load_digits(return_X_y=True)
    return (X[:900] / 16).astype(np.float32), y[:900]


@pytest.fixture(scope="module")
def frame(digits):
    X, _ = digits
    return pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])


@pytest.fixture
def every_torch_warning():
    """torch issues the not-writable warning once per process; make it warn every time."""
    before = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    yield
    torch.set_warn_always(before)


def recipe_net(**params):
    return make_net("mlp", 10, "digits-mlp", **{"max_epochs": 10, "device": "cpu", **params})


class TinyMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
        )

    def forward(self, X):
        return self.layers(X)


def skorch_net(**params):
    defaults = dict(criterion=torch.nn.CrossEntropyLoss, lr=0.05, optimizer__momentum=0.9,
                    batch_size=64, max_epochs=15, train_split=None, verbose=0, device="cpu")
    return NeuralNetClassifier(TinyMLP, **{**defaults, **params})


def to_float32():
    """The documented step that hands a plain skorch net a float32 array."""
    return FunctionTransformer(np.array, kw_args={"dtype": np.float32}).set_output(
        transform="default"
    )


def pruner_pipeline(net, kind):
    """``make_pipeline(pruner, net)``; ``"metriq"`` and ``"el2n"`` share ``net`` with the pruner."""
    if kind == "random":
        pruner = RandomPruner(density=0.5, random_state=0)
    elif kind == "metriq":
        pruner = RandomPruner(net, density=0.5, quota="metriq", random_state=0)
    else:
        pruner = EL2NPruner(net, density=0.5, n_runs=1, random_state=0)
    return make_pipeline(pruner, net)


# --- RecipeNet: the common cases work ----------------------------------------------


@pytest.mark.parametrize(
    "labeling, pruner",
    [("strings", "metriq"), ("floats 1..K", "metriq"), ("ints 1..K", "random"),
     ("negative ints", "random")],
)
def test_recipenet_takes_any_labels(digits, labeling, pruner):
    X, y = digits
    labels = LABELINGS[labeling](y)
    torch.manual_seed(0)
    pipe = pruner_pipeline(recipe_net(), pruner).fit(X, labels)
    predicted = pipe.predict(X)
    assert predicted.dtype.kind == labels.dtype.kind
    np.testing.assert_array_equal(pipe.classes_, np.unique(labels))
    assert set(np.unique(predicted)) <= set(np.unique(labels))
    assert pipe.score(X, labels) > 0.5  # chance: 0.1
    assert balanced_accuracy_score(labels, predicted) > 0.5


def test_recipenet_takes_a_dataframe(digits, frame):
    _, y = digits
    labels = LABELINGS["strings"](y)
    torch.manual_seed(0)
    pipe = pruner_pipeline(recipe_net(), "el2n").fit(frame, labels)
    assert pipe.score(frame, labels) > 0.3  # the hardest half only; chance: 0.1
    assert pipe.predict(frame.iloc[:5]).shape == (5,)
    assert pipe.predict_proba(frame).shape == (len(frame), 10)


def test_recipenet_takes_pandas_output(digits, frame):
    X, y = digits
    torch.manual_seed(0)
    net = recipe_net()
    pipe = make_pipeline(StandardScaler(), RandomPruner(net, quota="metriq", random_state=0), net)
    with sklearn.config_context(transform_output="pandas"):
        assert isinstance(StandardScaler().fit_transform(X), pd.DataFrame)
        pipe.fit(X, y)  # an array in, DataFrames to the pruner and the net
        assert pipe.score(X, y) > 0.5


def test_recipenet_refuses_non_numeric_columns(digits):
    _, y = digits
    X = pd.DataFrame({"colour": np.where(y % 2, "red", "blue"), "size": y.astype(float)})
    with pytest.raises(ValueError, match="not numeric.*colour.*OneHotEncoder"):
        recipe_net(max_epochs=1).fit(X, y)


def test_recipenet_scoring_callbacks_see_positions(digits):
    # skorch's valid_acc compares predict() with the batch targets: both must be
    # output positions while fit runs, or string labels would score 0.
    X, y = digits
    labels = LABELINGS["strings"](y)
    torch.manual_seed(0)
    net = RecipeNet(MLP, module__n_classes=10, lr=0.1, optimizer__momentum=0.9,
                    batch_size=64, max_epochs=4, verbose=0, device="cpu")
    net.fit(X, labels)
    assert net.history[-1, "valid_acc"] > 0.5
    assert net.predict(X[:3]).dtype.kind == "U"
    assert list(net.classes_) == list("abcdefghij")


def test_recipenet_warm_start_keeps_its_classes(digits):
    X, y = digits
    labels = LABELINGS["strings"](y)
    first = y < 5
    net = recipe_net(max_epochs=1)
    net.partial_fit(X[first], labels[first])
    net.partial_fit(X[first][::-1], labels[first][::-1])
    assert list(net.classes_) == list("abcde")
    with pytest.raises(ValueError, match=r"not among its classes.*classes=np\.unique"):
        net.partial_fit(X, labels)
    # With every class given up front, parts of the data may lack some.
    net = recipe_net(max_epochs=1, classes=list("abcdefghij"))
    net.partial_fit(X[first], labels[first]).partial_fit(X, labels)
    assert list(net.classes_) == list("abcdefghij")
    # A fresh fit learns its classes again.
    assert list(recipe_net(max_epochs=1).fit(X[~first], labels[~first]).classes_) == list("fghij")


def test_recipenet_clone_pickle_and_params_with_labels(digits, frame):
    X, y = digits
    labels = LABELINGS["strings"](y)
    net = recipe_net(max_epochs=2)
    params = net.get_params(deep=False)
    net.fit(frame, labels)
    assert net.get_params(deep=False).keys() == params.keys()
    cloned = clone(net)
    assert cloned.get_params(deep=False).keys() == params.keys()
    assert not hasattr(cloned, "_label_classes_")
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(restored.predict(X), net.predict(X))
    assert restored.predict(X).dtype.kind == "U"


def test_recipenet_predicts_only_its_classes(digits):
    # A module with more outputs than the labels have classes (a CV fold that
    # lacks one): the spare outputs never become a prediction.
    X, y = digits
    labels = LABELINGS["strings"](y)
    lacking = labels != "d"
    net = recipe_net(max_epochs=1).fit(X[lacking], labels[lacking])
    assert net.predict_proba(X).shape == (len(X), 10)
    assert list(net.classes_) == list("abcefghij")
    assert set(net.predict(X)) <= set("abcefghij")


def test_recipenet_integer_and_soft_targets_unchanged(digits):
    X, y = digits
    net = recipe_net(max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(net.classes_, np.arange(10))
    assert net.predict(X).dtype.kind == "i"
    # One-hot / probability targets are not class labels: left to the loss.
    soft = np.eye(10, dtype=np.float32)[y]
    net = recipe_net(max_epochs=1).fit(X, soft)
    assert set(np.unique(net.predict(X))) <= set(range(10))


def test_recipenet_tensor_labels_that_are_positions_stay_tensors(digits):
    # Class indices 0 .. K - 1 on the device reach skorch as they are (the
    # GPU check times training on device tensors); other labels are encoded.
    X, y = digits
    seen = []

    class Recording(RecipeNet):
        def get_dataset(self, X, y=None):
            seen.append(type(y))
            return super().get_dataset(X, y)

    settings = dict(module__n_classes=10, module__hidden=(16,), max_epochs=1,
                    train_split=None, device="cpu")
    Recording(MLP, **settings).fit(torch.as_tensor(X), torch.as_tensor(y))
    Recording(MLP, **settings).fit(torch.as_tensor(X), torch.as_tensor(y + 1))
    assert seen == [torch.Tensor, np.ndarray]


# --- a plain skorch NeuralNetClassifier: the documented recipe works ---------------


CASES = ["strings", "floats 1..K", "dataframe", "pandas output"]


def _case(case, digits, frame):
    X, y = digits
    if case in ("strings", "floats 1..K"):
        return X, LABELINGS[case](y), False
    if case == "dataframe":
        return frame, y, False
    return X, y, True


@pytest.mark.filterwarnings(f"ignore:{NOT_WRITABLE}")  # skorch's own dict of columns
@pytest.mark.parametrize("case", CASES)
def test_skorch_pipeline_fails_early_with_the_recipe(digits, frame, case):
    X, labels, pandas_output = _case(case, digits, frame)
    net = skorch_net(max_epochs=1)
    steps = ([StandardScaler()] if pandas_output else []) + [
        RandomPruner(net, density=0.5, quota="metriq", random_state=0), net,
    ]
    pipe = make_pipeline(*steps)
    with sklearn.config_context(transform_output="pandas" if pandas_output else "default"):
        # The pruner converts inputs and labels for its own query networks...
        X_kept, _ = make_pipeline(*steps[:-1]).fit_resample(X, labels)
        assert len(X_kept) == round(0.5 * len(labels))
        # ...the final step would get the kept rows as they came and fail
        # inside skorch: skprune's Pipeline says so before pruning, with the
        # recipe. Behind a transformer only the network can tell.
        if pandas_output:
            with pytest.raises((TypeError, RuntimeError, IndexError)):
                pipe.fit(X, labels)
        else:
            with pytest.raises(ValueError, match="skorch NeuralNetClassifier.*Labels and inputs"):
                pipe.fit(X, labels)


@pytest.mark.parametrize("case", CASES)
def test_skorch_pipeline_documented_recipe_works(digits, frame, case):
    X, labels, pandas_output = _case(case, digits, frame)
    encoder = LabelEncoder().fit(labels)
    net = skorch_net()
    quota = "metriq" if case == "strings" else "balanced"
    steps = ([StandardScaler()] if pandas_output else []) + [
        RandomPruner(clone(net), density=0.5, quota=quota, random_state=0),
        to_float32(), net,
    ]
    pipe = make_pipeline(*steps)
    torch.manual_seed(0)
    with sklearn.config_context(transform_output="pandas" if pandas_output else "default"):
        pipe.fit(X, encoder.transform(labels))
        predicted = encoder.inverse_transform(pipe.predict(X))
    assert predicted.dtype == np.asarray(labels).dtype
    assert np.mean(predicted == np.asarray(labels)) > 0.5


def test_docs_give_the_skorch_recipe():
    text = DOCS.read_text()
    section = text[text.index("Labels and inputs\n====="):]
    for recipe in ('LabelEncoder', 'FunctionTransformer(np.array, kw_args={"dtype": np.float32})',
                   'set_output(transform="default")', "DataFrameTransformer", "RecipeNet",
                   "unexpected keyword argument", "invalid data type", "clone(net)",
                   "neuralnetclassifier__max_epochs"):
        assert recipe in section, recipe


# --- the shared net ----------------------------------------------------------------


def test_shared_net_trap():
    net = skorch_net(max_epochs=10)
    pipe = make_pipeline(RandomPruner(net, quota="metriq"), net)
    pipe.set_params(neuralnetclassifier__max_epochs=50)
    assert pipe[0].estimator is pipe[-1]
    assert pipe[0].estimator.max_epochs == 50  # the trap: the pruner's changed too
    # clone (GridSearchCV, cross_validate) separates the two steps...
    searched = clone(make_pipeline(RandomPruner(net, quota="metriq"), net))
    searched.set_params(neuralnetclassifier__max_epochs=20)
    assert (searched[0].estimator.max_epochs, searched[-1].max_epochs) == (50, 20)
    # ...and the documented fix does so from the start.
    net = skorch_net(max_epochs=10)
    pipe = make_pipeline(RandomPruner(clone(net), quota="metriq"), net)
    pipe.set_params(neuralnetclassifier__max_epochs=50)
    assert (pipe[0].estimator.max_epochs, pipe[-1].max_epochs) == (10, 50)
    pipe.set_params(randompruner__estimator__max_epochs=3)
    assert (pipe[0].estimator.max_epochs, pipe[-1].max_epochs) == (3, 50)


# --- pandas 3: no "NumPy array is not writable" ------------------------------------


def test_the_warning_check_works(every_torch_warning, frame):
    array = frame.to_numpy()
    if array.flags.writeable:
        pytest.skip("this pandas hands out writable arrays (no copy-on-write)")
    with pytest.warns(UserWarning, match=NOT_WRITABLE):
        torch.as_tensor(array)
    with pytest.warns(UserWarning, match=NOT_WRITABLE):  # every time, not once
        torch.as_tensor(array)


def test_net_inputs_copies_only_read_only_arrays(frame):
    array = np.zeros((3, 2), dtype=np.float32)
    assert net_inputs(array) is array
    array.flags.writeable = False
    copied = net_inputs(array)
    assert copied.flags.writeable and copied is not array
    np.testing.assert_array_equal(copied, array)


@pytest.mark.filterwarnings(f"error:{NOT_WRITABLE}")
@pytest.mark.parametrize("pruner", ["el2n", "metriq"])
def test_no_not_writable_warning_from_dataframes(every_torch_warning, digits, frame, pruner):
    _, y = digits
    torch.manual_seed(0)
    pipe = pruner_pipeline(recipe_net(max_epochs=1), pruner).fit(frame, y)
    pipe.predict(frame)
    # A plain skorch net: the pruner's query training, then the documented step.
    net = skorch_net(max_epochs=1)
    pipe = make_pipeline(pruner_pipeline(net, pruner)[0], to_float32(), net).fit(frame, y)
    pipe.predict(frame)
    with sklearn.config_context(transform_output="pandas"):
        pipe = make_pipeline(StandardScaler(), *pruner_pipeline(recipe_net(max_epochs=1), pruner))
        pipe.fit(frame, y).predict(frame)
