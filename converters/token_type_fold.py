"""The token-type table folded to its one row the exported graphs ever read.

An exported model takes ``(input_ids, attention_mask)``: its token types are all 0. Yet
the traced graph still builds a zero id tensor (ConstantOfShape, or the buffered ids'
Slice / Expand), gathers from the table and, in int8, dequantizes the rows: 5-10 nodes
run on every call for a constant. ``fold_token_types`` swaps each table for a module
that returns row 0, which broadcasts over [batch, seq, hidden] in the same Add; the id
computation then has no consumer and leaves the graph. Outputs are unchanged.

    count = fold_token_types(module)   # in place
"""

from __future__ import annotations

import torch
from torch import nn


class TokenTypeZero(nn.Module):
    """Row 0 of a token-type table, for any ids (which are always 0 here).

    ``weight`` keeps the table's rank ([1, hidden]) for readers of ``.weight[0]``.
    """

    def __init__(self, table: nn.Embedding) -> None:
        super().__init__()
        self.weight = nn.Parameter(table.weight.detach()[:1].clone(), requires_grad=False)

    def forward(self, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.weight[0]


@torch.no_grad()
def fold_token_types(module: nn.Module) -> int:
    """Replace every ``token_type_embeddings`` table in ``module``; return how many."""
    count = 0
    for parent in list(module.modules()):
        table = getattr(parent, "token_type_embeddings", None)
        if isinstance(table, nn.Embedding):
            parent.token_type_embeddings = TokenTypeZero(table)
            count += 1
    return count
