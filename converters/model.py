"""Load a teacher (a transformers directory or hub id) as an exportable torch module.

The module takes ``(input_ids, attention_mask)`` and returns float32 logits
(classification) or a sentence embedding pooled as the source says (its
sentence-transformers modules.json; mean pooling, unnormalised, when it has none).
Everything checkable without torch is checked first by ``architectures.preflight``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from pocketbert.converters.architectures import (
    ARCHITECTURES,
    TASKS,
    ModelInfo,
    Pooling,
    check_config,
    preflight,
)
from pocketbert.converters.no_norm_carry import carry_residual_no_norms
from pocketbert.converters.no_norm_fold import fold_bottleneck_no_norms
from pocketbert.converters.squeeze_linear import grouped_convs_as_linear
from pocketbert.converters.token_type_fold import fold_token_types
from pocketbert.core.errors import UserError, first_line

__all__ = ["ARCHITECTURES", "TASKS", "ExportWrapper", "LoadedModel", "load_model", "preflight"]


class ExportWrapper(nn.Module):
    """A fixed two-input signature over any supported transformers encoder.

    ``position_offset`` (RoBERTa-style families): position ids are fed from a constant
    table, ``offset + i``. That is what the model computes itself for right-padded input
    whose ids hold no pad id (pocketbert's encoder pads with id 0 under a zero mask), but
    its own computation (a cumsum over ``ids != pad``) does not survive PT2E int8.
    """

    def __init__(
        self,
        model: nn.Module,
        task: str,
        pooling: Pooling | None = None,
        position_offset: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.pooling = pooling or Pooling()
        ids = None
        if position_offset:
            limit = model.config.max_position_embeddings
            ids = torch.arange(position_offset, limit, dtype=torch.long).unsqueeze(0)
        self.register_buffer("position_ids", ids, persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        extra = {}
        if self.position_ids is not None:
            extra["position_ids"] = self.position_ids[:, : input_ids.shape[1]]
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        if self.task == "classification":
            return out.logits
        return pool(out.last_hidden_state, attention_mask, self.pooling)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """sentence-transformers' Pooling (modes concatenated in order), then its Normalize."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    count = mask.sum(1).clamp(min=1e-9)
    parts = []
    for mode in pooling.modes:
        if mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "max":
            parts.append(hidden.masked_fill(mask == 0, -1e9).max(1).values)
        elif mode == "mean":
            parts.append((hidden * mask).sum(1) / count)
        else:  # mean_sqrt_len
            parts.append((hidden * mask).sum(1) / count.sqrt())
    vector = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
    if pooling.normalize:
        vector = vector / vector.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return vector


@dataclass
class LoadedModel:
    module: ExportWrapper  # eval mode, float32, CPU
    tokenizer: object  # a transformers fast tokenizer
    config: object
    task: str
    labels: list[str]  # empty for embeddings
    source: str
    source_hash: str
    pooling: Pooling | None = None  # embeddings: how the vector is pooled (for the manifest)


def source_hash(source: str) -> str:
    """sha256 over a local model directory's files (or of the hub id)."""
    path = Path(source)
    h = hashlib.sha256()
    if not path.is_dir():
        h.update(source.encode())
        return h.hexdigest()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def read_config(source: str):
    """The transformers config of ``source`` (a directory checked by preflight, or hub id)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source)
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        first = first_line(exc)
        raise UserError(
            f"could not read model '{source}' ({first}); give a transformers model "
            "directory with a valid config.json, or a hub id reachable from here"
        ) from exc


def supported_config(
    source: str, task: str | None = None, max_seq_len: int | None = None, *, pooling: bool = True
) -> tuple[object, ModelInfo]:
    """(transformers config, checked ModelInfo) of ``source``; UserError if unsupported."""
    info = preflight(source, task, max_seq_len, pooling=pooling)
    config = read_config(source)
    if not info.local:  # a hub id: its config.json is here only now
        info = check_config(config.to_dict(), source, task, max_seq_len)
    return config, info


def load_pretrained(source: str | os.PathLike, cls, **kwargs):
    """(model of class ``cls``, fast tokenizer) from a supported model directory or hub id;
    raises UserError for anything a user can fix. ``kwargs`` go to from_pretrained."""
    from transformers import AutoTokenizer

    from pocketbert.converters.low_rank import RECORD, load_restructured

    source = str(source)
    config, _ = supported_config(source, pooling=False)
    # a model with factorized layers (converters.low_rank) is rebuilt before its weights load
    restructured = bool(getattr(config, RECORD, None))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
        kwargs = {"attn_implementation": "eager", "dtype": torch.float32, **kwargs}
        if restructured:
            model = load_restructured(source, cls, **kwargs)
        else:
            model = cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        first = first_line(exc)
        raise UserError(
            f"could not load weights or tokenizer of '{source}' ({first}); the directory "
            "needs model.safetensors (or pytorch_model.bin) and a tokenizer"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"'{source}' has no fast tokenizer (tokenizer.json); save one with it")
    return model, tokenizer


def load_model(
    source: str | os.PathLike, task: str | None = None, *, max_seq_len: int | None = None
) -> LoadedModel:
    """Load ``source`` for export; raises UserError for anything a user can fix."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    source = str(source)
    config, info = supported_config(source, task, max_seq_len)
    task = info.task
    cls = AutoModelForSequenceClassification if task == "classification" else AutoModel
    model, tokenizer = load_pretrained(source, cls)
    model.eval()
    pooling = (info.pooling or Pooling()) if task == "embedding" else None
    offset = info.architecture.position_offset(config.to_dict())
    wrapper = ExportWrapper(model, task, pooling, offset).eval()
    return LoadedModel(
        wrapper, tokenizer, config, task, info.labels, source, source_hash(source), pooling
    )


def export_ready(
    loaded: LoadedModel, *, convs_as_linear: bool = True, carry_no_norms: bool = True
) -> nn.Module:
    """A copy of the module rewritten for export (grouped 1x1 convolutions as matmuls,
    unless ``convs_as_linear`` is False; MobileBERT's bottleneck NoNorms folded into their
    Linears, and its residual NoNorms carried into the Linears around them unless
    ``carry_no_norms`` is False; the token-type table folded to the row that all-zero token
    types read)."""
    import copy

    module = copy.deepcopy(loaded.module)
    if convs_as_linear:
        grouped_convs_as_linear(module)
    fold_bottleneck_no_norms(module)
    if carry_no_norms:
        carry_residual_no_norms(module)
    fold_token_types(module)
    return module.eval()
