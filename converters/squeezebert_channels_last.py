"""SqueezeBERT's encoder rewritten to run in [batch, seq, channels], for ExecuTorch.

``squeezebert_channels_last`` rewrites each SqueezeBERT encoder: no transposes around the
layers, LayerNorm over the last axis, attention as 3-D batched matmuls; each group slice
is taken once (``narrow``) and shared by query, key and value, and the feed-forward groups
run end to end. XNNPACK runs every transpose as a copy, and leaves slices of a
dynamic-length tensor (and ``split``) to portable kernels outside the delegate.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pocketbert.converters.squeeze_linear import GroupedLinear, cat_groups


class _LastAxisNorm(nn.LayerNorm):
    """SqueezeBERT's channel LayerNorm, applied to [batch, seq, channels]."""

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__(norm.normalized_shape, eps=norm.eps)
        self.load_state_dict(norm.state_dict())


class _ChannelsLastLayer(nn.Module):
    """One SqueezeBertModule in [batch, seq, channels]; computes what it computes."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        att = layer.attention
        self.heads, self.head_size = att.num_attention_heads, att.attention_head_size
        self.query, self.key, self.value = (
            GroupedLinear(c) for c in (att.query, att.key, att.value)
        )
        self.post_attention = GroupedLinear(layer.post_attention.conv1d)
        self.post_attention_norm = _LastAxisNorm(layer.post_attention.layernorm)
        self.intermediate = GroupedLinear(layer.intermediate.conv1d)
        self.act = layer.intermediate.act
        self.output = GroupedLinear(layer.output.conv1d)
        self.output_norm = _LastAxisNorm(layer.output.layernorm)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[b, s, h*d] -> [b*h, s, d]."""
        b = x.shape[0]
        x = x.view(b, -1, self.heads, self.head_size).transpose(1, 2)
        return x.reshape(b * self.heads, -1, self.head_size)

    def _qkv(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Query, key and value, reading one set of group slices of ``x`` where they can."""
        shared = self.query.slices(x)
        return [
            cat_groups(p.over(shared if len(p.parts) == len(shared) else p.slices(x)))
            for p in (self.query, self.key, self.value)
        ]

    def _feed_forward(self, a: torch.Tensor) -> torch.Tensor:
        """Output of intermediate + act + output; group-local when their groups match.

        With equal group counts, output group i reads exactly what intermediate group i
        wrote, so the groups run end to end with no concat and re-slice in between.
        """
        hidden = [self.act(h) for h in self.intermediate.over(self.intermediate.slices(a))]
        if len(self.output.parts) == len(hidden):
            return cat_groups(self.output.over(hidden))
        return self.output(cat_groups(hidden))

    def _masked(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``scores`` [b*h, s, s] plus the additive ``mask`` [b, 1, 1, s]."""
        b = mask.shape[0]
        if b == 1:  # a plain broadcast, no 4-D view with two dynamic lengths
            return scores + mask.view(1, 1, -1)
        s = scores.shape[-1]
        return (scores.view(b, self.heads, s, s) + mask).view(b * self.heads, s, s)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Every reshape leaves at most the sequence length to infer (``-1``): XNNPACK
        delegates those, and leaves reshapes to a symbolic length to portable kernels."""
        b, _, c = x.shape
        q, k, v = (self._heads(t) for t in self._qkv(x))
        scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(self.head_size)
        probs = self._masked(scores, mask).softmax(dim=-1)
        context = torch.bmm(probs, v).view(b, self.heads, -1, self.head_size)
        context = context.transpose(1, 2).reshape(b, -1, c)
        a = self.post_attention_norm(self.post_attention(context) + x)
        return self.output_norm(self._feed_forward(a) + a)


class _ChannelsLastEncoder(nn.Module):
    """A SqueezeBertEncoder that keeps [batch, seq, channels] from input to output."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_ChannelsLastLayer(layer) for layer in encoder.layers)

    def forward(self, hidden_states: torch.Tensor, attention_mask=None, **_ignored):
        from transformers.modeling_outputs import BaseModelOutput

        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask)
        return BaseModelOutput(last_hidden_state=hidden_states)


def squeezebert_channels_last(module: nn.Module) -> int:
    """Rewrite every SqueezeBERT encoder inside ``module`` in place; return how many.

    Works on an original model or one already passed through ``grouped_convs_as_linear``.
    The rewritten encoder returns only the last hidden state (no per-layer outputs).
    """
    count = 0
    for name, child in list(module.named_children()):
        if type(child).__name__ == "SqueezeBertEncoder":
            setattr(module, name, _ChannelsLastEncoder(child))
            count += 1
        else:
            count += squeezebert_channels_last(child)
    return count
