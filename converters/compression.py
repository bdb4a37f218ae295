"""Compression methods inside a distillation: applied to the student, then distilled to recover.

``DistillConfig.compress`` lists method configs (``converters.methods``). Every method but
vocabulary pruning runs on the new student before training (``before_training``), in the
order given; structured pruning ranks on the training sentences. Vocabulary pruning runs
after training (``after_training``): it is exact on the text it keeps the tokens of, so it
needs no recovery, and the student then trains with the teacher's ids. Its kept ids and
the test split's out-of-vocabulary rate are settled before training (``plan_vocabulary``),
so a vocabulary that would leave the test split mostly [UNK] is refused before any work.
Each method's record (the summary's ``compression``) says what it did and the bytes it
saved: fp32 (4 bytes a parameter) and int8 (1 byte) of the parameters it removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path

from pocketbert.converters.compress_configs import (
    FactorizeEmbeddings,
    LowRank,
    PruneStructure,
    PruneVocabulary,
    ShareLayers,
)
from pocketbert.converters.low_rank import RECORD
from pocketbert.converters.methods import apply_method
from pocketbert.converters.structured_prune import check_shapes
from pocketbert.converters.vocab_prune import (
    OOV_WARN,
    UNK_REFUSE,
    kept_ids,
    oov_figures,
    prune_tokenizer,
    unk_rate,
)
from pocketbert.core.errors import UserError

RANK_BATCHES = 16  # training batches structured pruning ranks heads and neurons on
RANK_BATCH_SIZE = 16
NAMES = {
    FactorizeEmbeddings: "factorize_embeddings",
    PruneVocabulary: "prune_vocabulary",
    PruneStructure: "prune_structure",
    LowRank: "low_rank",
    ShareLayers: "share_layers",
}


def method_record(cfg) -> dict:
    """A config as JSON (data a method ranks on is left out)."""
    kept = (
        {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.compare}
        if is_dataclass(cfg)
        else {}
    )
    kept.pop("keep", None)  # the kept ids: their count is in the record
    kept = {k: list(v) if isinstance(v, tuple) else v for k, v in kept.items()}  # as in JSON
    return {"method": NAMES.get(type(cfg), type(cfg).__name__), **kept}


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _saved(before: int, after: int) -> dict:
    return {
        "params_before": before,
        "params_after": after,
        "saved_bytes_fp32": 4 * (before - after),
        "saved_bytes_int8": before - after,
    }


def check_methods(methods: tuple, student_config) -> None:
    """What can be refused from the student's config alone, before training."""
    for cfg in methods:
        if isinstance(cfg, PruneStructure):
            check_shapes(student_config, cfg)


def _rank_batches(tokenizer, texts: list[str], labels: list[int], max_len: int) -> list[dict]:
    import torch

    batches = []
    for start in range(0, min(len(texts), RANK_BATCHES * RANK_BATCH_SIZE), RANK_BATCH_SIZE):
        enc = tokenizer(
            texts[start : start + RANK_BATCH_SIZE],
            padding=True,
            truncation=True,
            max_length=max_len,
            return_tensors="pt",
        )
        batches.append(
            {
                "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"],
                "labels": torch.tensor(labels[start : start + RANK_BATCH_SIZE]),
            }
        )
    return batches


def before_training(
    student, methods: tuple, tokenizer, texts, labels, max_len: int, say: Callable[[str], None]
) -> tuple[object, list[dict]]:
    """The student with every method but vocabulary pruning applied; their records."""
    records = []
    for cfg in methods:
        if isinstance(cfg, PruneVocabulary):
            continue
        if isinstance(cfg, PruneStructure) and cfg.batches is None:
            cfg = replace(cfg, batches=_rank_batches(tokenizer, texts, labels, max_len))
        before = _params(student)
        student = apply_method(student, cfg)
        record = {**method_record(cfg), **_saved(before, _params(student))}
        if isinstance(cfg, PruneStructure):
            c = student.config
            kept_heads = c.num_attention_heads - len(next(iter(c.pruned_heads.values()), []))
            record |= {"heads_per_layer": kept_heads, "intermediate_size": c.intermediate_size}
        if isinstance(cfg, LowRank):
            record["ranks"] = {
                k: v["rank"]
                for k, v in (getattr(student.config, RECORD, None) or {}).items()
                if v["kind"] == "low_rank"
            }
        records.append(record)
        say(_line(record))
    return student, records


def _line(record: dict) -> str:
    saved = record["saved_bytes_fp32"]
    return (
        f"{record['method']}: {record['params_before'] / 1e6:.2f}M -> "
        f"{record['params_after'] / 1e6:.2f}M params (saves {saved / 1e6:.2f} MB fp32, "
        f"{record['saved_bytes_int8'] / 1e6:.2f} MB int8)"
    )


@dataclass
class VocabularyPlan:
    keep: tuple[int, ...]
    figures: dict
    warning: str | None


def plan_vocabulary(
    methods: tuple, tokenizer, texts: list[str], test_texts: list[str]
) -> VocabularyPlan | None:
    """The kept ids of the vocabulary-pruning method (None: none asked), and the test
    split's OOV figures; refuses a vocabulary that leaves the test split mostly [UNK]."""
    cfg = next((m for m in methods if isinstance(m, PruneVocabulary)), None)
    if cfg is None:
        return None
    keep = cfg.keep or kept_ids(tokenizer, texts, cfg.min_count, cfg.characters)
    figures = {"vocab_before": len(tokenizer), "vocab_after": len(keep)}
    figures |= {f"test_{k}": v for k, v in oov_figures(tokenizer, keep, test_texts).items()}
    rate = figures["test_oov_rate"]
    pruned = prune_tokenizer(tokenizer, keep)
    figures["test_unk_rate"] = unk_rate(pruned, test_texts)
    if figures["test_unk_rate"] > UNK_REFUSE:
        raise UserError(
            f"the pruned vocabulary ({len(keep)} tokens) turns {figures['test_unk_rate']:.0%} "
            "of the test split's tokens into [UNK]; lower min_count or add unlabelled text"
        )
    warning = None
    if rate > OOV_WARN:
        warning = (
            f"{rate:.1%} of the test split's tokens are outside the pruned vocabulary "
            f"({len(keep)} of {len(tokenizer)} tokens kept; {figures['test_unk_rate']:.1%} "
            "become [UNK]); lower min_count or add unlabelled text of the task"
        )
    return VocabularyPlan(keep, figures, warning)


def after_training(
    student, tokenizer, plan: VocabularyPlan | None, work: Path, say: Callable[[str], None]
):
    """(student, its tokenizer, the vocabulary record or None) once training is over."""
    if plan is None:
        return student, tokenizer, None
    before = _params(student)
    student = apply_method(student, PruneVocabulary(keep=plan.keep))
    student_tok = prune_tokenizer(tokenizer, plan.keep, work)
    record = {"method": "prune_vocabulary", **plan.figures, **_saved(before, _params(student))}
    say(_line(record) + f"; test tokens outside it: {plan.figures['test_oov_rate']:.2%}")
    return student, student_tok, record


def fingerprint(methods: tuple) -> list[dict]:
    """The methods as they enter a run's fingerprint (a change restarts the run)."""
    return [
        {**method_record(m), **({"keep": len(m.keep)} if getattr(m, "keep", None) else {})}
        for m in methods
    ]
