"""``pocketbert.load(bundle).predict(texts)``: run a bundle on text, with no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pocketbert import runtimes
from pocketbert.bundle import Bundle, open_bundle
from pocketbert.tokenize import Encoder


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Predictor:
    """A loaded bundle: its runtime session, tokenizer and labels."""

    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        m = bundle.manifest
        self.bundle = bundle
        self.task = m.get("task", "classification")
        self.labels = bundle.labels
        self.session = runtimes.load(bundle.model_path, threads=threads)
        pad_to = None if m.get("dynamic_seq", True) else m["max_seq_len"]
        self.encoder = Encoder(bundle.tokenizer_path, m["max_seq_len"], pad_to=pad_to)

    def outputs(self, texts: list[str]) -> np.ndarray:
        """The raw model outputs, one row per text (logits or embeddings)."""
        rows = [self.session.run(self.encoder.feed(t))[0].reshape(1, -1) for t in texts]
        return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)

    def predict(self, texts: str | list[str]) -> list[dict] | np.ndarray:
        """Labels and probabilities per text (classifiers) or an [n, dim] embedding array."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = self.outputs(texts)
        if self.task == "embedding":
            return out
        probs = _softmax(out.astype(np.float64))
        return [
            {
                "label": self.labels[int(p.argmax())],
                "score": float(p.max()),
                "probabilities": {lab: float(v) for lab, v in zip(self.labels, p, strict=True)},
            }
            for p in probs
        ]


def load(bundle: str | Path, *, threads: int | None = None) -> Predictor:
    """Open a bundle (directory or .zip), check its hashes and load its model."""
    return Predictor(open_bundle(bundle), threads=threads)
