"""Networks and training recipes of the paper's benchmarks, as skorch classifiers.

:func:`make_net` returns a :class:`RecipeNet` (a skorch
``NeuralNetClassifier``) with one of the benchmark models (:class:`MLP`,
:class:`SmallCNN`, :class:`VGG`, :class:`ResNet18`) and a training recipe
from :data:`RECIPES`: the paper's SGD settings with step decays, or small
CPU settings.
"""

from ._augment import AUGMENTATIONS, RandomCropFlip
from ._lr_schedule import StepDecay
from ._net import MODELS, RecipeNet, make_net
from ._networks import MLP, VGG, ResNet18, SmallCNN, vgg16_bn, vgg19_bn
from ._recipes import DEFAULT_RECIPES, RECIPES, Recipe

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_RECIPES",
    "MLP",
    "MODELS",
    "RECIPES",
    "RandomCropFlip",
    "Recipe",
    "RecipeNet",
    "ResNet18",
    "SmallCNN",
    "StepDecay",
    "VGG",
    "make_net",
    "vgg16_bn",
    "vgg19_bn",
]
