"""Where a bundle's time goes: each runtime's own profiler, grouped into the same classes.

- onnxruntime: session profiling (``enable_profiling``), one event per node run; a MatMul
  whose second input is a weight is a GEMM, one between two activations is attention.
- ExecuTorch: an ETDump (``_load_for_executorch(..., enable_etdump=True)``) read by
  ``executorch.devtools.Inspector``; XNNPACK reports each of its own operators inside the
  delegate call, so the classes are XNNPACK's operator names.
- TFLite (LiteRT): the op profiler lives in the C++ ``benchmark_model`` tool, not in the
  ``ai-edge-litert`` wheel; there is no per-op figure to read from Python, and the table
  says so rather than borrowing ExecuTorch's (both run XNNPACK, with different graphs).

Used by ``benchmarks/host_roofline.py``.
"""

from __future__ import annotations

import collections
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

CLASSES = (
    "int8 GEMM",
    "fp32 GEMM",
    "attention",
    "softmax",
    "norm",
    "activation",
    "q/dq",
    "layout",
    "other",
)

ORT_CLASSES = {
    "int8 GEMM": {
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
        "MatMulInteger",
        "QLinearMatMul",
        "QGemm",
        "QAttention",
        "QLinearConv",
        "ConvInteger",
    },
    "softmax": {"Softmax"},
    "norm": {"LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization"},
    "activation": {"Gelu", "FastGelu", "BiasGelu", "Erf", "Tanh", "Relu", "Sigmoid"},
    "q/dq": {"DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear"},
    "layout": {
        "Transpose",
        "Reshape",
        "Concat",
        "Slice",
        "Unsqueeze",
        "Squeeze",
        "Expand",
        "Shape",
        "Split",
        "Identity",
    },
}
ORT_MATMULS = {"MatMul", "FusedMatMul", "Gemm", "Conv", "Attention", "MultiHeadAttention"}

XNN_PATTERNS = (  # (class, regex on the operator name), first match wins
    ("int8 GEMM", r"(Fully Connected|Convolution|Batch Matrix Multiply).*(QD8|QDU8|QS8|QU8|QC8)"),
    ("fp32 GEMM", r"(Fully Connected|Convolution).*F32"),
    ("attention", r"Batch Matrix Multiply|bmm|matmul"),
    ("softmax", r"Softmax|softmax"),
    ("norm", r"layer_norm|Layer ?Norm|Mean|Reduce|rsqrt|Square Root"),
    ("activation", r"GELU|gelu|Tanh|Sigmoid|erf"),
    ("q/dq", r"Convert|Quantize|quantize|Dequantize"),
    ("layout", r"Transpose|Reshape|Copy|expand|view|permute|Concatenate|Slice|Split|clone"),
)
# Container events: their time is the sum of what runs inside them.
ET_CONTAINERS = re.compile(
    r"^(DELEGATE_CALL|OPERATOR_CALL|Method::execute|Method::init|Program::load_method)$"
)


def _shares(times: dict[str, float]) -> dict[str, float]:
    total = sum(times.values()) or 1.0
    return {c: times.get(c, 0.0) / total for c in CLASSES}


def ort_breakdown(path: Path, feed: dict[str, np.ndarray], threads: int, runs: int = 10) -> dict:
    """{class: share of node time}, plus the measured node total per run in ms."""
    import onnx

    from pocketbert.runtimes.ort import open_session, session_options

    with tempfile.TemporaryDirectory() as tmp:
        options = session_options(threads)
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        session = open_session(Path(path), options)
        feed = {k: v for k, v in feed.items() if k in {i.name for i in session.get_inputs()}}
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
        graph = onnx.load(options.optimized_model_filepath, load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    weight_fed = {n.name for n in graph.node if len(n.input) > 1 and n.input[1] in weights}
    times: dict[str, float] = collections.Counter()
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        op, node = e["args"]["op_name"], e["name"][: -len("_kernel_time")]
        times[_ort_class(op, node in weight_fed)] += e["dur"] / 1000 / runs
    return {"shares": _shares(times), "op_ms": sum(times.values())}


def _ort_class(op: str, weight_fed: bool) -> str:
    if op in ORT_MATMULS:
        return "fp32 GEMM" if weight_fed else "attention"
    return next((c for c, ops in ORT_CLASSES.items() if op in ops), "other")


def executorch_breakdown(path: Path, inputs: list, threads: int, runs: int = 10) -> dict:
    from executorch.devtools import Inspector
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(threads)
    module = portable_lib._load_for_executorch(str(path), enable_etdump=True)
    if not module.has_etdump():
        return {"error": "this ExecuTorch build records no ETDump"}
    for _ in range(runs):
        module.forward(inputs)
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "run.etdp")
        module.write_etdump_result_to_file(dump)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inspector = Inspector(etdump_path=dump)
    times: dict[str, float] = collections.Counter()
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for event in block.events:
            if event.perf_data is None or ET_CONTAINERS.match(event.name):
                continue
            times[_xnn_class(event.name)] += float(np.median(event.perf_data.raw))
    return {"shares": _shares(times), "op_ms": sum(times.values())}


def _xnn_class(name: str) -> str:
    return next((c for c, pattern in XNN_PATTERNS if re.search(pattern, name)), "other")


def breakdown(fmt: str, path: Path, feed: dict[str, np.ndarray], threads: int) -> dict:
    """The per-class shares of one bundle's model file, from its runtime's profiler."""
    if fmt == "onnx":
        return ort_breakdown(path, feed, threads)
    if fmt == "executorch":
        import torch

        from pocketbert.runtimes.executorch import load
        from pocketbert.runtimes.tensors import cast_feeds

        session = load(path, threads=threads)
        feeds = cast_feeds(feed, session.input_names, session.input_dtypes)
        inputs = [torch.from_numpy(feeds[n]) for n in session.input_names]
        return executorch_breakdown(path, inputs, threads)
    return {"error": "no per-op profiler in LiteRT's Python API (C++ benchmark_model only)"}
