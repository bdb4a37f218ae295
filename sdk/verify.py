"""The parity gate: run an exported file through its own runtime and compare with torch.

This module never imports torch; the torch reference outputs are computed by the
caller (``pocketbert.converters.reference``) and handed in as numpy arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pocketbert import runtimes
from pocketbert.converters.quantization import Precision, as_config


def run_file(
    path: Path, feeds: list[dict[str, np.ndarray]], threads: int | None = None
) -> np.ndarray:
    """Run each batch-1 feed through the file's runtime; stack the first outputs."""
    session = runtimes.load(path, threads=threads)
    return np.concatenate([session.run(f)[0].reshape(1, -1) for f in feeds])


def parity(reference: np.ndarray, outputs: np.ndarray, task: str) -> dict:
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
        figures["argmax_agreement"] = float((ref.argmax(1) == out.argmax(1)).mean())
    return figures


def gate(figures: dict, precision: Precision | str, task: str) -> tuple[bool, str]:
    """Whether the figures pass the precision config's gate, and the rule applied.

    fp32 must reproduce torch; int8 must keep the answers (argmax) or the direction
    (cosine); the bounds are the config's (``converters.quantization``).
    """
    tolerance = as_config(precision).tolerance(task)
    return tolerance.passes(figures[tolerance.metric]), tolerance.rule


def check(
    path: Path,
    feeds: list[dict[str, np.ndarray]],
    reference: np.ndarray,
    *,
    precision: Precision | str,
    task: str,
    threads: int | None = None,
) -> dict:
    """Run ``path`` on ``feeds``, compare with ``reference``; the manifest's parity record."""
    figures = parity(reference, run_file(path, feeds, threads), task)
    passed, rule = gate(figures, precision, task)
    return {**figures, "gate": rule, "passed": passed}
