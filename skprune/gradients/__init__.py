"""Exact per-sample gradient norms of a classification network.

GraNd scores a sample by the norm of its loss gradient over all the
network's parameters. Computing every sample's gradient (a backward pass
per sample, ``torch.func.vmap(grad)``, or Opacus) costs 5 to 250 times a
plain forward and backward pass. Here one forward pass records every layer's
input, one backward pass gives the gradients with respect to the layers'
outputs (never with respect to the parameters), and each layer's per-sample
squared norms are computed from those two ("ghost norms") by the layer's
norm rule.

The subpackage follows Opacus' ``grad_sample``: the engine (hooks, checks,
the general per-sample route) is in ``_engine``; the rules live in one
module per layer family (``_linear``, ``_conv``, ``_normalization``,
``_embedding``), each registered for its layer classes with
:func:`register_norm_rule`, which users call the same way for their own
layers; where a layer has several exact routes, ``_autotune`` measures which
is fastest.
"""

# Importing the rule modules registers their rules.
from . import _conv, _embedding, _linear, _normalization  # noqa: F401
from ._norms import grad_norm_routes, per_sample_grad_norms
from ._registry import NormRule, register_norm_rule

__all__ = ["NormRule", "grad_norm_routes", "per_sample_grad_norms", "register_norm_rule"]
