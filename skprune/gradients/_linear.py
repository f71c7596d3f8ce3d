"""Norm rule of ``nn.Linear``, on inputs of shape ``(n, ..., in_features)``."""

from torch import nn

from ._registry import NormRule, register_norm_rule
from ._routes import concat_positions, outer_grads, sq_norms, weight_sq_norms


@register_norm_rule(nn.Linear)
class LinearRule(NormRule):
    """``nn.Linear``: every middle dimension of the input is a position of the weight.

    With one position per sample the gradient ``g a^T`` has the norm
    ``|g| |a|``; over many positions (a sequence, or several calls) the
    weight's norms take the fastest route of :mod:`skprune.gradients._routes`.
    """

    @staticmethod
    def _positions(calls):
        # (n, 1 group, features, positions); every middle dimension is a position.
        n = calls[0][0].shape[0]
        a = concat_positions([x.reshape(n, -1, x.shape[-1]).mT.unsqueeze(1) for x, _ in calls])
        g = concat_positions([g.reshape(n, -1, g.shape[-1]).mT.unsqueeze(1) for _, g in calls])
        return a, g

    def sq_norms(self, layer, calls, names):
        if len(calls) == 1 and calls[0][0].dim() == 2:
            x, g = calls[0]
            g_sq = sq_norms(g)
            norms = {"weight": sq_norms(x) * g_sq} if "weight" in names else {}
            if "bias" in names:
                norms["bias"] = g_sq
            return norms
        a, g = self._positions(calls)
        norms = {}
        if "weight" in names:
            norms["weight"] = weight_sq_norms(layer, a, g)
        if "bias" in names:
            norms["bias"] = sq_norms(g.sum(3))
        return norms

    def grads(self, layer, calls, names):
        a, g = self._positions(calls)
        grads = {}
        if "weight" in names:
            grads["weight"] = outer_grads(a, g).squeeze(1)
        if "bias" in names:
            grads["bias"] = g.sum(3).squeeze(1)
        return grads
