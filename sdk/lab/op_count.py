"""The op counters, one per format (a dict), and the work of one inference of a bundle.

``COUNTERS[format](path, seq, heads) -> Work``: every op of the file at ``seq`` tokens
(``heads`` is kept for counters that need it; today's read the graph's own shapes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pocketbert.core.errors import UserError, first_line
from pocketbert.lab.op_cost import Work


def _onnx(path: Path, seq: int, heads: int = 1) -> Work:
    from pocketbert.lab import count_onnx

    return Work.of(count_onnx.count(path, seq))


def _tflite(path: Path, seq: int, heads: int = 1) -> Work:
    from pocketbert.lab import count_tflite

    return Work.of(count_tflite.count(path, seq))


def _executorch(path: Path, seq: int, heads: int = 1) -> Work:
    from pocketbert.lab import count_pte

    return Work.of(count_pte.count(path, seq))


COUNTERS: dict[str, Callable[..., Work]] = {
    "onnx": _onnx,
    "tflite": _tflite,
    "executorch": _executorch,
}
SUFFIXES = {".onnx": "onnx", ".tflite": "tflite", ".pte": "executorch"}


def count_file(path: Path, seq: int) -> Work:
    """The work of a model file, or of a bundle directory's model file, at ``seq`` tokens."""
    path = Path(path)
    if path.is_dir():
        return bundle_work(path, seq)[0]
    if path.suffix not in SUFFIXES:
        raise UserError(f"'{path.name}' is not a model file; give a .onnx, .tflite or .pte file")
    return COUNTERS[SUFFIXES[path.suffix]](path, seq, 1)


def bundle_work(bundle: Path, seq: int | None) -> tuple[Work, dict]:
    """The work of one inference of a bundle (or a bare model file), and the facts around it."""
    from pocketbert.profiler.target import open_target

    target = open_target(bundle)
    fmt = target.manifest["format"]
    if fmt not in COUNTERS:
        raise UserError(
            f"estimates count work from ONNX, TFLite or ExecuTorch graphs; this bundle is {fmt}. "
            "Estimate an onnx, tflite or executorch bundle of the same model"
        )
    notes = []
    if target.foreign:
        if fmt == "onnx" and seq is None:
            raise UserError(
                f"'{target.model_path.name}' is a bare ONNX file with no stated length; "
                "give --seq-len to estimate it"
            )
        effective = seq
    else:
        max_len = int(target.manifest["max_seq_len"])
        effective = (seq or max_len) if target.manifest.get("dynamic_seq", True) else max_len
        if fmt == "executorch" and effective != max_len:
            notes.append(
                f"a .pte stores its upper-bound shapes: counted at {max_len} tokens, not {effective}"
            )
            effective = max_len
    facts = {
        **target.manifest,
        "effective_seq_len": effective,
        "file_bytes": target.model_path.stat().st_size,
        "count_notes": notes,
    }
    heads = int(target.manifest.get("shape", {}).get("heads") or 1)
    try:
        return COUNTERS[fmt](target.model_path, effective, heads), facts
    except (UserError, KeyError, IndexError, TypeError, AttributeError):
        raise  # our counting code's own failures are bugs
    except Exception as exc:
        if not target.foreign:
            raise
        raise UserError(
            f"'{target.model_path.name}' cannot be read as a {fmt} graph ({first_line(exc)}); "
            f"give a working {fmt} file"
        ) from exc
