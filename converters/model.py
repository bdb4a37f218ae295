"""Load a teacher (a transformers directory or hub id) as an exportable torch module.

The module takes ``(input_ids, attention_mask)`` and returns float32 logits
(classification) or a mean-pooled sentence embedding (embedding).
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

from pocketbert.converters.squeeze_linear import grouped_convs_as_linear
from pocketbert.core.errors import UserError, choices, first_line

ARCHITECTURES = ("bert", "mobilebert", "squeezebert", "distilbert")
TASKS = ("classification", "embedding")


class ExportWrapper(nn.Module):
    """A fixed two-input signature over any supported transformers encoder."""

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        if self.task == "classification":
            return out.logits
        hidden = out.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@dataclass
class LoadedModel:
    module: ExportWrapper  # eval mode, float32, CPU
    tokenizer: object  # a transformers fast tokenizer
    config: object
    task: str
    labels: list[str]  # empty for embeddings
    source: str
    source_hash: str


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
    from transformers import AutoConfig

    path = Path(source)
    looks_local = path.exists() or source.startswith((".", "/", "~")) or source.count("/") > 1
    if looks_local and not (path / "config.json").is_file():
        raise UserError(
            f"model '{source}' is not a transformers model directory (no config.json); "
            "give a directory written by save_pretrained or a hub id"
        )
    try:
        return AutoConfig.from_pretrained(source)
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        first = first_line(exc)
        raise UserError(
            f"could not read model '{source}' ({first}); give a transformers model "
            "directory with a valid config.json, or a hub id reachable from here"
        ) from exc


def resolve_task(config, task: str | None) -> str:
    if task is not None:
        if task not in TASKS:
            raise UserError(f"unknown task '{task}'; choose one of: {choices(TASKS)}")
        return task
    archs = getattr(config, "architectures", None) or []
    return "classification" if any("SequenceClassification" in a for a in archs) else "embedding"


def supported_config(source: str):
    """The config of ``source``, or a UserError when its architecture is not supported."""
    config = read_config(source)
    if config.model_type not in ARCHITECTURES:
        raise UserError(
            f"architecture '{config.model_type}' is not supported; "
            f"supported: {choices(ARCHITECTURES)}"
        )
    return config


def load_pretrained(source: str | os.PathLike, cls, **kwargs):
    """(model of class ``cls``, fast tokenizer) from a supported model directory or hub id;
    raises UserError for anything a user can fix. ``kwargs`` go to from_pretrained."""
    from transformers import AutoTokenizer

    source = str(source)
    supported_config(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
        model = cls.from_pretrained(
            source, attn_implementation="eager", dtype=torch.float32, **kwargs
        )
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        first = first_line(exc)
        raise UserError(
            f"could not load weights or tokenizer of '{source}' ({first}); the directory "
            "needs model.safetensors (or pytorch_model.bin) and a tokenizer"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"'{source}' has no fast tokenizer (tokenizer.json); save one with it")
    return model, tokenizer


def load_model(source: str | os.PathLike, task: str | None = None) -> LoadedModel:
    """Load ``source`` for export; raises UserError for anything a user can fix."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    source = str(source)
    config = supported_config(source)
    task = resolve_task(config, task)
    cls = AutoModelForSequenceClassification if task == "classification" else AutoModel
    model, tokenizer = load_pretrained(source, cls)
    model.eval()
    labels: list[str] = []
    if task == "classification":
        id2label = getattr(config, "id2label", None) or {}
        labels = [str(id2label.get(i, f"LABEL_{i}")) for i in range(config.num_labels)]
    wrapper = ExportWrapper(model, task).eval()
    return LoadedModel(wrapper, tokenizer, config, task, labels, source, source_hash(source))


def export_ready(loaded: LoadedModel) -> nn.Module:
    """A copy of the module rewritten for export (grouped 1x1 convolutions as matmuls)."""
    import copy

    module = copy.deepcopy(loaded.module)
    grouped_convs_as_linear(module)
    return module.eval()
