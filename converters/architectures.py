"""The supported encoder architectures, and ``preflight``: what can be checked before torch.

This module imports only json and pathlib, so bad input (a missing directory, a broken
config.json, an architecture outside the table, a ``--max-seq-len`` past the model's
positions, no tokenizer, truncated weights, a task the model has no head for) is refused
in milliseconds instead of after the seconds and hundreds of MB that torch costs.

``ARCHITECTURES`` is the one table of what pocketbert exports: ``model_type`` -> how the
family differs where export cares. Every entry is exported in every format and precision
by tests/test_architectures.py; an architecture that does not pass there is not listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pocketbert.core.errors import UserError, choices

TASKS = ("classification", "embedding")
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class Architecture:
    """How one transformers ``model_type`` is loaded and exported.

    Every family is exported with the same two inputs (input_ids, attention_mask):
    token types, where the family has them, are all type 0 (single-sentence tasks).
    """

    model_type: str
    tokenizer: str  # "wordpiece" | "byte-level-bpe" | "sentencepiece-unigram"
    token_types: bool  # has a token-type table (fed zeros); False: the family has none
    # Positions start after the padding index (RoBERTa's position ids are
    # padding_idx + 1 + i), so max_position_embeddings - (pad_token_id + 1) tokens fit.
    # The export feeds them from a constant table (see model.ExportWrapper): the model's
    # own cumsum over the ids fails PT2E int8 (its integer scalars become float).
    positions_after_padding: bool = False
    notes: str = ""

    def position_offset(self, config: dict) -> int:
        """The position id of a sequence's first token (pad_token_id + 1 for RoBERTa)."""
        return int(config.get("pad_token_id") or 0) + 1 if self.positions_after_padding else 0

    def position_limit(self, config: dict) -> int | None:
        """The longest sequence the model's position table covers (None: not stated)."""
        positions = config.get("max_position_embeddings")
        if not isinstance(positions, int):
            return None
        return positions - self.position_offset(config)


ARCHITECTURES: dict[str, Architecture] = {
    a.model_type: a
    for a in (
        Architecture("bert", "wordpiece", token_types=True),
        Architecture("distilbert", "wordpiece", token_types=False, notes="no token types"),
        Architecture(
            "mobilebert",
            "wordpiece",
            token_types=True,
            notes="bottleneck layers; dynamic-seq ExecuTorch needs seq >= 3",
        ),
        Architecture(
            "squeezebert",
            "wordpiece",
            token_types=True,
            notes="grouped 1x1 convolutions, rewritten as matmuls for export",
        ),
        Architecture(
            "roberta",
            "byte-level-bpe",
            token_types=False,
            positions_after_padding=True,
            notes="one token type; position ids counted from the pad id (1) + 1",
        ),
        Architecture(
            "xlm-roberta",
            "sentencepiece-unigram",
            token_types=False,
            positions_after_padding=True,
            notes="RoBERTa with a multilingual SentencePiece vocabulary",
        ),
        Architecture(
            "electra",
            "wordpiece",
            token_types=True,
            notes="embedding_size projected to hidden_size; a discriminator checkpoint "
            "(ElectraForPreTraining) has no classifier: fine-tune it, or export embeddings",
        ),
        Architecture(
            "albert",
            "sentencepiece-unigram",
            token_types=True,
            notes="factorized embeddings (embedding_size -> hidden_size); one layer's "
            "weights shared by every layer, unrolled into each exported graph",
        ),
    )
}
# Tried and refused, with what broke (tests/test_architectures.py's matrix, tiny models).
REFUSED = {
    "deberta-v2": "its relative attention exports to ONNX fp32, but the int8 graph "
    "onnxruntime quantizes is invalid (nodes not topologically sorted)",
}
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len")  # sentence-transformers' order
_ST_MODULES = ("Transformer", "Pooling", "Normalize")


@dataclass(frozen=True)
class Pooling:
    """How token states become one sentence embedding (sentence-transformers' modules).

    ``modes`` are concatenated in order, as sentence-transformers does; ``normalize``
    scales the result to unit length (its Normalize module).
    """

    modes: tuple[str, ...] = ("mean",)
    normalize: bool = False
    source: str = "default"  # "modules.json" when read from the model directory

    def to_dict(self) -> dict:
        return {"modes": list(self.modes), "normalize": self.normalize, "source": self.source}


@dataclass(frozen=True)
class ModelInfo:
    """What ``preflight`` learnt about a model without loading it."""

    source: str
    local: bool  # False: a hub id, whose config is checked once transformers fetches it
    architecture: Architecture | None
    task: str | None
    labels: list[str] = field(default_factory=list)
    position_limit: int | None = None
    pooling: Pooling | None = None  # embeddings only


def _looks_local(source: str) -> bool:
    return Path(source).exists() or source.startswith((".", "/", "~")) or source.count("/") > 1


