"""MobileBERT's bottleneck NoNorms folded into the Linear before them.

A MobileBERT ``BottleneckLayer`` computes ``NoNorm(dense(x))``, and NoNorm is the
elementwise ``y * gamma + beta``: the same as one Linear with its rows scaled by gamma
and bias ``gamma * b + beta``. Folded, every exported graph loses a Mul and an Add per
bottleneck (two bottlenecks a layer: 48 Mul + 48 Add in the 24-layer MobileBERT), and
the per-channel int8 weight scales absorb gamma. The other NoNorms of MobileBERT follow a
residual add, not a Linear, and stay.

    count = fold_bottleneck_no_norms(module)   # in place; the fp32 outputs are unchanged
"""

from __future__ import annotations

import torch
from torch import nn


def _foldable(module: nn.Module) -> bool:
    norm, dense = getattr(module, "LayerNorm", None), getattr(module, "dense", None)
    return (
        type(module).__name__ == "BottleneckLayer"  # forward: LayerNorm(dense(x)), nothing else
        and type(norm).__name__ == "NoNorm"
        and isinstance(dense, nn.Linear)
    )


@torch.no_grad()
def fold_bottleneck_no_norms(module: nn.Module) -> int:
    """Fold each bottleneck's NoNorm into its dense Linear, in place; return how many."""
    count = 0
    for sub in module.modules():
        if not _foldable(sub):
            continue
        dense, norm = sub.dense, sub.LayerNorm
        gamma, beta = norm.weight.detach(), norm.bias.detach()
        bias = dense.bias.detach() if dense.bias is not None else torch.zeros_like(beta)
        dense.weight.mul_(gamma[:, None])
        if dense.bias is None:
            dense.bias = nn.Parameter(torch.zeros_like(beta))
        dense.bias.copy_(bias * gamma + beta)
        sub.LayerNorm = nn.Identity()
        count += 1
    return count
