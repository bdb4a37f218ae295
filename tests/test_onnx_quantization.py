"""The ONNX int8-static recipe: calibrated int8 MatMul inputs, bias folded into the kernel."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import pocketbert
from pocketbert.converters.onnx_fusion import fold_static_matmul_bias


def _ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_static_export_runs_calibrated_matmuls_with_their_bias(tiny_models, tmp_path):
    out = tmp_path / "static"
    pocketbert.export(tiny_models["bert"], out, format="onnx", precision="int8-static", quiet=True)
    graph = onnx.load(str(out / "model.onnx")).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    fused = [n for n in graph.node if n.op_type == "MatMulIntegerToFloat"]
    assert fused and all(len(n.input) == 7 and n.input[6] for n in fused)  # bias is an input
    assert all(producer[n.input[0]] == "QuantizeLinear" for n in fused)  # calibrated scale
    assert "QLinearMatMul" not in _ops(out / "model.onnx")
    # Int8Static's default dynamic_outliers: the FFN down-projections stay dynamic
    assert "DynamicQuantizeLinear" in _ops(out / "model.onnx")

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(out / "model.onnx"), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(options.optimized_model_filepath).graph
    kernel_outputs = {n.output[0] for n in optimized.node if n.op_type == "MatMulIntegerToFloat"}
    assert len(kernel_outputs) >= len(fused)
    constants = {i.name for i in optimized.initializer}
    bias_adds = [
        n.name
        for n in optimized.node
        if n.op_type == "Add"
        and kernel_outputs.intersection(n.input)
        and constants.intersection(n.input)
    ]
    assert not bias_adds


def _static_layer(rng) -> onnx.ModelProto:
    """x -> Q -> DQ -> MatMul(DQ(int8 W, per column)) -> Add(bias) -> y."""
    w = rng.integers(-127, 128, (8, 4), dtype=np.int8)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(rng.uniform(0.01, 0.02, 4).astype(np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(4, np.int8), "w_zero"),
        numpy_helper.from_array(np.array(0.05, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "x_zero"),
        numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero"], ["wd"], axis=1),
        helper.make_node("MatMul", ["xd", "wd"], ["mm"]),
        helper.make_node("Identity", ["bias"], ["bias_copy"]),  # as TorchScript dedup writes it
        helper.make_node("Add", ["mm", "bias_copy"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_fold_matches_the_unfolded_graph():
    rng = np.random.default_rng(0)
    model = _static_layer(rng)
    x = {"x": rng.normal(size=(1, 5, 8)).astype(np.float32)}
    before = ort.InferenceSession(model.SerializeToString()).run(None, x)[0]
    assert fold_static_matmul_bias(model) == 1
    ops = [n.op_type for n in model.graph.node]
    assert "MatMul" not in ops and "Add" not in ops and "DequantizeLinear" not in ops
    onnx.checker.check_model(model)
    after = ort.InferenceSession(model.SerializeToString()).run(None, x)[0]
    np.testing.assert_allclose(after, before, atol=1e-5)


def test_fold_leaves_a_matmul_without_constant_bias_alone():
    rng = np.random.default_rng(1)
    model = _static_layer(rng)
    add = model.graph.node[-1]
    add.input[1] = "x"  # a residual add, not a bias: nothing to fold
    assert fold_static_matmul_bias(model) == 0
    assert [n.op_type for n in model.graph.node].count("MatMul") == 1
