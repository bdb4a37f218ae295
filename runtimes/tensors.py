"""Small helpers shared by the runtime adapters (numpy only)."""

from __future__ import annotations

import importlib

import numpy as np

from pocketbert.core.errors import UserError


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
