"""Vocabulary pruning: keep the word-embedding rows of the tokens the task's text uses.

    keep = kept_ids(tokenizer, train_texts + unlabelled)        # ids, in the original order
    model = apply_method(model, PruneVocabulary(keep=keep))     # vocab_size = len(keep)
    tokenizer = prune_tokenizer(tokenizer, keep, work_dir)      # the same vocabulary rewritten

Kept: every token of the given text, the special and added tokens, and (``characters``)
the vocabulary's single ASCII characters with their ``##`` forms, so that an unseen word
still splits into pieces rather than one [UNK]. Ids are renumbered in their original
order ([PAD] stays 0). The WordPiece vocabulary in ``tokenizer.json`` and ``vocab.txt``
is rewritten to match; on text made only of kept pieces the new tokenizer gives the same
tokens (greedy longest-match: removing entries never makes a longer match), with ids
``keep.index(old_id)``. The model stays an ordinary transformers model (a smaller
``vocab_size``).
"""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from pocketbert.converters.compress_configs import PruneVocabulary
from pocketbert.converters.methods import register_method
from pocketbert.core.errors import UserError

OOV_WARN = 0.02  # test tokens outside the kept vocabulary above this: a warning
UNK_REFUSE = 0.5  # test tokens that become [UNK] above this: refused ("mostly [UNK]")
ENCODE_CHUNK = 1024


def _wordpiece(tokenizer) -> dict:
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    if state["model"]["type"] != "WordPiece":
        raise UserError(
            f"vocabulary pruning rewrites WordPiece vocabularies; this tokenizer is "
            f"{state['model']['type']} (give a BERT-family teacher's WordPiece tokenizer)"
        )
    return state


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    out: list[list[int]] = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        out += tokenizer(texts[start : start + ENCODE_CHUNK], add_special_tokens=False)["input_ids"]
    return out


def kept_ids(
    tokenizer, texts: list[str], min_count: int = 1, characters: bool = True
) -> tuple[int, ...]:
    """The ids to keep for ``texts`` (see the module's docstring), ascending."""
    vocab = _wordpiece(tokenizer)["model"]["vocab"]
    counts = Counter(i for ids in _ids(tokenizer, texts) for i in ids)
    keep = {i for i, n in counts.items() if n >= min_count}
    keep |= set(tokenizer.all_special_ids) | {
        t["id"] for t in _wordpiece(tokenizer)["added_tokens"]
    }
    if characters:
        chars = string.ascii_lowercase + string.digits + string.punctuation
        if not getattr(tokenizer, "do_lower_case", True):
            chars += string.ascii_uppercase
        keep |= {vocab[p] for c in chars for p in (c, f"##{c}") if p in vocab}
    return tuple(sorted(keep))


def oov_figures(tokenizer, keep: tuple[int, ...], texts: list[str]) -> dict:
    """On ``texts``: the share of the original tokenizer's tokens outside ``keep`` (OOV)."""
    kept = set(keep)
    ids = [i for row in _ids(tokenizer, texts) for i in row]
    unk = tokenizer.unk_token_id
    oov = sum(i not in kept for i in ids)
    return {
        "tokens": len(ids),
        "oov_rate": round(oov / max(len(ids), 1), 5),
        "original_unk_rate": round(sum(i == unk for i in ids) / max(len(ids), 1), 5),
    }


def unk_rate(tokenizer, texts: list[str]) -> float:
    ids = [i for row in _ids(tokenizer, texts) for i in row]
    return round(sum(i == tokenizer.unk_token_id for i in ids) / max(len(ids), 1), 5)


@register_method(PruneVocabulary)
def prune_vocabulary(model: nn.Module, config: PruneVocabulary) -> nn.Module:
    if config.keep is None:
        raise ValueError("PruneVocabulary needs keep ids: compute them with kept_ids(...)")
    from pocketbert.converters.low_rank import FactorizedEmbedding

    embedding = model.get_input_embeddings()
    table = embedding.table if isinstance(embedding, FactorizedEmbedding) else embedding
    vocab = table.num_embeddings
    if config.keep[-1] >= vocab:
        raise UserError(f"vocabulary keep id {config.keep[-1]} is past the table ({vocab} rows)")
    index = torch.tensor(config.keep)
    pad = model.config.pad_token_id
    padding_idx = config.keep.index(pad) if pad is not None and pad in config.keep else None
    smaller = nn.Embedding(len(index), table.embedding_dim, padding_idx=padding_idx)
    with torch.no_grad():
        smaller.weight.copy_(table.weight[index])
    if isinstance(embedding, FactorizedEmbedding):
        embedding.table, embedding.num_embeddings = smaller, len(index)
        embedding.padding_idx = padding_idx
    else:
        model.set_input_embeddings(smaller)
    model.config.vocab_size = len(index)
    if pad is not None:
        model.config.pad_token_id = padding_idx if padding_idx is not None else 0
    return model


def _remap_processor(proc: dict | None, remap: dict[int, int]) -> None:
    if not proc:
        return
    if proc.get("type") == "Sequence":
        for p in proc.get("processors", []):
            _remap_processor(p, remap)
    for key in ("cls", "sep"):  # BertProcessing: [token, id]
        if isinstance(proc.get(key), list):
            proc[key][1] = remap[proc[key][1]]
    for entry in (proc.get("special_tokens") or {}).values():  # TemplateProcessing
        entry["ids"] = [remap[i] for i in entry["ids"]]


def prune_tokenizer(tokenizer, keep: tuple[int, ...], work: str | Path | None = None):
    """A copy of ``tokenizer`` whose vocabulary is the ``keep`` ids, renumbered in order."""
    from transformers import AutoTokenizer

    state = _wordpiece(tokenizer)
    remap = {old: new for new, old in enumerate(keep)}
    by_id = {i: t for t, i in state["model"]["vocab"].items()}
    missing = [t["content"] for t in state["added_tokens"] if t["id"] not in remap]
    if missing:
        raise UserError(f"vocabulary pruning must keep the special tokens; missing {missing}")
    state["model"]["vocab"] = {by_id[old]: new for old, new in remap.items()}
    for t in state["added_tokens"]:
        t["id"] = remap[t["id"]]
    _remap_processor(state.get("post_processor"), remap)
    if state.get("padding") and state["padding"].get("pad_id") is not None:
        state["padding"]["pad_id"] = remap.get(state["padding"]["pad_id"], 0)
    with tempfile.TemporaryDirectory(prefix="pocketbert-vocab-", dir=work) as tmp:
        staged = Path(tmp)
        tokenizer.save_pretrained(staged)
        (staged / "tokenizer.json").write_text(json.dumps(state, ensure_ascii=False))
        ordered = sorted(state["model"]["vocab"], key=state["model"]["vocab"].get)
        (staged / "vocab.txt").write_text("".join(f"{t}\n" for t in ordered), encoding="utf-8")
        config_path = staged / "tokenizer_config.json"
        tok_config = json.loads(config_path.read_text())
        decoder = tok_config.get("added_tokens_decoder") or {}
        tok_config["added_tokens_decoder"] = {str(remap[int(k)]): v for k, v in decoder.items()}
        config_path.write_text(json.dumps(tok_config, indent=2, ensure_ascii=False))
        pruned = AutoTokenizer.from_pretrained(staged, use_fast=True)
        shutil.rmtree(staged, ignore_errors=True)
    return pruned
