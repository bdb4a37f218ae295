"""The task's own text, kept in a model directory so that its exports are judged on it.

``pocketbert finetune`` and ``pocketbert distill`` write ``task_text.json`` beside the
model: sentences of the training split (for int8 calibration) and labelled sentences of the
held-out test split (for the parity gate). The two never share a sentence, so the gate is
never judged on text the quantizer calibrated on. ``pocketbert export`` reads the file
when it exports that directory.

    {"version": 1, "source": "reviews.csv", "labels": ["neg", "pos"],
     "calibration": ["a training sentence", ...],
     "verify": [{"text": "a test sentence", "label": "pos"}, ...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pocketbert.core.errors import UserError
from pocketbert.core.texts import sample_in_order

FILE = "task_text.json"
VERSION = 1
CALIBRATION_ROWS = 512  # training sentences kept for calibration
VERIFY_ROWS = 1000  # held-out labelled sentences kept for the parity gate


@dataclass(frozen=True)
class TaskText:
    """Calibration sentences and labelled verification rows of one task."""

    calibration: list[str]
    verify: list[tuple[str, str | None]]  # (text, label or None)
    labels: list[str]
    source: str

    @property
    def labelled(self) -> bool:
        return bool(self.verify) and all(label is not None for _, label in self.verify)


def write_task_text(directory: str | Path, data, *, seed: int = 0) -> Path:
    """Write ``task_text.json`` for ``data`` (a ``LabelledData``) into ``directory``."""
    calibration = sample_in_order([t for t, _ in data.train], CALIBRATION_ROWS, seed)
    held_out = set(calibration)
    verify = [(t, lab) for t, lab in data.test if t not in held_out]
    record = {
        "version": VERSION,
        "source": str(data.source),
        "labels": list(data.labels),
        "calibration": calibration,
        "verify": [
            {"text": t, "label": lab} for t, lab in sample_in_order(verify, VERIFY_ROWS, seed)
        ],
    }
    path = Path(directory) / FILE
    path.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    return path


def read_task_text(directory: str | Path) -> TaskText | None:
    """The task text recorded in a model directory, or None when there is none."""
    path = Path(directory) / FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("version") != VERSION:
            raise ValueError(f"version {record.get('version')!r}, expected {VERSION}")
        calibration = [str(t) for t in record["calibration"]]
        verify = [(str(r["text"]), r.get("label")) for r in record["verify"]]
        labels = [str(lab) for lab in record["labels"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(
            f"{path} is not a task text record ({exc}); delete it, or re-run finetune/distill"
        ) from exc
    return TaskText(calibration, verify, labels, str(record.get("source", "")))
