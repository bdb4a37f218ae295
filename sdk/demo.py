"""``pocketbert demo``: the real all-MiniLM-L6-v2 to every format and precision, then real
movie-review sentences through each verified bundle."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pocketbert.examples import minilm_path, sample_sentences
from pocketbert.exporter import export
from pocketbert.predict import load

PROBES = [
    "a gripping, beautifully acted thriller",
    "the plot is thin and the jokes fall flat",
    "a masterpiece of quiet, patient storytelling",
]


def demo(out: str | Path = "pocketbert-demo", *, quiet: bool = False) -> list[dict]:
    """Export, verify and run; returns one row per bundle."""
    calibration = sample_sentences(128, seed=7)
    results = export(
        minilm_path(), out, format="all", precision="all", calibration=calibration, quiet=quiet
    )
    rows = []
    for r in results:
        predictor = load(r.path, threads=1)
        vectors = predictor.predict(PROBES)
        start = time.perf_counter()
        for _ in range(5):
            predictor.predict(PROBES[:1])
        ms = (time.perf_counter() - start) / 5 * 1000
        sims = vectors @ vectors.T / np.outer(*(2 * [np.linalg.norm(vectors, axis=1)]))
        rows.append(
            {
                "format": r.format,
                "precision": r.precision,
                "bundle": str(r.path),
                "size_mb": round(predictor.bundle.model_path.stat().st_size / 1e6, 1),
                "parity": r.parity,
                "ms_per_sentence": round(ms, 1),
                "similarity_pos_pos": round(float(sims[0, 2]), 3),
                "similarity_pos_neg": round(float(sims[0, 1]), 3),
            }
        )
    return rows
