"""What a measurement opens: a bundle, or a bare model file that pocketbert did not write.

A device lab profiles third parties' files too (an int8 MiniLM ``.onnx`` found online).
Such a file has no manifest: its format and runtime come from its suffix, its identity
from its sha256, and its inputs from its own input signature (see :func:`foreign_feeds`).
Records of it say ``"source": "foreign file"``. numpy only: the agent imports this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketbert.bundle import open_bundle, sha256
from pocketbert.core.errors import UserError, choices

FOREIGN = "foreign file"
BUNDLE = "bundle"
# the file suffix of each export format (the device catalog's format names)
FORMAT_OF_SUFFIX = {".onnx": "onnx", ".tflite": "tflite", ".pte": "executorch", ".fpga": "fpga"}
ID_RANGE = (5, 100)  # token ids every BERT-family vocabulary has (past [PAD]/[UNK]/[CLS]/...)


@dataclass
class Target:
    root: Path  # the directory a transport copies to the device
    model_path: Path
    manifest: dict  # a bundle's manifest, or what is known of a bare file
    bundle: Any = None  # the open Bundle: a zipped bundle's extracted files live as long as it

    @property
    def foreign(self) -> bool:
        return self.manifest.get("source") == FOREIGN


def is_model_file(path: Path) -> bool:
    return path.is_file() and path.suffix in FORMAT_OF_SUFFIX


def open_target(path: str | Path) -> Target:
    """A bundle (directory or .zip, checked against its manifest) or a bare model file."""
    from pocketbert.runtimes import runtime_for

    path = Path(path)
    if not is_model_file(path):
        if path.is_file() and path.suffix != ".zip":
            raise UserError(
                f"'{path}' is neither a bundle nor a model file; give a bundle directory or "
                f".zip, or a bare model file ending in one of: {choices(FORMAT_OF_SUFFIX)}"
            )
        bundle = open_bundle(path)
        return Target(bundle.root, bundle.model_path, {"source": BUNDLE, **bundle.manifest}, bundle)
    manifest = {
        "source": FOREIGN,
        "format": FORMAT_OF_SUFFIX[path.suffix],
        "runtime": runtime_for(path).name,
        "precision": None,
        "model_file": path.name,
        "files": {path.name: sha256(path)},
        "max_seq_len": None,
    }
    return Target(path.parent, path, manifest)


# --- inputs from a foreign file's own signature ------------------------------------------------


def _ort_fixed_len(session) -> int | None:
    # the Session protocol names inputs but not their shapes: ask onnxruntime itself
    inner = getattr(session, "_session", None)
    if inner is None:
        return None
    dims = [list(i.shape) for i in inner.get_inputs()]
    fixed = {d[1] for d in dims if len(d) == 2 and isinstance(d[1], int) and d[1] > 0}
    return fixed.pop() if len(fixed) == 1 else None


def _seq_limits(session, runtime: str) -> tuple[int | None, int | None]:
    """(the file's fixed sequence length, its longest) where the runtime can tell; else None."""
    if runtime == "onnxruntime":
        fixed = _ort_fixed_len(session)
        return fixed, fixed
    if runtime == "litert":  # fixed-shape files are padded by the session itself
        fixed = getattr(session, "max_seq_len", None)
        return fixed, fixed
    shape = getattr(session, "input_shape", None)  # executorch: the upper bound
    return None, (int(shape[1]) if shape and len(shape) == 2 else None)


def _feed_for(name: str, seq: int, length: int, rng: np.random.Generator) -> np.ndarray:
    low = name.lower()
    if "mask" in low:  # attended up to seq, padding after
        return (np.arange(length) < seq).astype(np.int64)[None, :]
    if "type" in low or "segment" in low:
        return np.zeros((1, length), dtype=np.int64)
    if "position" in low:
        return np.arange(length, dtype=np.int64)[None, :]
    ids = rng.integers(*ID_RANGE, size=(1, length), dtype=np.int64)
    ids[0, seq:] = 0
    return ids


def foreign_feeds(
    session, runtime: str, name: str, seq_len: int | None
) -> tuple[int, int, dict[str, np.ndarray]]:
    """(seq, effective length, feeds) for a file pocketbert did not write.

    Every input is [1, length]: ids drawn from ``ID_RANGE``, a mask of ones (zeros over
    padding when the file's length is fixed and longer), token types zero, positions 0..n-1.
    """
    fixed, longest = _seq_limits(session, runtime)
    seq = seq_len or fixed or longest
    if seq is None:
        raise UserError(
            f"'{name}' is a bare model file whose sequence length is dynamic; give --seq-len"
        )
    if longest and seq > longest:
        raise UserError(f"--seq-len {seq} is longer than '{name}' takes; give 1..{longest}")
    length = fixed or seq
    rng = np.random.default_rng(0)
    return seq, length, {n: _feed_for(n, seq, length, rng) for n in session.input_names}
