"""Training recipes: the paper's settings and small CPU-sized ones."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """How to train one network on one dataset: SGD with momentum and step decays.

    Parameters
    ----------
    model : str
        The model the recipe was made for (a key of ``MODELS``).
    input_shape : tuple of int
        ``(channels, height, width)`` of the dataset's images.
    lr : float
        Initial learning rate.
    weight_decay : float
        L2 penalty of SGD.
    batch_size : int
    max_epochs : int
        Epochs of a full-data run.
    lr_drops : tuple of float, default=(0.5, 0.75)
        Fractions of ``max_epochs`` after which the learning rate drops.
    lr_gamma : float, default=0.2
        Factor of each drop.
    momentum : float, default=0.9
    augment : {None, "crop", "flip", "crop-flip"}, default=None
        Training-time augmentation.
    augment_padding : int or None, default=None
        Padding of the random crop; ``None`` picks it from the image size.
    """

    model: str
    input_shape: tuple
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    lr_drops: tuple = (0.5, 0.75)
    lr_gamma: float = 0.2
    momentum: float = 0.9
    augment: str | None = None
    augment_padding: int | None = None


_CIFAR = (3, 32, 32)
_TINY_IMAGENET = (3, 64, 64)
_FASHION_MNIST = (1, 28, 28)
_DIGITS = (1, 8, 8)

#: Recipe name -> :class:`Recipe`. The ``paper-*`` recipes are the paper's
#: (drops at 80/120 of 160 and 100/150 of 200 epochs); the others are small
#: settings that train in seconds to minutes on a CPU.
RECIPES = {
    "paper-cifar100-vgg19": Recipe(
        "vgg19", _CIFAR, lr=0.1, weight_decay=5e-4, batch_size=128, max_epochs=160,
        augment="crop-flip", augment_padding=4,
    ),
    # The paper's CIFAR recipe, for CIFAR-10 with the smaller VGG.
    "paper-cifar10-vgg16": Recipe(
        "vgg16", _CIFAR, lr=0.1, weight_decay=5e-4, batch_size=128, max_epochs=160,
        augment="crop-flip", augment_padding=4,
    ),
    "paper-tinyimagenet-resnet18": Recipe(
        "resnet18", _TINY_IMAGENET, lr=0.2, weight_decay=1e-4, batch_size=256,
        max_epochs=200, augment="crop-flip", augment_padding=4,
    ),
    "fashion-mnist-mlp": Recipe(
        "mlp", _FASHION_MNIST, lr=0.05, weight_decay=5e-4, batch_size=128, max_epochs=15,
    ),
    "fashion-mnist-cnn": Recipe(
        "cnn", _FASHION_MNIST, lr=0.05, weight_decay=5e-4, batch_size=128, max_epochs=10,
    ),
    "digits-mlp": Recipe(
        "mlp", _DIGITS, lr=0.1, weight_decay=1e-4, batch_size=64, max_epochs=30,
    ),
    "digits-cnn": Recipe(
        "cnn", _DIGITS, lr=0.1, weight_decay=1e-4, batch_size=32, max_epochs=20,
    ),
}  # fmt: skip

#: Model -> the recipe ``make_net`` uses when none is given.
DEFAULT_RECIPES = {
    "mlp": "fashion-mnist-mlp",
    "cnn": "fashion-mnist-cnn",
    "vgg16": "paper-cifar10-vgg16",
    "vgg19": "paper-cifar100-vgg19",
    "resnet18": "paper-tinyimagenet-resnet18",
}
