"""``pocketbert.load(bundle).predict(texts)``: run a bundle on text, with no torch."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from pocketbert import runtimes
from pocketbert.bundle import Bundle, open_bundle
from pocketbert.core.errors import UserError
from pocketbert.tokenize import Encoder

PARITY_FIGURES = ("max_abs_diff", "argmax_agreement", "mean_cosine")


class ParityWarning(UserWarning):
    """The bundle's manifest records that it failed its parity gate at export."""


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _declared_output_type(session) -> str | None:
    """The file's own dtype of its first output, before the adapter's cast to float32, where
    the session tells it (``output_dtypes``, or onnxruntime's output metadata); else None."""
    dtypes = getattr(session, "output_dtypes", None)
    if dtypes:
        return np.dtype(dtypes[0]).name
    inner = getattr(session, "_session", None)  # onnxruntime's InferenceSession
    if inner is not None and hasattr(inner, "get_outputs"):
        return str(inner.get_outputs()[0].type)  # e.g. 'tensor(float)', 'tensor(int64)'
    return None


def _is_float(dtype: str) -> bool:
    return "float" in dtype or "double" in dtype


def parity_warning(bundle: Bundle) -> str | None:
    """One line naming the failed gate and its figures, if the manifest says the gate failed."""
    parity = bundle.manifest.get("parity") or {}
    if parity.get("passed") is not False:
        return None
    figures = ", ".join(
        f"{k}={parity[k]:.4g}" for k in PARITY_FIGURES if isinstance(parity.get(k), float | int)
    )
    return (
        f"bundle '{bundle.source or bundle.root}' failed its parity gate at export "
        f"({parity.get('gate', 'gate unknown')}: {figures or 'no figures'}); its answers may "
        "differ from the source model's"
    )


class Predictor:
    """A loaded bundle: its runtime session, tokenizer and labels, checked against each other."""

    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        m = bundle.manifest
        self.bundle = bundle
        self.task = m["task"]
        self.labels = bundle.labels
        pad_to = None if m.get("dynamic_seq", True) else m["max_seq_len"]
        self.encoder = Encoder(bundle.tokenizer_path, m["max_seq_len"], pad_to=pad_to)
        self.session = runtimes.load(bundle.model_path, threads=threads)
        self._check_model()
        message = parity_warning(bundle)
        if message:
            warnings.warn(message, ParityWarning, stacklevel=3)

    def _refuse(self, why: str) -> UserError:
        where = self.bundle.source or self.bundle.root
        return UserError(
            f"bundle '{where}': {why}; the model file does not fit its manifest "
            "(re-export the bundle with pocketbert export)"
        )

    def _check_model(self) -> None:
        """The manifest against the model file: input names, then the output's dtype and
        shape for the task, from one run on a short text (two lengths if it takes any)."""
        named = [i["name"] for i in self.bundle.manifest.get("inputs", [])]
        takes = list(self.session.input_names)
        if named and sorted(named) != sorted(takes):
            raise self._refuse(
                f"the model takes inputs ({', '.join(takes)}) but the manifest lists "
                f"({', '.join(named)})"
            )
        dtype = _declared_output_type(self.session)
        if dtype is not None and not _is_float(dtype):
            raise self._refuse(f"the model's first output is {dtype}, not floating point")
        short, longer = self.encoder.feed("probe"), self.encoder.feed(" ".join(["probe"] * 8))
        out = self.session.run(short)[0]
        if self.task == "classification" and out.size != len(self.labels):
            raise self._refuse(
                f"the model gives {out.size} value(s) per text (shape {list(out.shape)}) "
                f"but labels.json lists {len(self.labels)} labels"
            )
        if self.task == "embedding" and out.ndim not in (2, 3):
            raise self._refuse(
                f"an embedding model's output has rank 2 or 3; this one has shape {list(out.shape)}"
            )
        if longer["input_ids"].shape != short["input_ids"].shape:
            other = self.session.run(longer)[0]
            if other.shape[-1] != out.shape[-1]:
                raise self._refuse(
                    f"the output's last dimension follows the input's length "
                    f"({out.shape[-1]} -> {other.shape[-1]}), as no {self.task} output does"
                )

    def close(self) -> None:
        """Let go of the bundle (a zipped bundle's extraction is removed)."""
        self.bundle.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def outputs(self, texts: list[str]) -> np.ndarray:
        """The raw model outputs, one row per text (logits or embeddings)."""
        rows = [self.session.run(self.encoder.feed(t))[0].reshape(1, -1) for t in texts]
        if len(rows) == 1:
            return rows[0]
        return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)

    def predict(self, texts: str | list[str]) -> list[dict] | np.ndarray:
        """Labels and probabilities per text (classifiers) or an [n, dim] embedding array."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = self.outputs(texts)
        if self.task == "embedding":
            return out
        results = []
        for p in _softmax(out.astype(np.float64)).tolist():  # Python floats in one step
            best = max(range(len(p)), key=p.__getitem__)  # the first of equal maxima, as argmax
            probabilities = dict(zip(self.labels, p, strict=True))
            results.append(
                {"label": self.labels[best], "score": p[best], "probabilities": probabilities}
            )
        return results


def load(bundle: str | Path, *, threads: int | None = None) -> Predictor:
    """Open a bundle (directory or .zip), check it and load its model.

    Warns (``ParityWarning``) when the manifest says the bundle failed its parity gate.
    A zipped bundle is extracted to a private directory removed by ``close()`` (or when
    the Predictor is garbage-collected, or at exit).
    """
    path = Path(bundle)
    if path.is_file() and path.suffix in {i.suffix for i in runtimes.RUNTIMES.values()}:
        raise UserError(
            f"'{path.name}' is a bare model file; running text through it needs its tokenizer "
            "and labels, which a bundle carries: make one with `pocketbert export MODEL -o "
            f"DIR` (or time the bare file with `pocketbert profile {path.name} --seq-len N`)"
        )
    opened = open_bundle(bundle)
    try:
        return Predictor(opened, threads=threads)
    except BaseException:
        opened.close()
        raise
