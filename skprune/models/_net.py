"""A skorch classifier with the benchmarks' conventions, and ``make_net``."""

import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from skorch import NeuralNetClassifier
from skorch.utils import is_dataset, to_numpy, to_tensor
from torch.nn.parameter import is_lazy

from ..utils._devices import check_device, module_device, resolve_device
from ._augment import AugmentedBatches, make_augmentation
from ._lr_schedule import StepDecay
from ._networks import MLP, VGG, ResNet18, SmallCNN
from ._recipes import DEFAULT_RECIPES, RECIPES, Recipe

#: Device types on which ``amp=True`` does nothing: without bfloat16 units a
#: CPU emulates it, and autocast makes convolutions there about ten times
#: slower than float32.
_NO_AMP_DEVICE_TYPES = frozenset({"cpu"})

#: Model name -> torch module class.
MODELS = {"mlp": MLP, "cnn": SmallCNN, "vgg16": VGG, "vgg19": VGG, "resnet18": ResNet18}


class RecipeNet(NeuralNetClassifier):
    """A skorch ``NeuralNetClassifier`` for logits, any device, and training-time augmentation.

    Differs from ``NeuralNetClassifier`` in five ways:

    * the module outputs logits and the default criterion is
      ``torch.nn.CrossEntropyLoss``;
    * ``device="auto"`` (the default) means CUDA when it is available, else
      the CPU. It is resolved whenever the net uses its device (reading
      ``net.device`` gives the resolved one), while ``get_params`` keeps
      reporting ``"auto"``, so clones and pickles resolve again on the
      machine that uses them;
    * ``augment`` transforms the image batches of training passes only
      (``get_iterator(..., training=True)``): predictions, validation and
      the pruners' scoring passes always see the data as it is;
    * two optional GPU speed-ups, both off by default: ``amp`` runs the
      net's forward passes under bfloat16 autocast, and ``channels_last``
      stores the module's convolution weights and the image batches in
      ``torch.channels_last`` memory format;
    * it takes class labels of any type, as scikit-learn classifiers do:
      strings, floats ``1.0 .. K``, integers ``1 .. K``. ``fit`` trains on
      each label's position among the sorted classes (or in the
      ``classes`` parameter), the output unit that stands for it, as the
      pruners' query networks do; ``classes_`` keeps the labels and
      ``predict`` returns them, so ``score`` and scikit-learn's metrics
      compare like with like. Labels ``0 .. K - 1`` are their own
      positions. While ``fit`` runs, callbacks see positions throughout
      (batch targets, ``predict``, ``classes_``), so skorch's scoring
      callbacks work unchanged. A warm start (``partial_fit``,
      ``warm_start=True``) keeps the classes of the first fit.

    Inputs become what a torch module expects: ``float64`` arrays are cast
    to ``float32``; a pandas ``DataFrame`` (e.g. from
    ``sklearn.set_config(transform_output="pandas")``) becomes one
    ``float32`` array of its columns, a ``Series`` one column, rather than
    skorch's dict of columns passed to ``forward`` as keyword arguments;
    read-only arrays (pandas' copy-on-write hands those out) are copied,
    as torch cannot wrap them. Usually built by :func:`make_net`.

    Parameters
    ----------
    module : torch module class or instance
        Outputs logits.
    criterion : torch criterion class, default=torch.nn.CrossEntropyLoss
    augment : {None, "crop", "flip", "crop-flip"} or callable, default=None
        Training-time augmentation: random crop of the zero-padded image,
        random horizontal flip, or both (see :class:`RandomCropFlip`); or a
        callable taking and returning an ``(n, channels, height, width)``
        tensor.
    augment_padding : int or None, default=None
        Padding of the random crop; ``None`` picks it from the image size
        (4 pixels from 32-pixel images on).
    amp : bool, default=False
        Automatic mixed precision on a GPU: run the module's forward passes
        (training, prediction, validation) under ``torch.autocast`` with
        ``bfloat16`` on the net's device type, and return the outputs as
        ``float32``, so that the loss, ``predict_proba`` and callbacks see
        full precision. The weights, the gradients and the optimizer stay
        ``float32``; bfloat16 has float32's range, so no gradient scaling is
        needed. On the CPU it does nothing: bfloat16 autocast there is
        usually several times slower than float32 (CPUs without bfloat16
        units emulate it), so that ``amp=True`` with ``device="auto"`` never
        slows down a run that lands on a CPU. Passes that call ``module_``
        directly, such as the pruners' per-sample gradient norms, stay in
        ``float32``.
    channels_last : bool, default=False
        Convert the module's four-dimensional weights and buffers to
        ``torch.channels_last`` memory format when it is initialized (layers
        that are still lazy then keep theirs), and every four-dimensional
        floating-point input batch before the forward pass. Convolutions on
        tensor cores are usually faster in this layout, most of all
        together with ``amp``; the results are the same up to floating-point
        rounding.
    device : str or torch.device, default="auto"
        ``"auto"``, or any device torch accepts.
    **kwargs
        Further ``NeuralNetClassifier`` parameters (``lr``, ``max_epochs``,
        ``optimizer__momentum``, ``callbacks``, ...).

    Attributes
    ----------
    module_, criterion_, optimizer_ : torch objects
        The initialized module, loss and optimizer (skorch's).
    history_ : skorch.History
        Per-epoch and per-batch training records (also ``history``).
    classes_ : ndarray
        Class labels seen in ``fit`` (or the ``classes`` parameter), in the
        order of the module's outputs: ``predict_proba``'s column ``k`` is
        the probability of ``classes_[k]``.

    See Also
    --------
    make_net : a RecipeNet with a model and training recipe.

    Examples
    --------
    >>> from skprune.models import MLP, RecipeNet
    >>> net = RecipeNet(MLP, module__in_features=64, augment="flip")
    >>> net.get_params()["device"], net.device in ("cpu", "cuda")
    ('auto', True)
    >>> fast = RecipeNet(MLP, module__in_features=64, amp=True, channels_last=True)
    >>> fast.get_params()["amp"], fast.get_params()["channels_last"]
    (True, True)

    String labels and a DataFrame, as a scikit-learn classifier takes them:

    >>> import numpy as np, pandas as pd
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> X, labels = pd.DataFrame(X / 16), np.array(list("abcdefghij"))[y]
    >>> _ = torch.manual_seed(0)
    >>> net = RecipeNet(MLP, module__n_classes=10, module__hidden=(64,), lr=0.05,
    ...                 optimizer__momentum=0.9, batch_size=64, max_epochs=5,
    ...                 train_split=None, verbose=0)
    >>> net.fit(X, labels).predict(X.iloc[:4])
    array(['a', 'b', 'c', 'd'], dtype='<U1')
    >>> net.classes_[:3], net.score(X, labels) > 0.8
    (array(['a', 'b', 'c'], dtype='<U1'), True)
    """

    def __init__(
        self,
        module,
        *,
        criterion=torch.nn.CrossEntropyLoss,
        augment=None,
        augment_padding=None,
        amp=False,
        channels_last=False,
        device="auto",
        **kwargs,
    ):
        super().__init__(module, criterion=criterion, device=device, **kwargs)
        self.augment = augment
        self.augment_padding = augment_padding
        self.amp = amp
        self.channels_last = channels_last

    # skorch reads ``self.device`` wherever it moves data or modules; a
    # property resolves "auto" there while the stored parameter stays as set.
    @property
    def device(self):
        return resolve_device(self.__dict__.get("device", "cpu"))

    @device.setter
    def device(self, value):
        self.__dict__["device"] = value

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        params["device"] = self.__dict__["device"]
        return params

    def __setstate__(self, state):
        # skorch maps the pickled tensors to the state's device: give it the
        # device of this machine, then keep the parameter as it was.
        requested = state.get("device")
        state["device"] = resolve_device(requested)
        # A net pickled by a callback during ``fit`` predicts labels once loaded.
        state.pop("_fitting_on_positions_", None)
        super().__setstate__(state)
        if requested == "auto":
            self.__dict__["device"] = requested

    def initialize(self):
        # Fail on a bad ``augment``, ``amp`` or ``channels_last`` before
        # training, not at the first batch.
        make_augmentation(self.augment, self.augment_padding)
        for name in ("amp", "channels_last"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}.")
        check_device(self.__dict__.get("device"))
        # A fresh net learns its classes again; a warm start (``partial_fit``,
        # ``warm_start=True``) keeps them, so that every output unit keeps
        # meaning the same class.
        self.__dict__.pop("_label_classes_", None)
        return super().initialize()

    # Labels -------------------------------------------------------------------
    # Fitted state ends in "_": skorch takes every other attribute for a
    # parameter (get_params, clone).

    @property
    def classes_(self):
        classes = self.__dict__.get("_label_classes_")
        if classes is None:
            return super().classes_
        if self.__dict__.get("_fitting_on_positions_"):
            return np.arange(classes.shape[0])
        return classes

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        labels = _label_array(y)
        if labels is None:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        classes, positions = self._encode_labels(labels)
        self.__dict__["_label_classes_"] = classes
        self.__dict__["_fitting_on_positions_"] = True
        if isinstance(y, torch.Tensor) and np.array_equal(positions, labels):
            # Labels that already are output positions stay where they are
            # (a tensor on the GPU is not copied to the host and back).
            positions = y
        try:
            return super().fit_loop(X, positions, epochs=epochs, **fit_params)
        finally:
            self.__dict__.pop("_fitting_on_positions_", None)

    def predict(self, X):
        """Class labels of the rows of ``X``: ``classes_`` of the most probable output.

        Parameters
        ----------
        X : array-like, DataFrame, Dataset or dict
            Anything ``predict_proba`` takes.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels of the type ``fit`` was given (inside ``fit``, output
            positions, as the training targets are).
        """
        proba = self.predict_proba(X)
        classes = self.__dict__.get("_label_classes_")
        if classes is None:
            return proba.argmax(axis=1)
        # Outputs past the classes (a module sized for classes that this
        # fit's labels lack) stand for none of them.
        positions = proba[:, :classes.shape[0]].argmax(axis=1)
        if self.__dict__.get("_fitting_on_positions_"):
            return positions
        return classes[positions]

    def _encode_labels(self, labels):
        """The classes, in output order, and each label's position among them."""
        if self.classes is not None and len(self.classes):
            classes = np.asarray(self.classes)
            source = "the classes parameter"
        elif self.__dict__.get("_label_classes_") is not None:
            classes = self.__dict__["_label_classes_"]
            source = "the first fit (a warm start keeps them)"
        else:
            classes = np.unique(labels)
            source = None
        if labels.dtype.kind in "fc" and np.isnan(labels).any():
            raise ValueError(
                f"{type(self).__name__} got y with {int(np.isnan(labels).sum())} NaN "
                "label(s); every sample needs a class label."
            )
        positions, known = _positions(classes, labels)
        if not known.all():
            unseen = np.unique(labels[~known])
            raise ValueError(
                f"{type(self).__name__} was given labels {unseen[:10].tolist()} that are not "
                f"among its classes {classes[:20].tolist()} (from {source}). Pass every "
                "class when building the net, e.g. classes=np.unique(y_all), to train on "
                "parts of the data that lack some classes."
            )
        return classes, positions.astype(np.int64)

    # Modules and data -------------------------------------------------------------

    def initialize_module(self):
        super().initialize_module()
        if self.channels_last:
            self.module_ = _module_to_channels_last(self.module_)
        return self

    def infer(self, x, **fit_params):
        if self.channels_last:
            x = _inputs_to_channels_last(to_tensor(x, device=self.device))
        if not self.amp:
            return super().infer(x, **fit_params)
        # ``device=None`` (skorch: leave data and module where they are)
        # means the module's device.
        device = self.device if self.device is not None else module_device(self.module_)
        device_type = torch.device(device).type
        if device_type in _NO_AMP_DEVICE_TYPES:
            return super().infer(x, **fit_params)
        with torch.autocast(device_type, dtype=torch.bfloat16):
            y_pred = super().infer(x, **fit_params)
        # Outside autocast the loss would be computed in bfloat16, and
        # predict_proba and callbacks would see rounded probabilities.
        return _to_float32(y_pred)

    def get_dataset(self, X, y=None):
        if not is_dataset(X):
            X = _net_array(X, type(self).__name__)
        if isinstance(y, np.ndarray):
            if np.issubdtype(y.dtype, np.integer):
                y = y.astype(np.int64, copy=False)
            y = _writable(y)
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        iterator = super().get_iterator(dataset, training=training)
        transform = make_augmentation(self.augment, self.augment_padding) if training else None
        if transform is None:
            return iterator
        return AugmentedBatches(iterator, transform, device=self.device)