def preflight(
    source: str | Path,
    task: str | None = None,
    max_seq_len: int | None = None,
    *,
    pooling: bool = True,
) -> ModelInfo:
    """Check ``source`` (a model directory or hub id) for export without importing torch.

    Raises UserError naming what is wrong and what would be right. ``pooling=False``
    skips the sentence-transformers pooling (training uses the encoder, not its pooling).
    """
    source = str(source)
    if task is not None and task not in TASKS:
        raise UserError(f"unknown task '{task}'; choose one of: {choices(TASKS)}")
    if not _looks_local(source):
        return ModelInfo(source, local=False, architecture=None, task=task)
    path = Path(source)
    if not (path / "config.json").is_file():
        raise UserError(
            f"model '{source}' is not a transformers model directory (no config.json); "
            "give a directory written by save_pretrained or a hub id"
        )
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"could not read model '{source}' (config.json: {exc}); give a transformers "
            "model directory with a valid config.json"
        ) from exc
    info = check_config(config, source, task, max_seq_len)
    _check_files(path, source)
    how = read_pooling(path, source) if pooling and info.task == "embedding" else None
    return ModelInfo(
        source,
        local=True,
        architecture=info.architecture,
        task=info.task,
        labels=info.labels,
        position_limit=info.position_limit,
        pooling=how,
    )


def check_config(
    config: dict, source: str, task: str | None = None, max_seq_len: int | None = None
) -> ModelInfo:
    """Architecture, task and sequence length checked against a config.json's fields."""
    if not isinstance(config, dict):
        raise UserError(
            f"could not read model '{source}' (config.json holds {type(config).__name__}, "
            "not an object); give a transformers model directory with a valid config.json"
        )
    model_type = config.get("model_type")
    if not model_type:
        raise UserError(
            f"model '{source}' has no model_type in config.json, so its architecture is "
            f"unknown; supported: {choices(ARCHITECTURES)}"
        )
    arch = ARCHITECTURES.get(str(model_type))
    if arch is None:
        why = f" ({REFUSED[model_type]})" if model_type in REFUSED else ""
        raise UserError(
            f"architecture '{model_type}' is not supported{why}; "
            f"supported: {choices(ARCHITECTURES)}"
        )
    heads = [str(a) for a in config.get("architectures") or []]
    classifier = any("ForSequenceClassification" in a for a in heads)
    if task is None:
        task = "classification" if classifier else "embedding"
    elif task == "classification" and heads and not classifier:
        raise UserError(
            f"model '{source}' has no classification head (config.json architectures: "
            f"{', '.join(heads)}); use --task embedding, or fine-tune it first "
            "(pocketbert finetune)"
        )
    limit = arch.position_limit(config)
    if max_seq_len is not None and limit is not None and max_seq_len > limit:
        raise UserError(
            f"--max-seq-len {max_seq_len} is longer than model '{source}' has positions for "
            f"({limit} tokens, from max_position_embeddings in config.json); give at most {limit}"
        )
    labels: list[str] = []
    if task == "classification":
        id2label = config.get("id2label") or {}
        count = int(config.get("num_labels") or len(id2label) or 2)
        labels = [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(count)]
    return ModelInfo(source, True, arch, task, labels, limit)


def _check_files(path: Path, source: str) -> None:
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(
            f"model directory '{source}' has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer beside the model (tokenizer.save_pretrained(dir))"
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise UserError(
            f"model directory '{source}' has no weights (model.safetensors or "
            "pytorch_model.bin); save the model with save_pretrained"
        )
    for weights in sorted(path.glob("*.safetensors")):
        problem = _safetensors_problem(weights)
        if problem:
            raise UserError(
                f"could not load weights of '{source}' ({weights.name} {problem}); "
                "copy or save the model again"
            )


def _safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be whole (header unreadable, truncated), else None."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < length <= size - 8:
            return "has no valid safetensors header"
        try:
            header = json.loads(fh.read(length))
            end = max(
                (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
                default=0,
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "has a corrupt safetensors header"
    if 8 + length + end != size:
        return f"is truncated or padded: {size} bytes where its header describes {8 + length + end}"
    return None


def read_pooling(path: Path, source: str) -> Pooling:
    """The sentence-transformers pooling (modules.json, 1_Pooling/config.json, Normalize)."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return Pooling()
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        kinds = [(str(m["type"]).rsplit(".", 1)[-1], str(m.get("path", ""))) for m in modules]
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise UserError(
            f"could not read '{modules_file}' ({exc}); fix it, or remove it for mean pooling"
        ) from exc
    other = [k for k, _ in kinds if k not in _ST_MODULES]
    if other:
        raise UserError(
            f"model '{source}' has sentence-transformers module(s) {', '.join(other)} "
            f"that pocketbert does not export; supported: {choices(_ST_MODULES)}"
        )
    modes: tuple[str, ...] = ("mean",)
    for kind, sub in kinds:
        if kind == "Pooling":
            modes = _pooling_modes(path / sub / "config.json", source)
    normalize = any(kind == "Normalize" for kind, _ in kinds)
    return Pooling(modes, normalize, source="modules.json")


def _pooling_modes(config_file: Path, source: str) -> tuple[str, ...]:
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"could not read the pooling config '{config_file}' ({exc})") from exc
    named = [
        k.removeprefix("pooling_mode_")
        for k, v in config.items()
        if k.startswith("pooling_mode_") and v is True
    ]
    named = [n.removesuffix("_tokens").removesuffix("_token") for n in named]
    other = [n for n in named if n not in POOLING_MODES]
    if other or not named:
        raise UserError(
            f"model '{source}' pools with {', '.join(other) or 'no mode'} ({config_file}); "
            f"pocketbert exports: {choices(POOLING_MODES)}"
        )
    return tuple(m for m in POOLING_MODES if m in named)
