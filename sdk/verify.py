"""The parity gate: run an exported file through its own runtime and compare with torch.

This module never imports torch; the torch reference outputs are computed by the
caller (``pocketbert.converters.reference``) and handed in as numpy arrays.

A classifier is judged on what its user sees. With labelled rows: the file's accuracy
against the torch fp32 model's on the same rows. Without: argmax agreement on the
decisive rows only, those whose fp32 top-2 softmax gap is not a near tie (on a near tie
either answer is the model's, and a flip says nothing about quantization). The bounds are
the precision config's (``converters.quantization``), read in rows and never below
``NOISE_ROWS`` of them, so that 2-3 flips on a small set cannot decide a gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pocketbert import runtimes
from pocketbert.converters.quantization import (
    NEAR_TIE_MARGIN,
    Precision,
    Tolerance,
    as_config,
)
from pocketbert.core.metrics import class_scores


def run_file(
    path: Path, feeds: list[dict[str, np.ndarray]], threads: int | None = None
) -> np.ndarray:
    """Run each batch-1 feed through the file's runtime; stack the first outputs."""
    session = runtimes.load(path, threads=threads)
    return np.concatenate([session.run(f)[0].reshape(1, -1) for f in feeds])


def top2_gap(logits: np.ndarray) -> np.ndarray:
    """Per row: softmax probability of the top class minus that of the runner-up."""
    x = logits.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = np.sort(e / e.sum(axis=1, keepdims=True), axis=1)
    return p[:, -1] - p[:, -2] if p.shape[1] > 1 else np.ones(len(p))


def classification_figures(
    ref: np.ndarray,
    out: np.ndarray,
    labels: Sequence[int] | None = None,
    near_tie_margin: float = NEAR_TIE_MARGIN,
) -> dict:
    """Agreement on all and on decisive rows; with ``labels`` (class ids) both accuracies."""
    ref_top, out_top = ref.argmax(1), out.argmax(1)
    decisive = top2_gap(ref) >= near_tie_margin
    n = int(decisive.sum())
    figures = {
        "argmax_agreement": float((ref_top == out_top).mean()),
        "near_tie_margin": near_tie_margin,
        "near_ties": int(len(ref) - n),
        "decisive_rows": n,
        "decisive_agreement": float((ref_top == out_top)[decisive].mean()) if n else None,
    }
    if labels is None:
        return figures
    truth = np.asarray(labels, dtype=np.int64)
    if truth.shape != ref_top.shape:
        raise ValueError(f"{len(truth)} labels for {len(ref_top)} verification rows")
    torch_scores = class_scores(ref_top, truth, ref.shape[1])
    file_scores = class_scores(out_top, truth, ref.shape[1])
    lost = int((ref_top == truth).sum()) - int((out_top == truth).sum())
    return {
        **figures,
        "labelled_rows": int(len(truth)),
        "accuracy_torch": torch_scores["accuracy"],
        "accuracy_file": file_scores["accuracy"],
        "accuracy_drop": lost / len(truth),  # absolute; negative: the file got more right
        "macro_f1_torch": torch_scores["macro_f1"],
        "macro_f1_file": file_scores["macro_f1"],
    }


def parity(
    reference: np.ndarray,
    outputs: np.ndarray,
    task: str,
    *,
    labels: Sequence[int] | None = None,
    near_tie_margin: float = NEAR_TIE_MARGIN,
) -> dict:
    """Agreement figures between torch (reference) and the exported file (outputs)."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    diff = np.abs(ref - out)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cosine = (ref * out).sum(1) / np.maximum(norms, 1e-12)
    figures = {
        "samples": int(len(ref)),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "mean_cosine": float(cosine.mean()),
        "min_cosine": float(cosine.min()),
    }
    if task == "classification":
        figures.update(classification_figures(ref, out, labels, near_tie_margin))
    return figures


def tolerance(figures: dict, precision: Precision | str, task: str) -> Tolerance:
    """The config's rule for these figures (the labelled rule when they hold labels)."""
    return as_config(precision).tolerance(task, labelled="labelled_rows" in figures)


def _rows(figures: dict, rule: Tolerance) -> int | None:
    return figures[rule.rows] if rule.rows else None


def gate(figures: dict, precision: Precision | str, task: str) -> tuple[bool, str]:
    """Whether the figures pass the precision config's gate, and the rule applied.

    fp32 must reproduce torch; int8 must keep the accuracy (labelled classifiers), the
    answers on decisive rows (unlabelled) or the direction (cosine: embeddings).
    """
    rule = tolerance(figures, precision, task)
    return rule.passes(figures[rule.metric], _rows(figures, rule)), rule.rule


def failure(figures: dict, precision: Precision | str, task: str) -> str:
    """The figure that missed the gate, against its bound (``decisive_agreement 0.9 < ...``)."""
    rule = tolerance(figures, precision, task)
    return rule.failure(figures[rule.metric], _rows(figures, rule))


def small_set_note(figures: dict, precision: Precision | str, task: str) -> str | None:
    """A line when the rows are too few for the bound itself to decide (NOISE_ROWS did)."""
    rule = tolerance(figures, precision, task)
    rows, needed = _rows(figures, rule), rule.judged_rows()
    if rows is None or (needed is not None and rows >= needed):
        return None
    what = rule.rows.replace("_", " ")
    ties = f", {figures['near_ties']} near ties left out" if rule.rows == "decisive_rows" else ""
    would = f"{needed} would" if needed is not None else "no number would"
    return (
        f"only {rows} {what}{ties}: too few to judge {rule.metric} at {rule.bound:g} ({would}); "
        f"the gate allowed {rule.allowed(rows)} rows against the file"
    )


def check(
    path: Path,
    feeds: list[dict[str, np.ndarray]],
    reference: np.ndarray,
    *,
    precision: Precision | str,
    task: str,
    labels: Sequence[int] | None = None,
    threads: int | None = None,
) -> dict:
    """Run ``path`` on ``feeds``, compare with ``reference``; the manifest's parity record."""
    config = as_config(precision)
    outputs = run_file(path, feeds, threads)
    figures = parity(
        reference, outputs, task, labels=labels, near_tie_margin=config.near_tie_margin
    )
    passed, rule = gate(figures, config, task)
    note = small_set_note(figures, config, task)
    return {**figures, "gate": rule, "passed": passed, **({"note": note} if note else {})}
