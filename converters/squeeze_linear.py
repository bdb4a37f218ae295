"""SqueezeBERT's grouped position-wise convolutions as plain matmuls.

A Conv1d with kernel size 1 and ``groups=g`` over [batch, channels, seq] is ``g``
independent Linear layers over channel slices. Written that way every quantizer
sees ordinary Linear/MatMul ops: ORT's dynamic int8 otherwise turns the convs into
ConvInteger, which runs slower than fp32.

- ``grouped_convs_as_linear`` swaps each conv in place and keeps SqueezeBERT's
  [batch, channels, seq] layout, so every layer transposes in and out (ONNX and TFLite
  use it; onnxruntime folds those transposes).
- ``GroupedLinear`` is the same per-group Linear layers over the last axis of a
  [..., channels] tensor; ``squeezebert_channels_last`` (its own module) builds
  ExecuTorch's channels-last encoder from it.
"""

from __future__ import annotations

import torch
from torch import nn

from pocketbert.converters.pointwise_conv import is_pointwise


def _linears(conv: nn.Conv1d) -> nn.ModuleList:
    """One Linear per group of a kernel-size-1 ``conv``."""
    g = conv.groups
    cin, cout = conv.in_channels // g, conv.out_channels // g
    parts = nn.ModuleList()
    for i in range(g):
        lin = nn.Linear(cin, cout, bias=conv.bias is not None)
        lin.weight.data.copy_(conv.weight.data[i * cout : (i + 1) * cout, :, 0])
        if conv.bias is not None:
            lin.bias.data.copy_(conv.bias.data[i * cout : (i + 1) * cout])
        parts.append(lin)
    return parts


class GroupedPointwise(nn.Module):
    """``groups`` Linear layers over channel slices of a [batch, channels, seq] tensor."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.split = conv.in_channels // conv.groups
        self.parts = _linears(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xt = x.transpose(1, 2)
        if len(self.parts) == 1:
            y = self.parts[0](xt)
        else:
            chunks = xt.split(self.split, dim=-1)
            y = torch.cat([lin(c) for lin, c in zip(self.parts, chunks, strict=True)], dim=-1)
        return y.transpose(1, 2)


def grouped_convs_as_linear(module: nn.Module) -> int:
    """Replace every kernel-size-1 Conv1d inside ``module`` in place; return how many."""
    count = 0
    for name, child in list(module.named_children()):
        if is_pointwise(child):
            setattr(module, name, GroupedPointwise(child))
            count += 1
        else:
            count += grouped_convs_as_linear(child)
    return count


def cat_groups(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


class GroupedLinear(nn.Module):
    """The same per-group Linear layers over the last axis of a [..., channels] tensor."""

    def __init__(self, layer: nn.Conv1d | GroupedPointwise) -> None:
        super().__init__()
        self.parts = layer.parts if isinstance(layer, GroupedPointwise) else _linears(layer)
        self.width = self.parts[0].in_features

    def slices(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The group slices of ``x`` this layer reads."""
        if len(self.parts) == 1:
            return [x]
        return [x.narrow(-1, i * self.width, self.width) for i in range(len(self.parts))]

    def over(self, slices: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each group's output, from slices taken once and shared between layers."""
        return [lin(x) for lin, x in zip(self.parts, slices, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cat_groups(self.over(self.slices(x)))
