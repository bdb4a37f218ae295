"""Int8 weight-only embedding tables, usable by any exporter.

PT2E quantizers (XNNPACK's included) quantize Linear layers and leave ``nn.Embedding``
tables fp32; in a BERT-family model the word embeddings are a large share of the
weights, so an int8 file stays at ~55% of the fp32 one. ``Int8Embedding`` stores the
table as int8 with one fp32 scale per row (symmetric, zero point 0) and looks rows up
as ``embedding(ids, weight).float() * embedding(ids, scale)``: ordinary
embedding/cast/mul ops that every runtime has, with no custom operator. (Indexing,
``weight[ids]``, exports as ``aten.index``, whose ExecuTorch portable kernel took ~0.9 ms
to fetch 128 rows of a 30k-row table; ``aten.embedding`` takes ~0.03 ms.)

    count = int8_embeddings(model)   # in place; returns how many tables were swapped
"""

from __future__ import annotations

import torch
from torch import nn


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
        rows = nn.functional.embedding(ids, self.weight).to(torch.float32)
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
