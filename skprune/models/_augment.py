"""Training-time image augmentation, applied to whole batches."""

from collections.abc import Mapping

import torch

#: ``augment`` names -> (random crop, horizontal flip).
AUGMENTATIONS = {"crop": (True, False), "flip": (False, True), "crop-flip": (True, True)}


class RandomCropFlip:
    """Random crop after zero padding, and random horizontal flip, of an image batch.

    Works on a whole ``(n, channels, height, width)`` tensor at once, with
    an independent crop offset and flip per image, drawn from torch's global
    random generator (so seeding torch makes it reproducible).

    Parameters
    ----------
    crop : bool, default=True
        Shift each image by up to ``padding`` pixels in each direction,
        filling with zeros (a random crop of the padded image).
    flip : bool, default=True
        Mirror each image left-right with probability 1/2.
    padding : int or None, default=None
        Crop padding in pixels. ``None`` picks it from the image size: 4 for
        images of 32 pixels or more (CIFAR, TinyImageNet), 2 from 16 pixels
        (e.g. 28-pixel Fashion-MNIST), else 1.

    Examples
    --------
    >>> import torch
    >>> from skprune.models import RandomCropFlip
    >>> _ = torch.manual_seed(0)
    >>> X = torch.rand(8, 3, 32, 32)
    >>> X_augmented = RandomCropFlip()(X)
    >>> X_augmented.shape
    torch.Size([8, 3, 32, 32])
    >>> bool((X_augmented != X).any())
    True
    """

    def __init__(self, crop=True, flip=True, padding=None):
        self.crop = crop
        self.flip = flip
        self.padding = padding

    def __call__(self, X):
        if self.crop:
            X = _random_crop(X, _padding_for(X, self.padding))
        if self.flip:
            flipped = torch.rand(X.shape[0], device=X.device) < 0.5
            X = torch.where(flipped[:, None, None, None], X.flip(-1), X)
        return X

    def __repr__(self):
        return f"RandomCropFlip(crop={self.crop}, flip={self.flip}, padding={self.padding})"


def make_augmentation(augment, padding=None):
    """The batch transform an ``augment`` parameter stands for.

    Parameters
    ----------
    augment : {None, "crop", "flip", "crop-flip"} or callable
        A callable is returned as it is; it takes and returns an image
        batch tensor.
    padding : int or None, default=None
        Crop padding; see :class:`RandomCropFlip`.

    Returns
    -------
    transform : callable or None
    """
    if augment is None or callable(augment):
        return augment
    if augment not in AUGMENTATIONS:
        raise ValueError(
            f"augment must be None, one of {sorted(AUGMENTATIONS)} or a callable "
            f"taking and returning an image batch; got {augment!r}."
        )
    crop, flip = AUGMENTATIONS[augment]
    return RandomCropFlip(crop=crop, flip=flip, padding=padding)


class AugmentedBatches:
    """Iterate over a data loader's batches with their image inputs transformed.

    Only four-dimensional floating point tensors (image batches) are
    transformed, also inside dicts, lists and tuples, so that extra inputs
    carried along with the images (such as sample indices) stay as they are.

    Parameters
    ----------
    loader : iterable of (X, y) batches
    transform : callable
        Takes and returns an image batch tensor.
    device : str, torch.device or None, default=None
        Where image batches are moved before the transform (the network's
        device, where transforming is fastest); ``None`` leaves them where
        the loader puts them.
    """

    def __init__(self, loader, transform, device=None):
        self.loader = loader
        self.transform = transform
        self.device = device

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for Xb, yb in self.loader:
            yield self._apply(Xb), yb

    def _apply(self, X):
        if isinstance(X, torch.Tensor):
            if X.ndim != 4 or not X.is_floating_point():
                return X
            return self.transform(X if self.device is None else X.to(self.device))
        if isinstance(X, Mapping):
            return type(X)(**{key: self._apply(value) for key, value in X.items()})
        if isinstance(X, (list, tuple)):
            return type(X)(self._apply(value) for value in X)
        return X


def _padding_for(X, padding):
    if padding is not None:
        return padding
    size = min(X.shape[-2:])
    return 4 if size >= 32 else 2 if size >= 16 else 1


def _random_crop(X, padding):
    if padding == 0:
        return X
    n, channels, height, width = X.shape
    padded = torch.nn.functional.pad(X, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n, 1), device=X.device)
    left = torch.randint(0, 2 * padding + 1, (n, 1), device=X.device)
    # Two gathers, rows then columns, crop every image at its own offset at
    # once (faster than advanced indexing, and on any device).
    rows = (top + torch.arange(height, device=X.device))[:, None, :, None]
    padded = padded.gather(2, rows.expand(n, channels, height, width + 2 * padding))
    cols = (left + torch.arange(width, device=X.device))[:, None, None, :]
    return padded.gather(3, cols.expand(n, channels, height, width))
