"""Student size from a budget: the largest student of a family that meets a speed-up or a
latency target, instead of a fixed preset (``--size auto``).

The rule. Candidates are the family's presets (tiny, small, medium) and a few knob
variants: every depth from one layer to medium's, and for MobileBERT half the bottleneck
width at the small and medium depths (narrower BERT or SqueezeBERT students would lose
the teacher's layers, which init_from_teacher copies only at the teacher's width). Each
is built with random weights (latency does not depend on them) and timed against the
teacher in the same run: torch eager, batch 1, one thread, at the data's median token
length, the models interleaved round by round so that a slow moment hits them all; a
model's figure is its median. The chosen student is the largest (most parameters, then
FLOPs) whose predicted speed-up and latency meet the targets.

On a device other than this host the speed-ups measured here are kept and the latency
is scaled: the device's roofline estimate of the teacher (sdk/lab/emulated.py, from its
FLOPs and weights at that length) divided by each speed-up. A device without peak
figures gets the FLOPs ratio as its speed-up and no latency. The record says which.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from pocketbert.converters.students import (
    SIZES,
    StudentSpec,
    build_student,
    count_params,
    forward_flops,
    resolve_knobs,
    student_config,
    transformer_layer_params,
)
from pocketbert.core.errors import UserError

DEFAULT_SPEEDUP = 4.0
ROUNDS = 15  # interleaved timing rounds (each times every model once)
LENGTH_SAMPLE = 512  # training sentences whose token lengths give the typical length


@dataclass(frozen=True)
class SizeBudget:
    """What ``--size auto`` must meet, for a family with the user's fixed knobs.

    ``estimate_ms(flops, weight_bytes)``: the device's roofline estimate, when the device
    is not this host and has peak figures; ``flops_only``: a device without them (speed-up
    from the FLOPs ratio). Neither: the device is this host, and everything is measured.
    """

    family: str = "squeezebert"
    knobs: tuple[tuple[str, Any], ...] = ()
    speedup: float | None = DEFAULT_SPEEDUP
    max_latency_ms: float | None = None
    device: str = "host"
    estimate_ms: Callable[[float, float], float] | None = field(default=None, compare=False)
    flops_only: bool = False

    @property
    def basis(self) -> str:
        if self.flops_only:
            return f"FLOPs ratio (device {self.device} has no peak figures in devices.yaml)"
        if self.estimate_ms:
            return (
                f"speed-ups measured here; latency on {self.device} = its roofline estimate of "
                "the teacher / speed-up"
            )
        return "measured here: torch eager, batch 1, 1 thread"

    def targets(self) -> str:
        parts = [f">= {self.speedup:g}x faster"] if self.speedup else []
        if self.max_latency_ms:
            parts.append(f"<= {self.max_latency_ms:g} ms on {self.device}")
        return " and ".join(parts)


@dataclass
class Candidate:
    name: str
    spec: StudentSpec
    params: int = 0
    flops: int = 0
    ms: float = 0.0  # measured here
    speedup: float = 0.0  # the one the target is judged on
    device_ms: float | None = None  # predicted latency on the budget's device
    meets: bool = False

    def row(self) -> dict:
        return {
            "name": self.name,
            "spec": self.spec.to_dict(),
            "params": self.params,
            "flops": self.flops,
            "ms": round(self.ms, 3),
            "speedup": round(self.speedup, 2),
            "device_ms": None if self.device_ms is None else round(self.device_ms, 3),
            "meets": self.meets,
        }


def candidates(budget: SizeBudget, teacher_config: Any) -> list[Candidate]:
    """The presets and knob variants of the family, one per distinct shape."""
    fixed = dict(budget.knobs)
    specs = [(size, StudentSpec(budget.family, size, **fixed)) for size in SIZES]
    depths = [resolve_knobs(s, teacher_config)["layers"] for _, s in specs]
    if "layers" not in fixed:
        specs += [
            (f"small layers={n}", StudentSpec(budget.family, "small", **{**fixed, "layers": n}))
            for n in range(1, max(depths) + 1)
        ]
    if budget.family == "mobilebert" and not {"bottleneck", "heads", "intermediate"} & set(fixed):
        head_dim = teacher_config.hidden_size // teacher_config.num_attention_heads
        for size in ("small", "medium"):
            base = resolve_knobs(StudentSpec(budget.family, size, **fixed), teacher_config)
            width = base["bottleneck"] // 2 // head_dim * head_dim
            if width >= head_dim:
                narrow = dict(bottleneck=width, heads=width // head_dim, intermediate=4 * width)
                specs.append(
                    (
                        f"{size} bottleneck={width}",
                        StudentSpec("mobilebert", size, **fixed, **narrow),
                    )
                )
    seen, out = set(), []
    for name, spec in specs:
        shape = tuple(sorted(resolve_knobs(spec, teacher_config).items()))
        if shape not in seen:
            seen.add(shape)
            out.append(Candidate(name, spec))
    return out


def typical_length(tokenizer, texts: list[str], max_len: int) -> dict[str, float]:
    """Median and p90 token length of (a seeded sample of) the training sentences."""
    sample = texts if len(texts) <= LENGTH_SAMPLE else random.Random(0).sample(texts, LENGTH_SAMPLE)
    lengths = sorted(
        len(ids) for ids in tokenizer(sample, truncation=True, max_length=max_len)["input_ids"]
    )
    return {
        "median": float(statistics.median(lengths)),
        "p90": float(lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))]),
    }


@torch.inference_mode()
def time_models(models: list[torch.nn.Module], seq: int, rounds: int = ROUNDS) -> list[float]:
    """Median ms of one batch-1 forward pass of each model at ``seq`` tokens, interleaved."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        vocab = min(m.config.vocab_size for m in models)
        ids = torch.randint(5, max(vocab, 6), (1, seq), generator=torch.Generator().manual_seed(0))
        feed = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        for m in models:
            m.eval()
            m(**feed)  # warm-up
        samples: list[list[float]] = [[] for _ in models]
        order = list(range(len(models)))
        shuffle = random.Random(0).shuffle
        for _ in range(rounds):
            shuffle(order)  # no model always runs right after the same other one
            for i in order:
                start = time.perf_counter()
                models[i](**feed)
                samples[i].append((time.perf_counter() - start) * 1e3)
        return [statistics.median(s) for s in samples]
    finally:
        torch.set_num_threads(threads)


