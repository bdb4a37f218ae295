"""MobileBERT's residual NoNorms carried into the Linears around them.

NoNorm is ``y = gamma * z + beta``. Where it follows a residual add,
``y = gamma * (dense(x) + r) + beta``, the bottleneck fold (no_norm_fold.py) cannot take
it: the residual ``r`` is not a Linear's output. But the tensor can be carried in scaled
form instead of materialised: a tensor ``u`` stands for ``y = s * u + t`` (per-channel
``s``, ``t``). Then

    y = gamma * (dense(x) + s * u + t) + beta  =  s' * (dense(x) / s + u) + t'
        with s' = gamma * s,  t' = gamma * t + beta

so the graph computes only ``dense'(x) + u`` (the dense's rows and bias divided by ``s``)
and the Mul and Add of the NoNorm leave it. Every Linear that reads a carried tensor takes
``s`` and ``t`` into its weights (``W y + b = (W diag(s)) u + (W t + b)``). A chain ends by
materialising: the NoNorm stays, with weight ``gamma * s`` and bias ``gamma * t + beta``.

Chains: MobileBERT's inner one (attention output, the stacked FFNs, the layer's output, on
``true_hidden_size``) starts from the bottleneck's fresh output each layer and ends in the
output bottleneck's dense; the outer one (the embeddings, each layer's output bottleneck,
on ``hidden_size``) runs through the whole encoder and is materialised at the last layer.
int8 activations are quantized per tensor, so a carried tensor whose channel scales ``s``
spread far apart would lose precision in its small channels: a chain is materialised
wherever ``max|s| / min|s|`` would pass ``MAX_SPREAD`` (and at any zero gamma).
The fp32 outputs are unchanged; the parity gate judges each quantized file.

    count = carry_residual_no_norms(module)   # in place; NoNorms taken out of the graph
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

MAX_SPREAD = 16.0  # see the module docstring; 4, 16 and no limit measured on three tasks


@dataclass
class Carry:
    """A tensor held as ``u`` for ``s * u + t``; ``s is None``: held as itself."""

    s: torch.Tensor | None = None
    t: torch.Tensor | None = None


def _is_no_norm(module: nn.Module | None) -> bool:
    return type(module).__name__ == "NoNorm"


def _absorb(dense: nn.Linear, carry: Carry) -> None:
    """``dense`` reads a carried tensor: take its scale and shift into the weights."""
    if carry.s is None:
        return
    if dense.bias is None:
        dense.bias = nn.Parameter(torch.zeros(dense.out_features))
    dense.bias.add_(dense.weight @ carry.t)
    dense.weight.mul_(carry.s[None, :])


def _step(owner: nn.Module, carry: Carry, *, last: bool = False) -> tuple[Carry, int]:
    """``owner.LayerNorm(owner.dense(x) + residual)`` with the residual held as ``carry``:
    the dense's output divided by its scale, the NoNorm carried on (returns 1) or
    materialised with the carried scale folded in (returns 0)."""
    norm, dense = owner.LayerNorm, owner.dense
    s = carry.s if carry.s is not None else torch.ones_like(norm.weight)
    t = carry.t if carry.t is not None else torch.zeros_like(norm.bias)
    if carry.s is not None:
        if dense.bias is None:
            dense.bias = nn.Parameter(torch.zeros(dense.out_features))
        dense.weight.div_(s[:, None])
        dense.bias.div_(s)
    gamma, beta = norm.weight.detach(), norm.bias.detach()
    new_s, new_t = gamma * s, gamma * t + beta
    if last or not _spread_ok(new_s):
        norm.weight.copy_(new_s)
        norm.bias.copy_(new_t)
        return Carry(), 0
    owner.LayerNorm = nn.Identity()
    return Carry(new_s, new_t), 1


def _spread_ok(s: torch.Tensor) -> bool:
    size = s.abs()
    return bool(size.min() > 0 and size.max() / size.min() <= MAX_SPREAD)


def _outer_readers(layer: nn.Module) -> list[nn.Linear]:
    """The Linears of one MobileBERT layer that read the layer's input."""
    attention = layer.attention.self
    bottleneck = layer.bottleneck if layer.use_bottleneck else None
    if bottleneck is None:
        return [attention.query, attention.key, attention.value]
    if bottleneck.use_bottleneck_attention:  # query, key and value read the bottleneck's output
        return [bottleneck.input.dense]
    if bottleneck.key_query_shared_bottleneck:
        return [bottleneck.input.dense, bottleneck.attention.dense, attention.value]
    return [bottleneck.input.dense, attention.query, attention.key, attention.value]


def _encoder_of(module: nn.Module) -> nn.Module | None:
    for sub in module.modules():
        if type(sub).__name__ == "MobileBertModel":
            return sub
    return None


def _foldable(model: nn.Module) -> bool:
    norms = [m for m in model.modules() if type(m).__name__ in ("NoNorm", "LayerNorm")]
    return bool(norms) and all(_is_no_norm(m) for m in norms)


@torch.no_grad()
def carry_residual_no_norms(module: nn.Module) -> int:
    """Carry the residual NoNorms of the MobileBERT in ``module``; return how many left
    the graph (0 for other architectures and for MobileBERT with LayerNorm)."""
    model = _encoder_of(module)
    if model is None or not _foldable(model):
        return 0
    layers = list(model.encoder.layer)
    if not layers:
        return 0
    emb = model.embeddings
    count = 0
    outer = Carry()
    if _spread_ok(emb.LayerNorm.weight):
        outer = Carry(emb.LayerNorm.weight.detach().clone(), emb.LayerNorm.bias.detach().clone())
        emb.LayerNorm = nn.Identity()
        count += 1
    for i, layer in enumerate(layers):
        for dense in _outer_readers(layer):
            _absorb(dense, outer)
        bottleneck = layer.use_bottleneck
        # the inner chain starts at the bottleneck's output (a plain Linear's) or at h
        inner = Carry() if bottleneck else outer
        last = i == len(layers) - 1
        inner, n = _step(layer.attention.output, inner)
        count += n
        for ffn in getattr(layer, "ffn", None) or []:
            _absorb(ffn.intermediate.dense, inner)
            inner, n = _step(ffn.output, inner)
            count += n
        _absorb(layer.intermediate.dense, inner)
        inner, n = _step(layer.output, inner, last=last and not bottleneck)
        count += n
        if not bottleneck:
            outer = inner
            continue
        _absorb(layer.output.bottleneck.dense, inner)
        outer, n = _step(layer.output.bottleneck, outer, last=last)
        count += n
    return count
