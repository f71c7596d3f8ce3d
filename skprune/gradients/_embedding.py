"""Norm rule of ``nn.Embedding``."""

import torch
from torch import nn

from ._registry import NormRule, register_norm_rule


@register_norm_rule(nn.Embedding)
class EmbeddingRule(NormRule):
    """``nn.Embedding``: a sample's gradient adds its output-gradient rows per token.

    The gradient of row ``v`` of the table is the sum of the output gradients
    at the positions where the sample looks up ``v``, so only the rows a
    sample uses are formed (``padding_idx`` rows get no gradient;
    ``scale_grad_by_freq`` divides by the count within each call of the
    sample, as a batch of that sample alone would).
    """

    parameters = ("weight",)

    def accepts(self, layer, x, n):
        return (
            isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[0] == n
            and not x.is_floating_point()
        )

    def _rows(self, layer, calls):
        """Flat keys ``sample * num_embeddings + token`` and their gradient rows."""
        n, vocabulary = calls[0][0].shape[0], layer.num_embeddings
        keys, rows = [], []
        offsets = torch.arange(n, device=calls[0][0].device).unsqueeze(1) * vocabulary
        for x, g in calls:
            key = (x.reshape(n, -1).long() + offsets).flatten()
            g = g.reshape(key.shape[0], -1)
            if layer.padding_idx is not None:
                g = g * (x.reshape(-1) != layer.padding_idx).unsqueeze(1).to(g.dtype)
            if layer.scale_grad_by_freq:
                _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
                g = g / counts[inverse].unsqueeze(1).to(g.dtype)
            keys.append(key)
            rows.append(g)
        key, g = torch.cat(keys), torch.cat(rows)
        unique, inverse = torch.unique(key, return_inverse=True)
        summed = g.new_zeros(unique.shape[0], g.shape[1]).index_add_(0, inverse, g)
        return unique, summed

    def sq_norms(self, layer, calls, names):
        if "weight" not in names:
            return {}
        n = calls[0][0].shape[0]
        keys, rows = self._rows(layer, calls)
        samples = torch.div(keys, layer.num_embeddings, rounding_mode="floor")
        norms = rows.new_zeros(n).index_add_(0, samples, rows.pow(2).sum(1))
        return {"weight": norms}

    def grads(self, layer, calls, names):
        if "weight" not in names:
            return {}
        n = calls[0][0].shape[0]
        keys, rows = self._rows(layer, calls)
        table = rows.new_zeros(n * layer.num_embeddings, layer.embedding_dim)
        return {"weight": table.index_add_(0, keys, rows).view(n, *layer.weight.shape)}