def pick(cands: list[Candidate], budget: SizeBudget) -> Candidate:
    """Mark which candidates meet the budget; the largest of them, or a UserError."""
    for c in cands:
        c.meets = (not budget.speedup or c.speedup >= budget.speedup) and (
            not budget.max_latency_ms
            or (c.device_ms is not None and c.device_ms <= budget.max_latency_ms)
        )
    meeting = [c for c in cands if c.meets]
    if not meeting:
        fastest = max(cands, key=lambda c: c.speedup)
        at = f", {fastest.device_ms:.2f} ms" if fastest.device_ms is not None else ""
        raise UserError(
            f"no {budget.family} student meets {budget.targets()} (fastest candidate: "
            f"{fastest.name}, {fastest.speedup:.2f}x{at}); lower the target, or choose the "
            "size yourself (--size tiny, --layers N)"
        )
    return max(meeting, key=lambda c: (c.params, c.flops))


def measure(
    budget: SizeBudget, teacher: torch.nn.Module, seq: int, seed: int = 0
) -> tuple[list[Candidate], float]:
    """Build every candidate with random weights and time it with the teacher; (candidates,
    teacher ms), each candidate's speed-up and device latency filled in."""
    cands, models = [], []
    first_error = None
    for c in candidates(budget, teacher.config):
        try:
            model = build_student(None, student_config(teacher.config, c.spec), seed=seed)
        except UserError as exc:  # a variant the user's fixed knobs do not allow
            first_error = first_error or exc
            continue
        c.params, c.flops = count_params(model), forward_flops(model, seq)
        cands.append(c)
        models.append(model)
    if not cands:
        raise first_error
    teacher_ms, *ms = time_models([teacher, *models], seq)
    teacher_flops = forward_flops(teacher, seq)
    teacher_device = (
        budget.estimate_ms(teacher_flops, 4.0 * transformer_layer_params(teacher))
        if budget.estimate_ms
        else None
    )
    for c, m in zip(cands, ms, strict=True):
        c.ms = m
        c.speedup = teacher_flops / c.flops if budget.flops_only else teacher_ms / m
        if budget.flops_only:
            c.device_ms = None
        elif teacher_device is not None:
            c.device_ms = teacher_device / c.speedup
        else:
            c.device_ms = m
    return cands, teacher_ms


def choose_size(
    budget: SizeBudget, teacher: torch.nn.Module, lengths: dict[str, float], seed: int = 0
) -> tuple[StudentSpec, dict, str]:
    """(the chosen spec, the record for the summary, the one line that says why)."""
    seq = max(3, round(lengths["median"]))
    cands, teacher_ms = measure(budget, teacher, seq, seed)
    chosen = pick(cands, budget)
    rows = [c.row() for c in cands]  # the line quotes the figures the record keeps
    listed = ", ".join(f"{r['name']} {r['speedup']:.1f}x" for r in rows)
    at = f", {chosen.device_ms:.2f} ms on {budget.device}" if chosen.device_ms is not None else ""
    line = (
        f"student size auto: {budget.family} {chosen.name} ({chosen.params / 1e6:.2f}M params), "
        f"{chosen.speedup:.1f}x faster than the teacher{at} at {seq} tokens ({budget.basis}); "
        f"the largest meeting {budget.targets()}; candidates: {listed}"
    )
    record = {
        "chosen": chosen.name,
        "targets": {
            "speedup": budget.speedup,
            "max_latency_ms": budget.max_latency_ms,
            "device": budget.device,
        },
        "basis": budget.basis,
        "seq_len": seq,
        "token_lengths": lengths,
        "teacher_ms": round(teacher_ms, 3),
        "candidates": rows,
    }
    return chosen.spec, record, line


def resolve_size(cfg, teacher, tokenizer, texts: list[str], say) -> tuple[Any, dict]:
    """``cfg`` (a DistillConfig) with a ``--size auto`` budget replaced by the chosen spec,
    and ``{"student_size": record}`` for the summary; unchanged and {} otherwise."""
    if not isinstance(cfg.student, SizeBudget):
        return cfg, {}
    lengths = typical_length(tokenizer, texts, cfg.train.max_seq_len)
    spec, record, line = choose_size(cfg.student, teacher, lengths, cfg.train.seed)
    say(line)
    return replace(cfg, student=spec), {"student_size": record}
