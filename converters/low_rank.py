"""Low-rank factorization: Linears as two matmuls, word embeddings as a table and a projection.

    model = apply_method(model, LowRank(rank=64))                 # FFN Linears, rank 64
    model = apply_method(model, LowRank(energy=0.9, targets=("attention", "ffn")))
    model = apply_method(model, FactorizeEmbeddings(size=128))    # V x 128 table + 128 -> H

Both start from the truncated SVD of the weights they replace (the best rank-r
approximation), so the model before distillation is the closest one of its shape. The
replaced modules are small torch modules (``LowRankLinear``, ``FactorizedEmbedding``) of
plain Linears and an Embedding: every exporter traces them as two matmuls / a gather and
a matmul. Their ``weight`` is the product, so code reading a dense weight (the FPGA
program, the augmenter) computes the same function. ``config.pocketbert_compression``
records each replaced module and its rank; ``restore_structure`` rebuilds them on an
empty model before its weights load (``converters.model`` does this on every load).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from pocketbert.converters.compress_configs import FactorizeEmbeddings, LowRank
from pocketbert.converters.methods import register_method
from pocketbert.core.errors import UserError

RECORD = "pocketbert_compression"  # the config.json key listing the replaced modules


class LowRankLinear(nn.Module):
    """``second(first(x))``: an ``in -> rank -> out`` pair standing for one Linear."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)
        self.in_features, self.out_features, self.rank = in_features, out_features, rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))

    @property
    def weight(self) -> torch.Tensor:
        """The dense ``out x in`` weight this pair computes with."""
        return self.second.weight @ self.first.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.second.bias


class FactorizedEmbedding(nn.Module):
    """A ``vocab x size`` table projected to ``embedding_dim`` (ALBERT's factorization)."""

    def __init__(
        self, num_embeddings: int, size: int, embedding_dim: int, padding_idx: int | None = None
    ) -> None:
        super().__init__()
        self.table = nn.Embedding(num_embeddings, size, padding_idx=padding_idx)
        self.projection = nn.Linear(size, embedding_dim, bias=False)
        self.num_embeddings, self.embedding_dim, self.size = num_embeddings, embedding_dim, size
        self.padding_idx = padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.table(ids))

    @property
    def weight(self) -> torch.Tensor:
        """The dense ``vocab x embedding_dim`` table this pair computes with."""
        return self.projection(self.table.weight)


def _svd(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(left, right) with ``left @ right`` the best rank-``rank`` approximation of ``weight``."""
    u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).float(), (root[:, None] * vh[:rank]).float()


def energy_rank(weight: torch.Tensor, energy: float) -> int:
    """The smallest rank keeping ``energy`` of the squared singular values."""
    s = torch.linalg.svdvals(weight.detach().double())
    kept = torch.cumsum(s**2, 0) / (s**2).sum()
    return int(torch.searchsorted(kept, torch.tensor(energy, dtype=kept.dtype)).item()) + 1


def _record(model: nn.Module, name: str, entry: dict) -> None:
    record = dict(getattr(model.config, RECORD, None) or {})
    record[name] = entry
    setattr(model.config, RECORD, record)


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _target_of(name: str) -> str | None:
    """attention: Q, K, V and the attention output; ffn: the FFN's two Linears (bottleneck
    projections are neither)."""
    if ".attention." in f".{name}.":
        return "attention"
    if "bottleneck" not in name and name.endswith(("intermediate.dense", "output.dense")):
        return "ffn"
    return None


def chosen_linears(model: nn.Module, targets: tuple[str, ...]) -> list[str]:
    """The names of the encoder layers' Linears that ``targets`` select."""
    return [
        n
        for n, m in model.named_modules()
        if type(m) is nn.Linear and ".encoder." in f".{n}" and _target_of(n) in targets
    ]


@register_method(LowRank)
def low_rank(model: nn.Module, config: LowRank) -> nn.Module:
    names = chosen_linears(model, config.targets)
    if not names:
        raise UserError(
            f"low-rank factorization found no Linear layer of {', '.join(config.targets)} in "
            f"this {model.config.model_type} model (SqueezeBERT's layers are 1x1 convolutions); "
            "give a bert or mobilebert student"
        )
    plan = []
    for name in names:
        linear = model.get_submodule(name)
        out_f, in_f = linear.weight.shape
        rank = config.rank or energy_rank(linear.weight, config.energy)
        if rank > min(out_f, in_f):
            raise UserError(
                f"rank {rank} is larger than layer {name} ({in_f} -> {out_f}); "
                f"give a rank of at most {min(out_f, in_f)}"
            )
        plan.append((name, linear, rank))
    for name, linear, rank in plan:  # every rank checked before anything changes
        pair = LowRankLinear(linear.in_features, linear.out_features, rank, linear.bias is not None)
        left, right = _svd(linear.weight, rank)
        with torch.no_grad():
            pair.second.weight.copy_(left)
            pair.first.weight.copy_(right)
            if linear.bias is not None:
                pair.second.bias.copy_(linear.bias)
        _set(model, name, pair)
        _record(model, name, {"kind": "low_rank", "rank": rank})
    return model


