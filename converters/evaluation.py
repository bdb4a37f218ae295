"""How a trained classifier is judged on the task's held-out test split.

``scores_on``: accuracy, macro-F1 and per-class F1 (``pocketbert.core.metrics``).
``compare``: a student's scores beside its teacher's (accuracy and macro-F1 kept, classes
lost). ``latency_on_sentences``: the teacher's and the student's latency on the test
sentences themselves, each at its own token length, tokenization included.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from pocketbert.converters.batches import Example
from pocketbert.converters.train_loop import predictions
from pocketbert.core.metrics import class_scores, kept, lost_classes

LATENCY_SENTENCES = 200  # test sentences timed (the first few also warm up, untimed)
WARMUP = 5


def scores_on(model: nn.Module, examples: list[Example], labels: list[str], batch_size: int):
    """Scores of ``model`` on labelled ``examples``: accuracy, macro-F1, per-class F1."""
    predicted, true = predictions(model, examples, batch_size)
    return class_scores(predicted, true, len(labels))


def summary_fields(scores: dict, labels: list[str], prefix: str = "") -> dict:
    """The summary's entries for one model's test scores (``prefix``: e.g. ``teacher_``)."""
    return {
        f"{prefix}test_accuracy": round(scores["accuracy"], 5),
        f"{prefix}test_macro_f1": round(scores["macro_f1"], 5),
        f"{prefix}test_f1": dict(zip(labels, scores["f1"], strict=True)),
    }


def compare(student: dict, teacher: dict, labels: list[str]) -> dict:
    """Accuracy and macro-F1 kept, and the classes the teacher predicts and the student lost."""
    return {
        "accuracy_kept": kept(student["accuracy"], teacher["accuracy"]),
        "macro_f1_kept": kept(student["macro_f1"], teacher["macro_f1"]),
        "lost_classes": lost_classes(student, teacher, labels),
    }


def score_lines(summary: dict, labels: list[str]) -> list[str]:
    """The final lines about the test split: the two models' scores and the per-class F1."""

    def pct(x):
        return "n/a" if x is None else f"{x:.1%}"

    lines = [
        f"test: student accuracy {summary['test_accuracy']:.2%}, macro-F1 "
        f"{summary['test_macro_f1']:.3f}; teacher {summary['teacher_test_accuracy']:.2%}, "
        f"{summary['teacher_test_macro_f1']:.3f}; kept {pct(summary['accuracy_kept'])} "
        f"accuracy, {pct(summary['macro_f1_kept'])} macro-F1",
        "per-class F1 (student / teacher): "
        + ", ".join(
            f"{lab} {summary['test_f1'][lab]:.2f}/{summary['teacher_test_f1'][lab]:.2f}"
            for lab in labels
        ),
    ]
    return lines


def _timed(model: nn.Module, tokenizer, text: str, max_len: int) -> float:
    start = time.perf_counter()
    batch = tokenizer(text, truncation=True, max_length=max_len, return_tensors="pt")
    model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.argmax(-1)
    return (time.perf_counter() - start) * 1000


@torch.no_grad()
def latency_on_sentences(
    models: dict[str, nn.Module],
    tokenizer,
    texts: list[str],
    max_len: int,
    *,
    limit: int = LATENCY_SENTENCES,
    threads: int = 1,
    say: Callable[[str], None] | None = None,
) -> dict:
    """``{"p50_ms": {name: ms}, "sentences": timed}``: torch eager on the CPU, batch 1.

    Each sentence is tokenized (included in the time) at its own length; the models take
    turns on every sentence, in alternating order, so a drift in the machine's speed hits
    them alike. ``threads`` torch threads (restored afterwards).
    """
    sample = texts[: limit + WARMUP]
    placed = {name: (m, next(m.parameters()).device, m.training) for name, m in models.items()}
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    times: dict[str, list[float]] = {name: [] for name in models}
    try:
        for model, _, _ in placed.values():
            model.to("cpu").eval()
        names = list(models)
        for i, text in enumerate(sample):
            for name in names if i % 2 == 0 else reversed(names):
                tok = tokenizer[name] if isinstance(tokenizer, dict) else tokenizer
                ms = _timed(models[name], tok, text, max_len)
                if i >= WARMUP or len(sample) <= WARMUP:
                    times[name].append(ms)
    finally:
        torch.set_num_threads(before)
        for model, device, training in placed.values():
            model.to(device).train(training)
    return {
        "p50_ms": {name: statistics.median(t) if t else None for name, t in times.items()},
        "sentences": len(next(iter(times.values()), [])),
    }


def speed_fields(timed: dict, threads: int) -> dict:
    """The summary's speed-up entries from ``latency_on_sentences`` of teacher and student."""
    teacher, student = timed["p50_ms"]["teacher"], timed["p50_ms"]["student"]
    return {
        "speedup_on_test_sentences": round(teacher / student, 2) if teacher and student else None,
        "teacher_p50_ms_on_test_sentences": round(teacher, 3) if teacher else None,
        "student_p50_ms_on_test_sentences": round(student, 3) if student else None,
        "latency_sentences": timed["sentences"],
        "latency_threads": threads,
    }
