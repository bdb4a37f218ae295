"""This machine's own peak figures, measured by short probes (numpy and onnxruntime; a few
seconds), so the estimator can be checked against what this machine measures.

    fp32 GFLOP/s   an fp32 MatMul in onnxruntime (MLAS, the GEMM kernels the runtimes use)
    int8 GOP/s     a MatMulInteger (uint8 x int8) in onnxruntime
    GB/s           numpy copies of a 64 MB array (bytes read + written per second), divided
                   by the model's sustained share (cost_model.MEMORY_EFFICIENCY) so that the
                   estimate, which takes that share of it, streams at the measured rate
    GHz            the fastest core clock /proc/cpuinfo reports

The result is a ``Device`` (kind host, transport local) that the estimator reads like any
devices.yaml entry; every figure is measured, at ``threads`` threads.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pocketbert.lab.cost_model import MEMORY_EFFICIENCY

N = 512  # the probe GEMM: [N, N] x [N, N]


def _best_rate(fn, work: float, seconds: float = 0.5) -> float:
    """``work`` per second of ``fn``'s fastest run, over about ``seconds``."""
    fn()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return work / best


def _matmul_session(int8: bool, threads: int):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        w = rng.integers(-127, 127, (N, N), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
    else:
        w = rng.standard_normal((N, N), dtype=np.float32)
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info("a", a_type, [N, N])],
        [helper.make_tensor_value_info("y", y_type, [N, N])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        onnx.shape_inference.infer_shapes(model).SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
    )
    a = (
        rng.integers(0, 255, (N, N), dtype=np.uint8)
        if int8
        else rng.standard_normal((N, N), dtype=np.float32)
    )
    return lambda: session.run(None, {"a": a})


def cpu_ghz() -> float | None:
    try:
        mhz = [
            float(line.split(":")[1])
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("cpu MHz")
        ]
    except (OSError, ValueError):
        return None
    return round(max(mhz) / 1e3, 3) if mhz else None


def measure(threads: int = 1) -> dict:
    """The probes' figures at ``threads`` threads."""
    work = 2.0 * N**3
    fp32 = _best_rate(_matmul_session(False, threads), work) / 1e9
    int8 = _best_rate(_matmul_session(True, threads), work) / 1e9
    src = np.ones(16 * 2**20, np.float32)  # 64 MB: well past the last-level cache
    dst = np.empty_like(src)
    copy_gbs = _best_rate(lambda: np.copyto(dst, src), 2.0 * src.nbytes) / 1e9
    return {
        "threads": threads,
        "gflops_fp32": round(fp32, 2),
        "gops_int8": round(int8, 2),
        "copy_gbs": round(copy_gbs, 2),
        "ghz": cpu_ghz(),
    }


def host_device(probe: dict):
    """A ``Device`` holding the probe's figures (what the estimator reads)."""
    from pocketbert.devices import Device

    return Device(
        id="host-probed",
        kind="host",
        transport="local",
        formats=("onnx", "tflite", "executorch"),
        runtimes=("onnxruntime", "litert", "executorch"),
        description="this machine, peak figures measured by pocketbert.lab.host_probe",
        cpu={"ghz": probe["ghz"] or 2.0, "threads": probe["threads"]},
        peak_gflops_fp32=probe["gflops_fp32"],
        peak_gops_int8=probe["gops_int8"],
        mem_bandwidth_gbs=round(probe["copy_gbs"] / MEMORY_EFFICIENCY, 2),
    )
