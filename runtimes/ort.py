"""ONNX Runtime: loads ``.onnx`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pocketbert.runtimes.registry import register_runtime
from pocketbert.runtimes.tensors import cast_feeds, open_model, require, run_by_rows

_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}

# Graph fusions onnxruntime's optimizer would apply that make its CPU kernels slower.
# SkipLayerNormalization (Add + LayerNormalization fused): onnxruntime 1.32's CPU kernel takes
# 3.5-7.5x the time of the two ops it replaces (22 vs 6 us at 12 x 384, 195 vs 26 us at
# 128 x 384), and whole BERT-family int8 models run 1.1-1.3x faster without it
# (benchmarks/ort_fusions.py prints both figures on the CPU it runs on).
DISABLED_FUSIONS = ("SkipLayerNormFusion",)


def session_options(threads: int | None = None, disabled: tuple[str, ...] = DISABLED_FUSIONS):
    """The SessionOptions pocketbert runs every ONNX bundle with (``threads``: intra-op;
    ``disabled``: optimizer passes turned off, through onnxruntime's session config entry
    ``optimization.disable_specified_optimizers``, which its other bindings take too)."""
    ort = require("onnxruntime", "onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if disabled:
        opts.add_session_config_entry(
            "optimization.disable_specified_optimizers", ",".join(disabled)
        )
    return opts


def open_session(model, opts):
    """An onnxruntime CPU session on ``model`` (a path or serialized bytes)."""
    ort = require("onnxruntime", "onnxruntime")
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


class OrtSession:
    def __init__(self, session) -> None:
        self._session = session
        self.input_names = [i.name for i in session.get_inputs()]
        self.input_dtypes = {i.name: _DTYPES.get(i.type, np.float32) for i in session.get_inputs()}
        batch = session.get_inputs()[0].shape[0]
        self._batch = batch if isinstance(batch, int) else -1  # -1: a dynamic batch

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        feeds = cast_feeds(feeds, self.input_names, self.input_dtypes)
        return run_by_rows(self._run, feeds, self._batch)

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(o, dtype=np.float32) for o in self._session.run(None, feeds)]


@register_runtime("onnxruntime", suffix=".onnx", module="onnxruntime", install="onnxruntime")
def load(path: Path, *, threads: int | None = None) -> OrtSession:
    opts = session_options(threads)  # raises the install hint if onnxruntime is missing
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidProtobuf

    session = open_model(
        path, "ONNX", lambda: open_session(Path(path), opts), not_a_model=(InvalidProtobuf,)
    )
    return OrtSession(session)