def make_net(model, n_classes, recipe=None, *, input_shape=None, **params):
    """A :class:`RecipeNet` with one of the benchmark models and a training recipe.

    The net trains with SGD (momentum 0.9), the recipe's learning rate,
    weight decay, batch size and epochs, and a :class:`StepDecay` that
    multiplies the learning rate by 0.2 at fractions of ``max_epochs``
    (callback ``"lr_schedule"``). It trains on all the data it is given
    (``train_split=None``), shuffled, prints nothing, and runs on CUDA when
    available (``device="auto"``).

    Parameters
    ----------
    model : {"mlp", "cnn", "vgg16", "vgg19", "resnet18"}
        :class:`MLP`, :class:`SmallCNN`, :class:`VGG` (16 or 19 layers, with
        BatchNorm) or :class:`ResNet18` (CIFAR stem).
    n_classes : int
        Number of classes (outputs of the module).
    recipe : str, Recipe or None, default=None
        A key of :data:`RECIPES`, e.g. ``"paper-cifar100-vgg19"`` (lr 0.1,
        weight decay 5e-4, batch 128, 160 epochs, drops at 80 and 120,
        random crop and flip) or ``"paper-tinyimagenet-resnet18"`` (lr 0.2,
        weight decay 1e-4, batch 256, 200 epochs, drops at 100 and 150,
        random crop and flip); ``"fashion-mnist-mlp"``,
        ``"fashion-mnist-cnn"``, ``"digits-mlp"`` and ``"digits-cnn"`` are
        small CPU settings. ``None`` takes the training settings of the
        model's usual recipe (:data:`DEFAULT_RECIPES`) but no input shape.
    input_shape : tuple (channels, height, width) or (n_features,), default=None
        Shape of one input image, which sizes the module (the MLP also
        takes ``(n_features,)`` for tabular rows). ``None`` takes the
        recipe's; without a recipe, the MLP and the CNN infer it from the
        first batch, VGG and ResNet take 3 channels.
    **params
        ``NeuralNetClassifier`` parameters that override the recipe, e.g.
        ``max_epochs``, ``lr``, ``batch_size``, ``device``, ``augment``,
        ``amp``, ``channels_last`` (see :class:`RecipeNet`),
        ``module__hidden``. ``callbacks`` are added after the learning-rate
        schedule; ``callbacks__lr_schedule=None`` removes the schedule.

    Returns
    -------
    net : RecipeNet
        Not initialized; cloneable and picklable.

    Examples
    --------
    >>> import torch
    >>> from skprune.datasets import load_digits_images
    >>> from skprune.models import make_net
    >>> data = load_digits_images()
    >>> _ = torch.manual_seed(0)
    >>> net = make_net("mlp", 10, "digits-mlp", max_epochs=10)
    >>> net.fit(data.X_train, data.y_train).score(data.X_test, data.y_test) > 0.9
    True
    >>> paper = make_net("vgg19", 100, "paper-cifar100-vgg19")
    >>> paper.lr, paper.batch_size, paper.max_epochs, paper.optimizer__weight_decay
    (0.1, 128, 160, 0.0005)
    """
    if model not in MODELS:
        raise ValueError(f"Unknown model {model!r}. Valid models: {_names(MODELS)}.")
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer of at least 2; got {n_classes!r}.")
    if recipe is None:
        settings = RECIPES[DEFAULT_RECIPES[model]]
    elif isinstance(recipe, Recipe):
        settings = recipe
    elif isinstance(recipe, str) and recipe in RECIPES:
        settings = RECIPES[recipe]
    else:
        raise ValueError(
            f"Unknown recipe {recipe!r}. Valid recipes: {_names(RECIPES)}, a Recipe, or "
            "None for the model's defaults."
        )
    if input_shape is None and recipe is not None:
        input_shape = settings.input_shape

    schedule = [("lr_schedule", StepDecay(settings.lr_drops, settings.lr_gamma))]
    net_params = {
        "module": MODELS[model],
        **{
            f"module__{name}": value
            for name, value in _module_params(model, n_classes, input_shape).items()
        },
        "optimizer": torch.optim.SGD,
        "lr": settings.lr,
        "optimizer__momentum": settings.momentum,
        "optimizer__weight_decay": settings.weight_decay,
        "batch_size": settings.batch_size,
        "max_epochs": settings.max_epochs,
        "augment": settings.augment,
        "augment_padding": settings.augment_padding,
        "iterator_train__shuffle": True,
        "train_split": None,
        "verbose": 0,
        "device": "auto",
    }
    net_params.update(params)
    net_params["callbacks"] = schedule + list(params.get("callbacks") or [])
    return RecipeNet(**net_params)


