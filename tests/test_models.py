"""Networks, recipes and the skorch net that trains them."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.dataset import Dataset
from skorch.helper import SliceDict

from skprune import RandomPruner, make_pipeline
from skprune._query_training import make_query_net
from skprune.datasets import load_digits_images
from skprune.models import (
    MLP,
    RECIPES,
    VGG,
    RandomCropFlip,
    RecipeNet,
    ResNet18,
    SmallCNN,
    StepDecay,
    make_net,
)
from skprune.models._augment import AugmentedBatches, make_augmentation


@pytest.fixture(scope="module")
def digits_images():
    return load_digits_images()


# --- forward shapes ------------------------------------------------------------


@pytest.mark.parametrize(
    "model, input_shape",
    [
        ("mlp", (1, 8, 8)), ("mlp", (1, 28, 28)), ("mlp", (3, 32, 32)), ("mlp", None),
        ("cnn", (1, 8, 8)), ("cnn", (1, 28, 28)), ("cnn", (3, 32, 32)), ("cnn", (3, 64, 64)),
        ("cnn", None),
        ("vgg16", (3, 32, 32)), ("vgg16", (1, 32, 32)), ("vgg16", (3, 64, 64)),
        ("vgg19", (3, 32, 32)), ("vgg19", (3, 64, 64)),
        ("resnet18", (3, 32, 32)), ("resnet18", (3, 64, 64)), ("resnet18", (1, 28, 28)),
    ],
)  # fmt: skip
def test_forward_shape(model, input_shape):
    net = make_net(model, 7, input_shape=input_shape).initialize()
    shape = input_shape or (3, 32, 32)
    net.module_.eval()
    with torch.no_grad():
        logits = net.module_(torch.rand(2, *shape))
    assert logits.shape == (2, 7)


def test_module_constructors():
    assert MLP(64, 5, hidden=(16, 8))(torch.zeros(3, 64)).shape == (3, 5)
    assert SmallCNN(3, 4, input_size=(16, 24))(torch.zeros(2, 3, 16, 24)).shape == (2, 4)
    resnet = ResNet18(in_channels=1, n_classes=3)
    assert resnet.conv1.kernel_size == (3, 3) and resnet.conv1.stride == (1, 1)
    assert isinstance(resnet.maxpool, torch.nn.Identity)
    vgg = VGG(19, in_channels=3, n_classes=100)
    n_convs = sum(isinstance(layer, torch.nn.Conv2d) for layer in vgg.features)
    n_norms = sum(isinstance(layer, torch.nn.BatchNorm2d) for layer in vgg.features)
    assert (n_convs, n_norms, vgg.classifier.in_features) == (16, 16, 512)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in VGG(16).features) == 13


def test_too_small_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 32×32"):
        make_net("vgg16", 10, input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match="at least 32×32"):
        VGG(16)(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 4×4"):
        SmallCNN(1, 10, input_size=3)
    with pytest.raises(ValueError, match="depth"):
        VGG(17)


# --- make_net and recipes ------------------------------------------------------


@pytest.mark.parametrize(
    "recipe, model, lr, weight_decay, batch_size, max_epochs, milestones",
    [
        ("paper-cifar100-vgg19", "vgg19", 0.1, 5e-4, 128, 160, [80, 120]),
        ("paper-tinyimagenet-resnet18", "resnet18", 0.2, 1e-4, 256, 200, [100, 150]),
    ],
)
def test_paper_recipes(recipe, model, lr, weight_decay, batch_size, max_epochs, milestones):
    n_classes = 100 if "cifar100" in recipe else 200
    net = make_net(model, n_classes, recipe)
    params = net.get_params()
    assert params["optimizer"] is torch.optim.SGD and params["optimizer__momentum"] == 0.9
    assert (params["lr"], params["optimizer__weight_decay"]) == (lr, weight_decay)
    assert (params["batch_size"], params["max_epochs"]) == (batch_size, max_epochs)
    assert params["criterion"] is torch.nn.CrossEntropyLoss
    assert params["augment"] == "crop-flip" and params["device"] == "auto"
    name, schedule = net.callbacks[0]
    assert name == "lr_schedule" and schedule.gamma == 0.2
    assert schedule.milestones(net.max_epochs) == milestones
    # The drops are fractions: a longer (pruned-run) schedule moves them.
    assert schedule.milestones(2 * max_epochs) == [2 * m for m in milestones]


def test_every_recipe_builds_its_model():
    for name, recipe in RECIPES.items():
        net = make_net(recipe.model, 10, name)
        assert net.max_epochs == recipe.max_epochs and net.lr == recipe.lr


def test_make_net_overrides(digits_images):
    extra = ("extra", StepDecay())
    net = make_net(
        "mlp", 10, "digits-mlp", max_epochs=3, lr=0.01, module__hidden=(16,),
        callbacks=[extra], augment="flip", device="cpu",
    )  # fmt: skip
    assert (net.max_epochs, net.lr, net.module__hidden, net.augment) == (3, 0.01, (16,), "flip")
    assert net.module__in_features == 64
    assert [name for name, _ in net.callbacks] == ["lr_schedule", "extra"]
    assert net.get_params()["device"] == "cpu"


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("transformer", 10), {}, "Unknown model 'transformer'. Valid models: 'mlp'"),
        (("mlp", 10, "imagenet"), {}, "Valid recipes: 'paper-cifar100-vgg19'"),
        (("mlp", 1), {}, "n_classes"),
        (("cnn", 10), {"input_shape": (28, 28)}, "input_shape"),
    ],
)
def test_make_net_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_net(*args, **kwargs)


def test_step_decay_follows_max_epochs(digits_images):
    data = digits_images
    net = make_net("mlp", 10, "digits-mlp", max_epochs=8, lr=0.1, batch_size=256)
    net.fit(data.X_train, data.y_train)
    expected = [0.1] * 4 + [0.02] * 2 + [0.004] * 2
    np.testing.assert_allclose(net.history[:, "lr"], expected)
    # Changed after make_net, as the benchmarks do for pruned runs.
    net.set_params(max_epochs=4).fit(data.X_train, data.y_train)
    np.testing.assert_allclose(net.history[:, "lr"], [0.1, 0.1, 0.02, 0.004])
    # Each fit runs the whole schedule, also when warm-started.
    net.set_params(warm_start=True).fit(data.X_train, data.y_train)
    np.testing.assert_allclose(net.history[-4:, "lr"], [0.1, 0.1, 0.02, 0.004])



def test_step_decay_floor_truncates_the_drops_as_drop_does(digits_images):
    # DRoP's epochs_correction truncates: int(120 * 346 / 160) = 259 (round: 260).
    assert StepDecay().milestones(346) == [173, 260]
    assert StepDecay(rounding="floor").milestones(346) == [173, 259]
    assert StepDecay(rounding="floor").milestones(160) == [80, 120]
    net = make_net("mlp", 10, "digits-mlp", max_epochs=7, lr=0.1, batch_size=256,
                   callbacks__lr_schedule__rounding="floor")
    net.fit(digits_images.X_train, digits_images.y_train)
    # floor(3.5) = 3 and floor(5.25) = 5, where rounding gives 4 and 5.
    np.testing.assert_allclose(net.history[:, "lr"], [0.1] * 3 + [0.02] * 2 + [0.004] * 2)
    with pytest.raises(ValueError, match="rounding must be 'round' or 'floor'"):
        StepDecay(rounding="down").milestones(10)

# --- device ----------------------------------------------------------------------


def test_auto_device_resolves_to_cpu_without_cuda(monkeypatch, digits_images):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    net = make_net("mlp", 10, "digits-mlp", max_epochs=1)
    net.fit(digits_images.X_train, digits_images.y_train)
    assert net.device == "cpu"
    assert all(p.device.type == "cpu" for p in net.module_.parameters())
    assert net.get_params()["device"] == "auto" and clone(net).get_params()["device"] == "auto"


def test_auto_device_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    net = make_net("mlp", 10)
    assert net.device == "cuda" and net.get_params()["device"] == "auto"
    assert make_net("mlp", 10, device="cpu").device == "cpu"


@pytest.mark.parametrize("device, match", [
    ("cuda", "CUDA is not available"),
    ("cuda:7", "CUDA is not available"),
    ("gpu0", "is not a torch device"),
])
def test_a_missing_device_is_named_before_anything_trains(monkeypatch, digits_images, device,
                                                          match):
    from skprune import EL2NPruner

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = digits_images
    with pytest.raises(ValueError, match=f"device='{device}', .*{match}|device='{device}' {match}"):
        make_net("mlp", 10, "digits-mlp", max_epochs=1, device=device).fit(data.X_train,
                                                                             data.y_train)
    net = make_net("mlp", 10, "digits-mlp", max_epochs=1, device=device)
    with pytest.raises(ValueError, match="device="):
        EL2NPruner(net, random_state=0).fit(data.X_train, data.y_train)


def test_query_nets_ignore_the_estimators_classes_and_shuffled_validation(digits_images):
    # RecipeNet's classes name labels; a query net is given class positions.
    # A shuffling validation iterator would pair scores with the wrong rows.
    from skprune import EL2NPruner

    data = digits_images
    labels = np.array(list("abcdefghij"))[data.y_train]
    plain = make_net("mlp", 10, "digits-mlp", max_epochs=2)
    scores = EL2NPruner(plain, random_state=0).fit(data.X_train, labels).scores_
    for params in ({"classes": list("abcdefghij")}, {"iterator_valid__shuffle": True}):
        net = make_net("mlp", 10, "digits-mlp", max_epochs=2, **params)
        np.testing.assert_allclose(
            EL2NPruner(net, random_state=0).fit(data.X_train, labels).scores_, scores,
            rtol=1e-6)


def test_clone_and_pickle(digits_images):
    data = digits_images
    net = make_net("cnn", 10, "digits-cnn", max_epochs=1, augment="crop")
    cloned = clone(net)
    assert type(cloned) is RecipeNet
    assert cloned.get_params(deep=False).keys() == net.get_params(deep=False).keys()
    net.fit(data.X_train, data.y_train)
    restored = pickle.loads(pickle.dumps(net))
    assert restored.get_params()["device"] == "auto" and restored.augment == "crop"
    np.testing.assert_allclose(restored.predict_proba(data.X_test), net.predict_proba(data.X_test))


# --- augmentation ------------------------------------------------------------------


class InputRecorder(torch.nn.Module):
    """A linear model that keeps every input batch, by train/eval mode."""

    def __init__(self, n_features=192, n_classes=2):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_classes)
        self.seen = {True: [], False: []}

    def forward(self, X):
        self.seen[self.training].append(X.detach().clone())
        return self.linear(X.flatten(1))


def test_augmentation_in_training_only():
    rng = np.random.RandomState(0)
    X = rng.uniform(0.1, 1, (16, 3, 8, 8)).astype(np.float32)
    y = np.arange(16) % 2
    net = RecipeNet(
        InputRecorder, augment="crop-flip", max_epochs=2, batch_size=16, train_split=None,
        verbose=0,
    )  # fmt: skip
    torch.manual_seed(0)
    net.fit(X, y)
    trained_on = net.module_.seen[True]
    assert len(trained_on) == 2
    assert all(not torch.equal(batch, torch.from_numpy(X)) for batch in trained_on)
    assert all(batch.shape == X.shape for batch in trained_on)

    # Predictions and forward passes, the pruners' scoring included, see the data as it is.
    net.module_.seen[False].clear()
    net.predict_proba(X)
    net.forward(X)
    query = make_query_net(net, owner="test")
    query.initialize()
    query.forward(X)
    query_inputs = query.module_.seen[False]
    for batch in net.module_.seen[False] + query_inputs:
        np.testing.assert_array_equal(batch.numpy(), X)


def test_get_iterator_wraps_training_only():
    net = make_net("cnn", 2, "digits-cnn", augment="crop-flip").initialize()
    dataset = Dataset(np.zeros((4, 1, 8, 8), np.float32), np.zeros(4, np.int64))
    assert isinstance(net.get_iterator(dataset, training=True), AugmentedBatches)
    assert not isinstance(net.get_iterator(dataset, training=False), AugmentedBatches)
    assert not isinstance(
        make_net("cnn", 2, "digits-cnn").initialize().get_iterator(dataset, training=True),
        AugmentedBatches,
    )


def test_augmented_batches_leave_other_inputs_alone():
    torch.manual_seed(0)
    images = torch.rand(8, 3, 32, 32) + 0.1
    index = torch.arange(8)
    batches = AugmentedBatches([(SliceDict(X=images, idx=index), index)], RandomCropFlip())
    assert len(batches) == 1
    ((Xb, yb),) = list(batches)
    assert isinstance(Xb, SliceDict) and not torch.equal(Xb["X"], images)
    assert torch.equal(Xb["idx"], index) and torch.equal(yb, index)


def test_random_crop_shifts_within_padding():
    torch.manual_seed(0)
    images = torch.rand(64, 2, 10, 12) + 1  # no zeros, so padding shows
    cropped = RandomCropFlip(flip=False, padding=2)(images)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    offsets = set()
    for original, result in zip(padded, cropped, strict=True):
        matches = [
            (top, left)
            for top in range(5)
            for left in range(5)
            if torch.equal(original[:, top : top + 10, left : left + 12], result)
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 10


def test_random_flip_mirrors_about_half():
    torch.manual_seed(0)
    images = torch.rand(200, 1, 4, 4)
    flipped = RandomCropFlip(crop=False)(images)
    mirrored = [
        torch.equal(result, image.flip(-1)) for image, result in zip(images, flipped, strict=True)
    ]
    kept = [torch.equal(result, image) for image, result in zip(images, flipped, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 70 < sum(mirrored) < 130


@pytest.mark.parametrize("size, padding", [(64, 4), (32, 4), (28, 2), (8, 1)])
def test_default_crop_padding(size, padding):
    torch.manual_seed(0)
    images = torch.ones(256, 1, size, size)
    cropped = RandomCropFlip(flip=False)(images)
    # The widest zero border any image got is the padding.
    zero_rows = (cropped.sum(dim=(1, 3)) == 0).sum(dim=1)
    assert zero_rows.max() == padding


def test_bad_augment_is_refused():
    with pytest.raises(ValueError, match="augment must be"):
        make_augmentation("rotate")
    with pytest.raises(ValueError, match="augment must be"):
        make_net("cnn", 2, "digits-cnn", augment="rotate").initialize()
    assert make_augmentation(None) is None


# --- end to end --------------------------------------------------------------------


def test_pipeline_with_random_pruner(digits_images):
    data = digits_images
    torch.manual_seed(0)
    pipe = make_pipeline(
        RandomPruner(density=0.5, random_state=0),
        make_net("cnn", 10, "digits-cnn", max_epochs=8),
    )
    pipe.fit(data.X_train, data.y_train)
    assert pipe[0].sample_indices_.size == round(0.5 * data.X_train.shape[0])
    assert pipe.score(data.X_test, data.y_test) > 0.6
    assert pipe.predict_proba(data.X_test).shape == (data.X_test.shape[0], 10)


def test_paper_recipe_trains_a_few_steps():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(8, 3, 32, 32))  # float64 on purpose: cast by the net
    y = np.arange(8, dtype=np.int32) % 4
    net = make_net(
        "resnet18", 4, "paper-tinyimagenet-resnet18", input_shape=(3, 32, 32),
        max_epochs=2, batch_size=4,
    )  # fmt: skip
    torch.manual_seed(0)
    net.fit(X, y)
    assert np.isfinite(net.history[:, "train_loss"]).all()
    assert net.predict(X).shape == (8,)
