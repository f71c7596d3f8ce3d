"""Calling a torch module as skorch does, and checking what it returns."""

import warnings
from collections.abc import Mapping
from contextlib import contextmanager

import torch

#: Outputs whose true-class probabilities skprune knows how to read.
OUTPUT_KINDS = ("probabilities", "logits")


@contextmanager
def eval_mode(module):
    """Context in which ``module`` is in eval mode without gradients, then as it was.

    Scoring and prediction passes read the network as it would predict:
    dropout off, batch norm on its running statistics.
    """
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(training)


def forward(module, inputs):
    """Call ``module`` the way skorch does: a dict of inputs becomes keyword arguments."""
    if isinstance(inputs, Mapping):
        return module(**inputs)
    return module(inputs)


def final_linear(module, inputs, owner):
    """The ``torch.nn.Linear`` layer called last when ``module`` runs on ``inputs``.

    Its input is the network's penultimate representation (the embedding
    that CoreSet and prototype scores use) and its parameters the "last
    layer" of GraNd's cheap variant.

    Parameters
    ----------
    module : torch.nn.Module
    inputs : tensor or dict of tensors
        One batch, on the module's device.
    owner : str
        What needs the layer, used in the error message.
    """
    called = []
    hooks = [
        layer.register_forward_hook(lambda layer, args, output: called.append(layer))
        for layer in module.modules()
        if isinstance(layer, torch.nn.Linear)
    ]
    try:
        with eval_mode(module):
            forward(module, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    if not called:
        raise ValueError(
            f"{owner} reads the final torch.nn.Linear layer of the network, but "
            f"{type(module).__name__} calls none. End the module with a torch.nn.Linear "
            "classifier layer."
        )
    return called[-1]


def output_kind(criterion):
    """What a skorch classifier's module outputs, judged from its criterion.

    skorch's ``NeuralNetClassifier`` applies ``log`` to the module's output
    before an ``NLLLoss``, so with that criterion (its default) the module
    outputs probabilities; ``CrossEntropyLoss`` applies the softmax itself,
    so the module outputs logits. Other criteria leave it open.

    Parameters
    ----------
    criterion : torch loss class or instance

    Returns
    -------
    kind : {"probabilities", "logits"} or None
        ``None`` when the criterion does not tell.

    Examples
    --------
    >>> import torch
    >>> from skprune.callbacks import output_kind
    >>> output_kind(torch.nn.NLLLoss), output_kind(torch.nn.CrossEntropyLoss())
    ('probabilities', 'logits')
    """
    criterion_type = criterion if isinstance(criterion, type) else type(criterion)
    if not isinstance(criterion_type, type):
        return None
    if issubclass(criterion_type, torch.nn.NLLLoss):
        return "probabilities"
    if issubclass(criterion_type, torch.nn.CrossEntropyLoss):
        return "logits"
    return None


def require_output_kind(criterion, owner):
    """:func:`output_kind` of ``criterion``, or a ``ValueError`` that gives the fix.

    Parameters
    ----------
    criterion : torch loss class or instance
    owner : str
        Name of the class that reads the output, used in the message.
    """
    kind = output_kind(criterion)
    if kind is None:
        name = getattr(criterion, "__name__", type(criterion).__name__)
        raise ValueError(
            f"{owner} reads class probabilities from the network's output and needs to "
            "know whether the module outputs probabilities or logits: use "
            "criterion=torch.nn.NLLLoss (skorch's default; the module ends with a "
            "softmax) or criterion=torch.nn.CrossEntropyLoss (the module outputs "
            f"logits); got criterion={name}."
        )
    return kind


def check_class_outputs(output, target, kind, *, warn_probabilities=False):
    """Raise a ``ValueError`` unless ``output`` holds class scores for ``target``.

    Parameters
    ----------
    output : object
        What the module returned for a batch.
    target : torch.Tensor of shape (n,)
        The batch's class indices.
    kind : {"logits", "probabilities"}
    warn_probabilities : bool, default=False
        Warn when logits are expected but every row looks like a probability
        distribution.
    """
    n = target.shape[0]
    if isinstance(output, torch.Tensor):
        output = output.detach()
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != n:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"The module must output one row of class scores per sample, of shape "
            f"(n_samples, n_classes); for a batch of {n} samples it returned {shape}. "
            "Flatten or pool to (n_samples, n_classes) in the module's forward."
        )
    n_classes = output.shape[1]
    check_labels(target, n_classes)
    if not torch.isfinite(output).all():
        raise ValueError(
            "The module's output contains NaN or infinite values; scores computed "
            "from it would be meaningless. Check the inputs and the network's "
            "weights."
        )
    if kind == "probabilities":
        if n and (float(output.min()) < 0 or float(output.max()) > 1 + 1e-4):
            raise ValueError(
                "The loss assumes that the module outputs probabilities (NLLLoss, "
                "skorch's default criterion, is applied to their log), but the output "
                f"has values in [{float(output.min()):.3g}, {float(output.max()):.3g}]. "
                "If the module outputs logits, use criterion=torch.nn.CrossEntropyLoss "
                "(for per_sample_grad_norms, criterion='cross_entropy'); otherwise end "
                "the module with a softmax."
            )
    elif warn_probabilities and n and n_classes > 1 and _looks_like_probabilities(output):
        warnings.warn(
            "The loss assumes that the module outputs logits (CrossEntropyLoss), but "
            "every output row is non-negative and sums to 1, like probabilities. If the "
            "module ends with a softmax, use criterion=torch.nn.NLLLoss "
            "(criterion='nll').",
            UserWarning,
            stacklevel=3,
        )


def check_labels(target, n_classes):
    """Raise a ``ValueError`` unless every label indexes one of ``n_classes`` outputs."""
    if target.shape[0] == 0:
        return
    low, high = (int(bound) for bound in torch.aminmax(torch.as_tensor(target)))
    if low < 0 or high >= n_classes:
        raise ValueError(
            f"Labels must index the module's {n_classes} outputs (0 to {n_classes - 1}); "
            f"got class indices from {low} to {high}. Give the module one output per "
            "class (e.g. module__n_classes or the size of its last layer)."
        )


def _looks_like_probabilities(output):
    sums = output.sum(1)
    return bool((output >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-4))
