"""Latency on real text: ``predict([s])`` end to end, tokenization included, each sentence at
its own length, beside the fixed-length (padded) figure of the same bundle.

A fixed length of 128 tokens overstates what short task sentences cost, and it leaves out
the tokenizer. The profiler reads the user's sentences here (``stage_texts``: .txt one a
line, or .csv/.jsonl with a text column), ships the chosen ones as one ``texts.txt`` beside
the bundle, and the agent on the device times them (``measure_texts``): a warm-up, then
``passes`` passes over every sentence; a sentence's figure is the median of its passes.
numpy and tokenizers only: the agent imports this.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pocketbert.bundle import sha256
from pocketbert.core.errors import UserError
from pocketbert.core.texts import read_texts, sample_in_order
from pocketbert.profiler.stats import summarize

SHIPPED = "texts.txt"  # the name the chosen sentences travel under, one a line
DEFAULT_PASSES = 3
DEFAULT_LIMIT = 500  # sentences timed at most (a seeded sample of a longer file, in its order)


@dataclass(frozen=True)
class StagedTexts:
    """The user's sentence file and the sentences chosen from it, written to ``path``."""

    source: str
    sha256: str
    n_file: int
    path: Path

    def record(self) -> dict:
        return {"file": self.source, "sha256": self.sha256, "n_file": self.n_file}


def stage_texts(source: str | Path, scratch: Path, limit: int = DEFAULT_LIMIT) -> StagedTexts:
    """Read and check the sentence file here, before any device starts; write the sentences
    to time (all of them, or a seeded sample of ``limit`` kept in file order) to scratch."""
    texts = read_texts(source)  # a missing, unreadable or empty file: one line, exit 2
    chosen = sample_in_order(texts, limit)
    path = scratch / SHIPPED
    # one sentence a line: a line break inside a CSV cell tokenizes as the space it becomes
    path.write_text("".join(" ".join(t.split()) + "\n" for t in chosen), encoding="utf-8")
    return StagedTexts(str(source), sha256(Path(source)), len(texts), path)


def _predictor(target, threads: int | None):
    from pocketbert.predict import Predictor

    try:
        import tokenizers  # noqa: F401  (predict() tokenizes on the device)
    except ImportError as exc:
        raise UserError(
            "--texts times predict(), which tokenizes on the device: install tokenizers "
            "there (pip install tokenizers)"
        ) from exc
    with warnings.catch_warnings():  # a failed parity gate is the bundle's news, not latency's
        warnings.simplefilter("ignore")
        return Predictor(target.bundle, threads=threads)


def refuse_bare_file(name: str) -> UserError:
    return UserError(
        f"'{name}' is a bare model file: --texts times predict(), which needs a bundle's "
        "tokenizer and labels; profile a bundle instead (pocketbert export MODEL -o DIR)"
    )


def measure_texts(
    target, texts_file: str | Path, *, threads: int | None, warmup: int, passes: int
) -> dict:
    """Time ``predict([s])`` for every sentence of ``texts_file`` on ``target`` (a bundle)."""
    if target.foreign:
        raise refuse_bare_file(target.model_path.name)
    if passes < 1:
        raise UserError(f"--texts-passes must be >= 1 (got {passes})")
    texts = read_texts(texts_file)
    predictor = _predictor(target, threads)
    # the length each sentence runs at: its own tokens (at least 3), or the file's fixed length
    tokens = [int(predictor.encoder.feed(t)["input_ids"].shape[1]) for t in texts]
    for i in range(max(warmup, 1)):
        predictor.predict([texts[i % len(texts)]])
    clock = time.perf_counter_ns
    samples = np.zeros((len(texts), passes))
    for p in range(passes):  # passes interleave the sentences: a slow moment hits them all
        for i, text in enumerate(texts):
            start = clock()
            predictor.predict([text])
            samples[i, p] = clock() - start
    per_sentence = (np.median(samples, axis=1) / 1e6).tolist()
    summary = summarize(per_sentence)
    lengths = np.asarray(tokens)
    return {
        "n": len(texts),
        "passes": passes,
        "warmup": max(warmup, 1),
        "padded_to": predictor.encoder.pad_to,
        "median_tokens": float(np.median(lengths)),
        "p90_tokens": float(np.percentile(lengths, 90)),
        "max_tokens": int(lengths.max()),
        "p50_ms": summary["p50"],
        "p90_ms": summary["p90"],
        "mean_ms": summary["mean"],
        "latency_ms": summary,
        "tokens": tokens,
        "ms": [round(s, 4) for s in per_sentence],
    }