def _module_params(model, n_classes, input_shape):
    """Constructor arguments of ``model``'s module for images of ``input_shape``."""
    if model == "mlp" and input_shape is not None and len(input_shape) == 1:
        # Tabular rows: an MLP needs only their number of features.
        if not (isinstance(input_shape[0], numbers.Integral) and input_shape[0] > 0):
            raise ValueError(f"input_shape must hold positive integers; got {input_shape!r}.")
        return {"in_features": int(input_shape[0]), "n_classes": n_classes}
    if input_shape is not None:
        valid = len(input_shape) == 3 and all(
            isinstance(size, numbers.Integral) and size > 0 for size in input_shape
        )
        if not valid:
            raise ValueError(
                "input_shape must be (channels, height, width), three positive integers; "
                f"got {input_shape!r}."
            )
        channels, height, width = (int(size) for size in input_shape)
    if model == "mlp":
        in_features = None if input_shape is None else channels * height * width
        return {"in_features": in_features, "n_classes": n_classes}
    if model == "cnn":
        if input_shape is None:
            return {"in_channels": None, "n_classes": n_classes, "input_size": None}
        return {"in_channels": channels, "n_classes": n_classes, "input_size": (height, width)}
    in_channels = 3 if input_shape is None else channels
    if model == "resnet18":
        return {"in_channels": in_channels, "n_classes": n_classes}
    if input_shape is not None and min(height, width) < 32:
        raise ValueError(
            f"{model} needs images of at least 32×32 pixels; got input_shape="
            f"{tuple(input_shape)}. Use 'cnn' or 'resnet18' for smaller images."
        )
    return {"depth": int(model[3:]), "in_channels": in_channels, "n_classes": n_classes}


