"""Classification metrics from predicted and true class ids: accuracy, per-class and macro F1.

Accuracy alone hides a lost class: a student that never predicts a class holding 2% of
the data still scores 98% of a perfect teacher. Macro-F1 weighs every class alike, and the
per-class F1 shows which class went. No torch: the gate, the CLI and benchmarks use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def class_scores(predicted: Sequence[int], truth: Sequence[int], classes: int) -> dict:
    """``accuracy``, ``macro_f1`` and per-class ``f1``/``precision``/``recall``/``support``.

    A class absent from both ``truth`` and ``predicted`` gets F1 0 and is left out of the
    macro mean (it says nothing about the model); one that is predicted but never true, or
    true but never predicted, counts with F1 0.
    """
    pred = np.asarray(predicted, dtype=np.int64)
    true = np.asarray(truth, dtype=np.int64)
    if pred.shape != true.shape:
        raise ValueError(f"{len(pred)} predictions for {len(true)} labels")
    confusion = np.zeros((classes, classes), dtype=np.int64)  # [true, predicted]
    np.add.at(confusion, (true, pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(1)
    predicted_n = confusion.sum(0)
    precision = np.divide(tp, predicted_n, out=np.zeros(classes), where=predicted_n > 0)
    recall = np.divide(tp, support, out=np.zeros(classes), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(classes), where=denom > 0)
    present = (support > 0) | (predicted_n > 0)
    return {
        "accuracy": float(tp.sum() / max(len(true), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "f1": [round(float(x), 5) for x in f1],
        "precision": [round(float(x), 5) for x in precision],
        "recall": [round(float(x), 5) for x in recall],
        "support": [int(x) for x in support],
    }


def lost_classes(student: dict, teacher: dict, labels: Sequence[str]) -> list[str]:
    """Labels the teacher gets some right (F1 > 0) and the student none (F1 0)."""
    return [
        lab
        for lab, s, t in zip(labels, student["f1"], teacher["f1"], strict=True)
        if t > 0 and s == 0
    ]


def kept(student: float, teacher: float) -> float | None:
    """The student's figure as a fraction of the teacher's (None when the teacher's is 0)."""
    return round(student / teacher, 4) if teacher else None
