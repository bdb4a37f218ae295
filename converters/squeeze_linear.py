"""Export SqueezeBERT's grouped position-wise convolutions as plain matmuls.

A Conv1d with kernel size 1 and ``groups=g`` over [batch, channels, seq] is ``g``
independent Linear layers over channel slices. Written that way every quantizer
sees ordinary Linear/MatMul ops: ORT's dynamic int8 otherwise turns the convs into
ConvInteger, which runs slower than fp32.
"""

from __future__ import annotations

import torch
from torch import nn


class GroupedPointwise(nn.Module):
    """``groups`` Linear layers over channel slices of a [batch, channels, seq] tensor."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        g = conv.groups
        cin, cout = conv.in_channels // g, conv.out_channels // g
        self.split = cin
        self.parts = nn.ModuleList()
        for i in range(g):
            lin = nn.Linear(cin, cout, bias=conv.bias is not None)
            lin.weight.data.copy_(conv.weight.data[i * cout : (i + 1) * cout, :, 0])
            if conv.bias is not None:
                lin.bias.data.copy_(conv.bias.data[i * cout : (i + 1) * cout])
            self.parts.append(lin)

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
        if (
            isinstance(child, nn.Conv1d)
            and child.kernel_size == (1,)
            and child.padding in (0, (0,))
        ):
            setattr(module, name, GroupedPointwise(child))
            count += 1
        else:
            count += grouped_convs_as_linear(child)
    return count
