"""Int8 weight-only embedding tables, usable by any exporter.

PT2E quantizers (XNNPACK's included) quantize Linear layers and leave ``nn.Embedding``
tables fp32; in a BERT-family model the word embeddings are a large share of the
weights, so an int8 file stays at ~55% of the fp32 one. ``Int8Embedding`` stores the
table as int8 with one fp32 scale per row (symmetric, zero point 0) and looks rows up
as ``embedding(ids, weight)`` -> fp32 ``* embedding(ids, scale)``, with no custom
operator. (Indexing, ``weight[ids]``, exports as ``aten.index``, whose ExecuTorch
portable kernel took ~0.9 ms to fetch 128 rows of a 30k-row table; ``aten.embedding``
takes ~0.03 ms.) The int8 -> fp32 step is a per-tensor dequantize with scale 1 and zero
point 0: XNNPACK runs it as a Convert inside its delegate, where a plain ``.float()``
cast stays outside as a portable copy (0.21 ms -> 0.06 ms per 128-row lookup).

    count = int8_embeddings(model)   # in place; returns how many tables were swapped
"""

from __future__ import annotations

import torch
from torch import nn

# registers torch.ops.quantized_decomposed (the ops PT2E quantization lowers to)
from torch.ao.quantization.fx._decomposed import quantized_decomposed_lib  # noqa: F401


class Int8Embedding(nn.Module):
    """An ``nn.Embedding`` replacement holding an int8 table and per-row fp32 scales."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        weight = embedding.weight.detach().float()
        scale = weight.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
        self.register_buffer("weight", torch.round(weight / scale).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.num_embeddings, self.embedding_dim = weight.shape
        self.padding_idx = embedding.padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = torch.ops.quantized_decomposed.dequantize_per_tensor.default(
            nn.functional.embedding(ids, self.weight), 1.0, 0, -127, 127, torch.int8
        )
        return rows * nn.functional.embedding(ids, self.scale)

    def dequantized(self) -> torch.Tensor:
        """The fp32 table this module computes with (for parity checks)."""
        return self.weight.float() * self.scale

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8 per-row"


def int8_embeddings(module: nn.Module, *, min_rows: int = 0) -> int:
    """Swap every ``nn.Embedding`` inside ``module`` (in place) for an ``Int8Embedding``.

    Tables with fewer than ``min_rows`` rows (e.g. token types) are left fp32.
    Returns how many tables were swapped.
    """
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Embedding):
            if child.num_embeddings >= min_rows:
                setattr(module, name, Int8Embedding(child))
                count += 1
        else:
            count += int8_embeddings(child, min_rows=min_rows)
    return count
