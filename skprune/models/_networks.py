"""The networks of the benchmarks: torch modules that output logits."""

import numbers

import torch
from torch import nn
from torchvision.models import vgg as torchvision_vgg
from torchvision.models.resnet import BasicBlock, ResNet

#: VGG depth -> torchvision's layer configuration.
_VGG_DEPTHS = {11: "A", 13: "B", 16: "D", 19: "E"}


class MLP(nn.Module):
    """A multilayer perceptron on flattened inputs: Linear and ReLU layers.

    Parameters
    ----------
    in_features : int or None, default=None
        Number of input values per sample (e.g. 784 for 1×28×28 images).
        ``None`` infers it from the first batch (``LazyLinear``).
    n_classes : int, default=10
        Number of outputs (logits).
    hidden : tuple of int, default=(256, 128)
        Width of every hidden layer.

    Examples
    --------
    >>> import torch
    >>> from skprune.models import MLP
    >>> MLP(64, n_classes=10)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_features=None, n_classes=10, hidden=(256, 128)):
        super().__init__()
        layers = [nn.Flatten()]
        for width in hidden:
            layers += [_linear(in_features, width), nn.ReLU(inplace=True)]
            in_features = width
        layers.append(_linear(in_features, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


class SmallCNN(nn.Module):
    """Two convolution blocks, each halving the image, and a one-hidden-layer head.

    Each block is a 3×3 convolution, ReLU and 2×2 max-pooling. Small enough
    to train on a CPU: for Fashion-MNIST, digits and quick experiments.

    Parameters
    ----------
    in_channels : int or None, default=1
        Channels of the input images; ``None`` infers them from the first
        batch.
    n_classes : int, default=10
        Number of outputs (logits).
    input_size : int, (int, int) or None, default=None
        Height and width of the input images (at least 4 pixels), which size
        the head; ``None`` infers them from the first batch.
    channels : (int, int), default=(16, 32)
        Output channels of the two convolutions.
    hidden : int, default=128
        Width of the head's hidden layer.

    Examples
    --------
    >>> import torch
    >>> from skprune.models import SmallCNN
    >>> SmallCNN(1, n_classes=10, input_size=28)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels=1, n_classes=10, input_size=None, channels=(16, 32), hidden=128):
        super().__init__()
        first, second = channels
        if input_size is None:
            n_features = None
        else:
            height, width = _pair(input_size)
            if min(height, width) < 4:
                raise ValueError(
                    f"SmallCNN needs images of at least 4×4 pixels (it halves them "
                    f"twice); got input_size={input_size!r}."
                )
            n_features = second * (height // 4) * (width // 4)
        first_conv = (
            nn.LazyConv2d(first, 3, padding=1)
            if in_channels is None
            else nn.Conv2d(in_channels, first, 3, padding=1)
        )
        self.features = nn.Sequential(
            first_conv,
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            _linear(n_features, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, X):
        return self.classifier(self.features(X))


class VGG(nn.Module):
    """VGG with BatchNorm for 32×32 images (CIFAR): torchvision's layers, a 512→classes head.

    The convolutional part is torchvision's ``vgg{depth}_bn``; after its five
    poolings a 32×32 image is 1×1×512, so the three-layer ImageNet head is
    replaced by a single linear layer, as usual for CIFAR. Larger images are
    averaged to 1×1 first.

    Parameters
    ----------
    depth : {11, 13, 16, 19}, default=16
        Number of weight layers.
    in_channels : int, default=3
        Channels of the input images.
    n_classes : int, default=10
        Number of outputs (logits).

    Examples
    --------
    >>> import torch
    >>> from skprune.models import VGG
    >>> VGG(19, n_classes=100)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 100])
    """

    def __init__(self, depth=16, in_channels=3, n_classes=10):
        super().__init__()
        if depth not in _VGG_DEPTHS:
            raise ValueError(f"VGG depth must be one of {sorted(_VGG_DEPTHS)}; got {depth!r}.")
        self.features = torchvision_vgg.make_layers(
            torchvision_vgg.cfgs[_VGG_DEPTHS[depth]], batch_norm=True
        )
        if in_channels != 3:
            # torchvision's layers always start from RGB.
            self.features[0] = nn.Conv2d(in_channels, self.features[0].out_channels, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, n_classes)
        self._initialize_weights()

    def _initialize_weights(self):
        # torchvision's VGG initialization (its layer builder leaves
        # PyTorch's defaults).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, X):
        if min(X.shape[-2:]) < 32:
            raise ValueError(
                f"VGG halves its input five times and needs images of at least 32×32 "
                f"pixels; got {tuple(X.shape[-2:])}. Use SmallCNN or ResNet18 for "
                "smaller images."
            )
        return self.classifier(torch.flatten(self.pool(self.features(X)), 1))


def vgg16_bn(in_channels=3, n_classes=10):
    """VGG-16 with BatchNorm for 32×32 images; see :class:`VGG`.

    Parameters
    ----------
    in_channels : int, default=3
    n_classes : int, default=10

    Returns
    -------
    module : VGG

    Examples
    --------
    >>> import torch
    >>> from skprune.models import vgg16_bn
    >>> vgg16_bn(n_classes=10)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    return VGG(16, in_channels, n_classes)


def vgg19_bn(in_channels=3, n_classes=100):
    """VGG-19 with BatchNorm for 32×32 images (the paper's CIFAR-100 network); see :class:`VGG`.

    Parameters
    ----------
    in_channels : int, default=3
    n_classes : int, default=100

    Returns
    -------
    module : VGG

    Examples
    --------
    >>> import torch
    >>> from skprune.models import vgg19_bn
    >>> vgg19_bn(n_classes=100)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 100])
    """
    return VGG(19, in_channels, n_classes)


class ResNet18(ResNet):
    """torchvision's ResNet-18 with the CIFAR stem: a 3×3 stride-1 first convolution, no max-pool.

    The ImageNet stem (7×7 stride-2 convolution and max-pool) would shrink a
    32×32 image to 8×8 before the first block; the CIFAR stem keeps the full
    resolution. Global average pooling makes 32×32 (CIFAR) and 64×64
    (TinyImageNet) inputs both work.

    Parameters
    ----------
    in_channels : int, default=3
        Channels of the input images.
    n_classes : int, default=10
        Number of outputs (logits).

    Examples
    --------
    >>> import torch
    >>> from skprune.models import ResNet18
    >>> ResNet18(n_classes=200)(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 200])
    """

    def __init__(self, in_channels=3, n_classes=10):
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=n_classes)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        # As torchvision initializes the convolution it replaces.
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.maxpool = nn.Identity()


def _linear(in_features, out_features):
    if in_features is None:
        return nn.LazyLinear(out_features)
    return nn.Linear(in_features, out_features)


def _pair(size):
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    height, width = size
    return int(height), int(width)
