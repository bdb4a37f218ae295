"""Small helpers shared by the runtime adapters (numpy only)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from pocketbert.core.errors import UserError, first_line

T = TypeVar("T")


def require(module: str, install: str):
    """Import a runtime's package or say what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(
            f"the runtime package '{module}' is not installed here; run: pip install {install}"
        ) from exc


def cast_feeds(
    feeds: dict[str, np.ndarray], names: list[str], dtypes: dict[str, type]
) -> dict[str, np.ndarray]:
    """Check the feeds name the model's inputs and cast them to the model's dtypes."""
    missing = [n for n in names if n not in feeds]
    if missing:
        raise UserError(f"missing model input(s) {missing}; the model takes: {', '.join(names)}")
    out = {}
    for name in names:
        arr = np.asarray(feeds[name])
        if arr.ndim != 2:
            raise UserError(f"input '{name}' has shape {arr.shape}; expected 2-D [batch, sequence]")
        out[name] = np.ascontiguousarray(arr.astype(dtypes.get(name, arr.dtype), copy=False))
    return out


def open_model(
    path: Path,
    what: str,
    load: Callable[[], T],
    *,
    not_a_model: tuple[type[BaseException], ...],
    magic: bytes | None = None,
) -> T:
    """``load()``, telling a file that is not a ``what`` model apart from a runtime bug.

    An empty file, one without ``magic`` as its flatbuffer file identifier (bytes 4..8 of a
    .tflite or .pte), or one the runtime refuses to parse (it raises one of ``not_a_model``)
    is the user's input: a UserError naming the file and what was expected. Whatever else
    the runtime raises on a file that parsed is re-raised as it is (a bug, or a runtime
    limit the caller reports as one).
    """
    with Path(path).open("rb") as fh:
        head = fh.read(8)
    if not head:
        raise not_a_model_error(path, what, "the file is empty")
    if magic is not None and head[4:8] != magic:
        raise not_a_model_error(path, what, f"no {magic.decode()} file identifier")
    try:
        return load()
    except not_a_model as exc:
        raise not_a_model_error(path, what, first_line(exc)) from exc


def not_a_model_error(path: Path, what: str, why: str) -> UserError:
    return UserError(
        f"'{path}' is not a loadable {what} model ({why}); give a "
        f"{Path(path).suffix or 'model'} file written by pocketbert export, or re-export it"
    )


def run_by_rows(
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]],
    feeds: dict[str, np.ndarray],
    file_batch: int,
) -> list[np.ndarray]:
    """``run(feeds)``, one row at a time when the file takes batch 1 (``file_batch`` < 1:
    any batch); a batch the file cannot take otherwise is a UserError."""
    batch = next(iter(feeds.values())).shape[0]
    if file_batch < 1 or batch == file_batch:
        return run(feeds)
    if file_batch != 1:
        raise UserError(f"this model takes batches of exactly {file_batch}; give {file_batch} rows")
    rows = [run({n: a[i : i + 1] for n, a in feeds.items()}) for i in range(batch)]
    return [np.concatenate(outs, axis=0) for outs in zip(*rows, strict=True)]