def word_embedding_name(model: nn.Module) -> str:
    table = model.get_input_embeddings()
    return next(n for n, m in model.named_modules() if m is table)


@register_method(FactorizeEmbeddings)
def factorize_embeddings(model: nn.Module, config: FactorizeEmbeddings) -> nn.Module:
    table = model.get_input_embeddings()
    if isinstance(table, FactorizedEmbedding):
        raise UserError("the word embeddings are factorized already; factorize them once")
    vocab, width = table.weight.shape
    if config.size >= width:
        raise UserError(
            f"factorized embedding size {config.size} is not below the embedding width "
            f"{width}; give a size of at most {width - 1} (e.g. 128)"
        )
    if model.config.model_type == "mobilebert":
        return _mobilebert_embeddings(model, config.size)
    name = word_embedding_name(model)
    factorized = FactorizedEmbedding(vocab, config.size, width, table.padding_idx)
    rows, projection = _svd(table.weight, config.size)
    with torch.no_grad():
        factorized.table.weight.copy_(rows)
        factorized.projection.weight.copy_(projection.T)
    model.set_input_embeddings(factorized)
    _record(model, name, {"kind": "factorized_embedding", "rank": config.size})
    return model


@torch.no_grad()
def _mobilebert_embeddings(model: nn.Module, size: int) -> nn.Module:
    """MobileBERT has the factorization itself (``embedding_size`` projected up by
    ``embedding_transformation``): a smaller ``embedding_size``, the projection folded into
    the transformation, so the model stays an ordinary MobileBERT."""
    emb, config = model.base_model.embeddings, model.config
    table, hidden = emb.word_embeddings, config.hidden_size
    old = table.embedding_dim
    k = 3 if config.trigram_input else 1
    if config.trigram_input or old != hidden:
        weight, bias = emb.embedding_transformation.weight, emb.embedding_transformation.bias
    else:  # no transformation ran: the identity
        weight, bias = torch.eye(hidden), torch.zeros(hidden)
    rows, right = _svd(table.weight, size)  # table ~ rows @ right
    smaller = nn.Embedding(table.num_embeddings, size, padding_idx=table.padding_idx)
    smaller.weight.copy_(rows)
    transform = nn.Linear(k * size, hidden)
    blocks = [weight[:, j * old : (j + 1) * old] @ right.T for j in range(k)]
    transform.weight.copy_(torch.cat(blocks, dim=1))
    transform.bias.copy_(bias)
    emb.word_embeddings, emb.embedding_transformation = smaller, transform
    emb.embedding_size = config.embedding_size = size
    return model


def restore_structure(model: nn.Module) -> nn.Module:
    """Rebuild, with empty weights, the modules ``config.pocketbert_compression`` lists."""
    for name, entry in (getattr(model.config, RECORD, None) or {}).items():
        kind = entry.get("kind")
        if kind == "shared_layers":  # converters.layer_share
            from pocketbert.converters.layer_share import tie

            tie(model, name, entry["group_size"])
            continue
        old = model.get_submodule(name)
        if kind == "low_rank":
            new: nn.Module = LowRankLinear(
                old.in_features, old.out_features, entry["rank"], old.bias is not None
            )
        elif kind == "factorized_embedding":
            vocab, width = old.weight.shape
            new = FactorizedEmbedding(vocab, entry["rank"], width, old.padding_idx)
        else:
            raise UserError(
                f"config.json's {RECORD} names an unknown module kind {kind!r}; "
                f"this pocketbert knows: low_rank, factorized_embedding, shared_layers"
            )
        _set(model, name, new)
    return model


def load_restructured(source: str, cls, **kwargs):
    """``cls.from_pretrained`` for a model with replaced modules: the config's model, its
    modules rebuilt, then every weight of the directory loaded (strict)."""
    from pathlib import Path

    from safetensors.torch import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source)
    kwargs.pop("dtype", None)
    model = cls.from_config(config, **kwargs)
    restore_structure(model)
    weights = Path(source) / "model.safetensors"
    if not weights.is_file():
        raise UserError(f"'{source}' has no model.safetensors; a compressed model saves one")
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = [*(model._tied_weights_keys or []), *getattr(model, "_dynamic_tied_weights_keys", [])]
    missing = [k for k in missing if not any(re.search(p, k) for p in tied)]
    if missing or unexpected:
        raise UserError(
            f"'{source}' does not match its config's compressed shapes (missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}); re-run the compression"
        )
    return model.float()