def _names(mapping):
    return ", ".join(repr(name) for name in mapping)


def _module_to_channels_last(module):
    """``module`` with its 4-D parameters and buffers in channels_last format."""
    if any(is_lazy(tensor) for tensor in (*module.parameters(), *module.buffers())):
        # ``Module.to`` cannot touch an uninitialized parameter. Convolutions
        # still run channels_last: they follow the format of their inputs.
        return module
    return module.to(memory_format=torch.channels_last)


def _inputs_to_channels_last(x):
    """Image batches (4-D floating-point tensors) of ``x`` in channels_last format."""
    if isinstance(x, torch.Tensor):
        if x.ndim == 4 and x.is_floating_point():
            return x.contiguous(memory_format=torch.channels_last)
        return x
    if isinstance(x, Mapping):
        return {key: _inputs_to_channels_last(value) for key, value in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_inputs_to_channels_last(value) for value in x)
    return x


def _label_array(y):
    """``y`` as a 1-D numpy array of class labels, or ``None`` to leave it to skorch.

    ``None`` (labels inside a Dataset) and 2-D targets with several columns
    (class probabilities, one-hot rows) are not class labels to encode.
    """
    if y is None or is_dataset(y) or isinstance(y, Mapping):
        return None
    if isinstance(y, torch.Tensor):
        y = to_numpy(y)
    elif hasattr(y, "to_numpy"):  # pandas
        y = y.to_numpy()
    try:
        y = np.asarray(y)
    except (TypeError, ValueError):
        return None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1 or y.dtype.kind not in "biufUSO":
        return None
    return y


