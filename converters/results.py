"""What a finished training run records: the summary's shared entries and the model directory.

``save_result`` stages the model, its tokenizer, ``summary.json`` and the task's text
(``task_text.json``, read by ``pocketbert export``) in the run's work directory, then
publishes them at the output in one rename, so a failed run never leaves half of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pocketbert.converters import run_dir
from pocketbert.core.data import LabelledData
from pocketbert.core.task_text import write_task_text


def warn(lines: list[str | None], say: Callable[[str], None]) -> list[str]:
    """Say each warning of ``lines`` (None: no warning); returns those said."""
    said = [line for line in lines if line]
    for line in said:
        say(f"warning: {line}")
    return said


def warning_fields(warnings: list[str]) -> dict:
    """The summary's ``warnings`` (every one) and ``warning`` (the first; chance level first)."""
    ordered = sorted(warnings, key=lambda w: "at chance level" not in w)
    return {"warnings": ordered, "warning": ordered[0]} if ordered else {}


def training_record(result) -> dict:
    """The summary's record of the training loop: history, the epoch kept, speed."""
    return {
        "history": result.history,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "train_seconds": round(result.seconds, 1),
        "examples_per_s": round(result.examples_per_s, 1),
    }


def data_summary(data: LabelledData, **more: int) -> dict:
    """The summary's record of the data: labels, examples per split and per class."""
    return {
        "labels": data.labels,
        "examples": {
            "train": len(data.train),
            "validation": len(data.validation),
            "test": len(data.test),
            **more,
        },
        "class_counts": {split: data.counts(split) for split in ("train", "validation", "test")},
        "unlabelled_dropped": data.dropped,
    }


def save_result(
    model, tokenizer, summary: dict, work: Path, out: Path, data: LabelledData, seed: int = 0
) -> None:
    """Stage the model, tokenizer, summary and the task's text (``task_text.json``) in
    ``work``, then publish them at ``out``."""
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    staged = work / "result"
    model.save_pretrained(staged)
    tokenizer.save_pretrained(staged)
    write_task_text(staged, data, seed=seed)
    (staged / run_dir.SUMMARY).write_text(json.dumps(summary, indent=2))
    run_dir.publish(staged, out, work)
