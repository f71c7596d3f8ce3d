"""The norm rules: per-sample gradients of a layer's parameters from what the layer saw.

When per-sample losses are summed, row ``i`` of the gradient with respect to
a layer's output is the gradient of sample ``i``'s own loss (as long as the
network treats samples independently). Each sample's gradient with respect to
the layer's parameters then follows from that row and the layer's input row
``i`` alone, so no backward pass through the parameters is needed, and for
many layers not even the per-sample gradients themselves: only their squared
norms ("ghost norms").

A rule is a :class:`NormRule` registered for one or more layer classes with
:func:`register_norm_rule`; the library's own rules (one module per layer
family: :mod:`~skprune.gradients._linear`, :mod:`~skprune.gradients._conv`,
:mod:`~skprune.gradients._normalization`,
:mod:`~skprune.gradients._embedding`) are registered the same way, and a
user's registration for their own layer class needs no change to the library.
"""

import torch
from torch import nn

#: ``layer class -> NormRule instance``.
_RULES = {}


class NormRule:
    """How one kind of layer turns its inputs and output gradients into per-sample gradients.

    A rule receives the layer, its calls in the current batch as a list of
    ``(input, output_grad)`` pairs (a layer called several times has
    several; every tensor has the batch's ``n`` samples first), and the names
    of the parameters wanted (a subset of ``parameters``). Subclasses
    implement :meth:`grads`; they may override :meth:`sq_norms` with a
    cheaper formula and :meth:`accepts` to restrict the input layouts.

    Attributes
    ----------
    parameters : tuple of str
        Names of the layer's own parameters (``layer._parameters``) the rule
        computes, ``("weight", "bias")`` by default. Any other parameter of
        the layer goes through the general per-sample route.

    See Also
    --------
    register_norm_rule : registers a rule for layer classes.
    per_sample_grad_norms : the function that applies the rules.
    """

    parameters = ("weight", "bias")

    def accepts(self, layer, x, n):
        """Whether input ``x`` has a layout this rule handles, with ``n`` samples first.

        Parameters
        ----------
        layer : torch.nn.Module
        x : object
            The first positional argument of one call of ``layer``.
        n : int
            Samples in the batch.

        Returns
        -------
        bool
            ``False`` sends the layer's parameters to the general route.
        """
        return isinstance(x, torch.Tensor) and x.dim() >= 2 and x.shape[0] == n

    def grads(self, layer, calls, names):
        """Per-sample gradients, summed over the calls.

        Parameters
        ----------
        layer : torch.nn.Module
        calls : list of (torch.Tensor, torch.Tensor)
            ``(input, output_grad)`` of each call of ``layer``.
        names : set of str
            The parameters wanted.

        Returns
        -------
        dict
            ``{name: tensor of shape (n, *parameter.shape)}``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement grads().")

    def sq_norms(self, layer, calls, names):
        """Per-sample squared gradient norms, ``{name: tensor of shape (n,)}``.

        Takes the parameters of :meth:`grads`. By default the squared norms
        of :meth:`grads`' gradients.
        """
        from ._routes import sq_norms

        return {name: sq_norms(grad) for name, grad in self.grads(layer, calls, names).items()}


def register_norm_rule(*layer_classes):
    """Class decorator: use this :class:`NormRule` for layers of these classes.

    :func:`~skprune.per_sample_grad_norms` computes the norms of a layer's
    parameters from its inputs and output gradients when a rule is
    registered for its class (or for a base class whose ``forward`` it
    keeps: a rule reproduces that exact computation). Layers without a rule
    go through an exact but slower per-sample route. Registering a class
    again replaces its rule.

    Parameters
    ----------
    *layer_classes : subclasses of torch.nn.Module
        The layer classes the rule is for.

    Returns
    -------
    decorator : callable
        Takes a :class:`NormRule` subclass, registers one instance of it and
        returns the class unchanged.

    See Also
    --------
    NormRule : the interface of a rule.
    per_sample_grad_norms : the function that applies the rules.

    Examples
    --------
    A layer that scales its input's last dimension: sample ``i``'s gradient
    of ``scale`` is its input times its output gradient, summed over every
    other dimension.

    >>> import numpy as np
    >>> import torch
    >>> from torch import nn
    >>> from skprune.gradients import (NormRule, grad_norm_routes,
    ...                                per_sample_grad_norms, register_norm_rule)
    >>> class Scale(nn.Module):
    ...     def __init__(self, width):
    ...         super().__init__()
    ...         self.scale = nn.Parameter(torch.linspace(0.5, 1.5, width))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> @register_norm_rule(Scale)
    ... class ScaleRule(NormRule):
    ...     parameters = ("scale",)
    ...     def grads(self, layer, calls, names):
    ...         n = calls[0][0].shape[0]
    ...         grad = sum((x * g).reshape(n, -1, x.shape[-1]).sum(1) for x, g in calls)
    ...         return {"scale": grad}
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 6), Scale(6), nn.Tanh(), nn.Linear(6, 3))
    >>> X, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    >>> norms = per_sample_grad_norms(net, X, y)
    >>> grads = torch.autograd.grad(
    ...     torch.nn.functional.cross_entropy(net(X[:1]), y[:1]), list(net.parameters()))
    >>> bool(np.isclose(norms[0], torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()))
    True
    >>> grad_norm_routes(net, X, y)["1"]   # the rule, not the general route
    'rule'
    """
    if not layer_classes or not all(
        isinstance(cls, type) and issubclass(cls, nn.Module) for cls in layer_classes
    ):
        raise TypeError(
            "register_norm_rule takes one or more torch.nn.Module subclasses; got "
            f"{', '.join(repr(cls) for cls in layer_classes) or 'none'}."
        )

    def decorator(rule_class):
        if not (isinstance(rule_class, type) and issubclass(rule_class, NormRule)):
            raise TypeError(
                "register_norm_rule decorates a subclass of skprune.gradients.NormRule; "
                f"got {rule_class!r}."
            )
        rule = rule_class()
        for cls in layer_classes:
            _RULES[cls] = rule
        return rule_class

    return decorator


def rule_for(layer):
    """The :class:`NormRule` for ``layer``, or ``None`` when it has none.

    The nearest class in the layer's method resolution order with a rule
    decides; its rule applies only if the layer keeps that class's
    ``forward``.
    """
    layer_class = type(layer)
    for cls in layer_class.__mro__:
        rule = _RULES.get(cls)
        if rule is not None:
            return rule if layer_class.forward is cls.forward else None
    return None
