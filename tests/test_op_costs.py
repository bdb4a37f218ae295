"""Estimates from every op: the per-format counters, the cost model, the fit and its
leave-one-out arithmetic, on hand-computed cases and tiny bundles."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pocketbert.devices import Device
from pocketbert.lab.cost_model import Coefficients, Peaks, features, predict
from pocketbert.lab.emulated import bert_cost
from pocketbert.lab.fit import Point, error_summary, fit, leave_one_out, nnls_relative
from pocketbert.lab.op_cost import OpCost, Work
from pocketbert.lab.op_count import count_file


def hand_graph(path):
    """ids -> Gather -> MatMul(W) -> Add(b) -> Erf -> LayerNorm -> Softmax -> x @ x^T."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    inits = [
        numpy_helper.from_array(np.ones((10, 4), f32), "table"),
        numpy_helper.from_array(np.ones((4, 8), f32), "W"),
        numpy_helper.from_array(np.ones(8, f32), "b"),
        numpy_helper.from_array(np.ones(8, f32), "gamma"),
        numpy_helper.from_array(np.zeros(8, f32), "beta"),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["x"]),
        helper.make_node("MatMul", ["x", "W"], ["y"]),
        helper.make_node("Add", ["y", "b"], ["z"]),
        helper.make_node("Erf", ["z"], ["e"]),
        helper.make_node("LayerNormalization", ["e", "gamma", "beta"], ["n"], axis=-1),
        helper.make_node("Softmax", ["n"], ["s"], axis=-1),
        helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["s", "t"], ["att"]),
    ]
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "seq"])],
        [helper.make_tensor_value_info("att", TensorProto.FLOAT, [1, "seq", "seq"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_onnx_counter_matches_the_hand_count_of_a_small_graph(tmp_path):
    from pocketbert.lab.count_onnx import count

    s = 3  # tokens; every float tensor below is [1, 3, 4] (12 values) or [1, 3, 8] (24)
    ops = {o.op + str(i): o for i, o in enumerate(count(hand_graph(tmp_path / "h.onnx"), s))}
    gather, mm, add, erf, ln, softmax, transpose, att = ops.values()
    # Gather: writes 12 floats and reads the 12 it picks (not the 10x4 table) + 3 int64 ids
    assert (gather.kind, gather.bytes, gather.elements) == ("gather", 48 + 48 + 24, 12)
    # MatMul [1,3,4] x [4,8]: 2 x 24 outputs x 4 inner = 192 FLOPs; reads 48 + 128 B, writes 96
    assert (mm.kind, mm.flops, mm.bytes, mm.weight_bytes) == ("gemm", 192, 48 + 128 + 96, 128)
    assert (add.kind, add.bytes, add.elements) == ("elementwise", 96 + 32 + 96, 24)
    assert (erf.kind, erf.bytes, erf.transcendental) == ("activation", 192, 24)
    assert (ln.kind, ln.bytes, ln.transcendental) == ("normalization", 96 + 32 + 32 + 96, 24)
    assert (softmax.kind, softmax.bytes, softmax.transcendental) == ("softmax", 192, 24)
    assert (transpose.kind, transpose.bytes) == ("layout", 192)
    # s @ s^T: [1,3,8] x [1,8,3] between two activations -> attention, 2 x 9 x 8 FLOPs
    assert (att.kind, att.flops, att.bytes) == ("attention", 144, 96 + 96 + 36)
    work = Work.of(ops.values())
    assert (work.gemm_flops, work.transcendental, work.total_ops) == (336, 72, 8)
    assert work.matmuls == [(192, 0, 272), (144, 0, 228)]


def test_cost_model_arithmetic_on_a_hand_computed_case():
    work = Work.of(
        [
            OpCost("gemm", "mm", flops=2e9, bytes=1e6),  # compute-bound: 2e9 / 100e9 = 20 ms
            OpCost("gemm", "mm", flops=1e6, bytes=60e6),  # memory-bound: 60e6 / 6e9 = 10 ms
            OpCost("softmax", "sm", bytes=30e6, transcendental=4e8),
        ]
    )
    peaks = Peaks(gflops_fp32=100.0, gops_int8=400.0, bandwidth_gbs=10.0, ghz=2.0, threads=2)
    gemm, memory, trans, ops = features(work, peaks)
    assert gemm == pytest.approx(0.030) and memory == pytest.approx(0.005)
    assert trans == pytest.approx(0.1) and ops == pytest.approx(3e-6)  # 4e8 / (2 GHz x 2)
    r = predict(work, peaks, Coefficients(a=2.0, b=1.0, c=0.5, d=1000.0))
    # 2 x 30 + 5 + 0.5 x 100 + 1000 x 0.003 ms
    assert r["estimate_ms"] == pytest.approx(60 + 5 + 50 + 3)
    assert r["parts_ms"] == pytest.approx(
        {"gemm": 60.0, "memory": 5.0, "transcendental": 50.0, "ops": 3.0}
    )


def _point(name, x_gemm, ms, runtime="rt", over_peak=False, device="d"):
    return Point(name, device, runtime, 128, 4, ms, "hand", "high", (x_gemm, 0, 0, 0), over_peak)


def test_leave_one_out_arithmetic_on_a_hand_made_table():
    # one runtime, GEMM term only: a = sum(x/y) / sum((x/y)^2) over the points it sees
    points = [_point("p0", 1.0, 2000), _point("p1", 2.0, 4000), _point("p2", 4.0, 4000)]
    points.append(_point("fast", 1.0, 100, over_peak=True))  # flagged: never fitted
    rows = leave_one_out(points)
    # without p0: x/y = 0.5, 1.0 -> a = 1.5 / 1.25 = 1.2 -> 1.2 s against 2 s
    # without p1: the same 1.2 -> 2.4 s against 4 s; without p2: 0.5, 0.5 -> a = 2 -> 8 s
    assert [r["estimated_ms"] for r in rows[:3]] == pytest.approx([1200, 2400, 8000])
    assert [r["error"] for r in rows[:3]] == pytest.approx([-0.4, -0.4, 1.0])
    # the flagged point is estimated by the fit on all three: a = 2 / 1.5
    assert rows[3]["flagged"] and rows[3]["estimated_ms"] == pytest.approx(1000 * 4 / 3, abs=0.1)
    summary = error_summary(rows)
    assert summary["points"] == 3 and summary["median_abs_error"] == pytest.approx(0.4)
    assert summary["max_abs_error"] == pytest.approx(1.0)
    assert fit(points)["rt"].a == pytest.approx((0.5 + 0.5 + 1.0) / (0.25 + 0.25 + 1.0))


def test_a_runtime_with_few_points_borrows_the_other_terms_of_the_richest_one():
    rich = [
        Point(f"r{i}", "d", "rich", 128, 4, 1e3 * (2 * g + 3 * m), "hand", "", (g, m, 0.0, 0.0))
        for i, (g, m) in enumerate([(1, 0.5), (2, 0.1), (1, 1), (3, 0.2), (0.5, 2), (2, 2)])
    ]
    poor = [Point("q", "d", "poor", 128, 4, 1e3 * (4 * 1 + 3 * 1), "hand", "", (1, 1, 0, 0))]
    coefs = fit(rich + poor)
    assert coefs["rich"].as_tuple() == pytest.approx((2, 3, 0, 0), abs=1e-9)
    assert coefs["poor"].as_tuple() == pytest.approx((4, 3, 0, 0), abs=1e-9)
    assert "b c d from rich" in coefs["poor"].source


def test_fit_never_returns_a_negative_coefficient():
    x = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
    y = np.array([3.0, 2.0, 1.0])  # falls as the second feature grows
    theta = nnls_relative(x, y)
    assert (theta >= 0).all() and theta[1] == 0


def test_tflite_and_onnx_counters_agree_with_the_hand_count_of_a_tiny_bert(fp32_bundle):
    for seq in (16, 32):
        hand = bert_cost(layers=2, hidden=32, intermediate=64, heads=2, seq=seq).flops_fp32
        for fmt in ("onnx", "tflite"):
            work = count_file(fp32_bundle(fmt), seq)
            assert work.gemm_flops == pytest.approx(hand), (fmt, seq)
            assert work.ops["normalization"] and work.ops["softmax"] == 2, fmt
            assert work.transcendental > 0


def test_executorch_bundle_is_counted_through_its_delegates_and_estimated(fp32_bundle, tmp_path):
    from pocketbert.profiler.run import profile

    bundle = fp32_bundle("executorch")  # max 32 tokens: a .pte is counted at its upper bound
    # the counter reads the program with flatc: no torch import (a subprocess, as tests import it)
    code = (
        "import sys; from pocketbert.lab.op_count import count_file; "
        f"w = count_file(r'{bundle}', 32); assert 'torch' not in sys.modules; print(w.gemm_flops)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == pytest.approx(bert_cost(2, 32, 64, 2, 32).flops_fp32)
    work = count_file(bundle, 32)
    assert work.ops["gemm"] == 14 and work.ops["attention"] == 4  # inside XNNPACK delegates
    assert work.ops["normalization"] == 5  # native_layer_norm: left to the portable kernels
    (record,) = profile([bundle], ["pixel4"], estimate=True, store=None, quiet=True)
    assert record["status"] == "ok", record.get("error")
    assert record["method"] == "estimated" and record["format"] == "executorch"
    assert record["latency_ms"]["estimate"] > 0
    assert record["roofline"]["coefficients_source"].startswith("executorch")


def test_estimate_grows_with_the_elementwise_work_at_equal_gemms():
    device = Device(
        "d", "phone", "emulated", ("tflite",), ("litert",), cpu={"ghz": 2.0, "threads": 4},
        peak_gflops_fp32=100.0, mem_bandwidth_gbs=10.0,
    )  # fmt: skip
    from pocketbert.lab.emulated import estimate

    base = [OpCost("gemm", "fc", flops=1e9, bytes=1e6)]
    extra = base + [OpCost("normalization", "mean", bytes=5e7, transcendental=1e7)] * 50
    lean, heavy = (estimate(Work.of(ops), device, "litert")["estimate_ms"] for ops in (base, extra))
    assert heavy > lean > 0