def _positions(classes, labels):
    """Position of every label in ``classes`` (any order), and whether it is there."""
    order = np.argsort(classes, kind="stable")
    ordered = classes[order]
    missing = np.zeros(labels.shape, np.int64), np.zeros(labels.shape, bool)
    if ordered.size == 0:
        return missing
    try:
        index = np.searchsorted(ordered, labels).clip(max=ordered.size - 1)
        known = np.asarray(ordered[index] == labels, dtype=bool)
    except TypeError:  # labels and classes of types that do not compare
        return missing
    return order[index], known


def _net_array(X, owner):
    """``X`` as a module takes it: pandas as one float32 array, float64 as float32.

    Arrays torch cannot wrap without a warning (read-only, as pandas'
    copy-on-write returns them) are copied; anything else is left to skorch.
    """
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        numeric = [pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
                   for dtype in X.dtypes]
        if not all(numeric):
            bad = {str(column): str(dtype) for column, dtype, ok
                   in zip(X.columns, X.dtypes, numeric, strict=True) if not ok}
            raise ValueError(
                f"{owner} turns a DataFrame into one float32 array, but these columns are "
                f"not numeric: {dict(list(bad.items())[:5])}. Encode them first (e.g. "
                "sklearn.compose.ColumnTransformer with a OneHotEncoder), or pass a dict "
                "of arrays for a module whose forward takes several inputs."
            )
        X = X.to_numpy(dtype=np.float32, na_value=np.nan)
    if isinstance(X, np.ndarray):
        if X.dtype == np.float64:
            return X.astype(np.float32)
        return _writable(X)
    return X


def _writable(array):
    """``array``, copied if it is read-only (torch warns when it wraps one)."""
    return array if array.flags.writeable else array.copy()


def _to_float32(y_pred):
    """Half-precision tensors of a module's output (any nesting) as float32."""
    if isinstance(y_pred, torch.Tensor):
        if y_pred.dtype in (torch.bfloat16, torch.float16):
            return y_pred.float()
        return y_pred
    if isinstance(y_pred, (list, tuple)):
        return type(y_pred)(_to_float32(value) for value in y_pred)
    return y_pred
