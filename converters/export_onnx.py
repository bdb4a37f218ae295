"""ONNX export (torch.onnx) and quantization with onnxruntime.quantization."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pocketbert.converters.registry import register_exporter
from pocketbert.converters.spec import INPUT_NAMES, Exported, ExportSpec

OPSET = 18


def _to_onnx(model: nn.Module, spec: ExportSpec, path: Path) -> None:
    args = tuple(torch.from_numpy(spec.sample[n]) for n in INPUT_NAMES)
    seq = torch.export.Dim("seq", min=spec.min_seq_len, max=spec.max_seq_len)
    shapes = {n: {1: seq} for n in INPUT_NAMES}
    program = torch.onnx.export(
        model,
        args,
        input_names=list(INPUT_NAMES),
        output_names=["output"],
        dynamic_shapes=shapes,
        opset_version=OPSET,
        dynamo=True,
        optimize=True,
        verbose=False,
    )
    program.save(str(path), external_data=False)


class _Calibration:
    """onnxruntime's CalibrationDataReader over the spec's calibration feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def _widening_matmuls(path: Path) -> list[str]:
    """MatMuls whose constant weight maps more features to fewer (FFN down-projections).

    Their inputs come straight out of GELU/ReLU and carry the activation outliers that
    a calibrated int8 range clips, so int8-static quantizes them dynamically instead.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name: tuple(i.dims) for i in graph.initializer}
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul"
        and len(weights.get(n.input[1], ())) == 2
        and weights[n.input[1]][0] > weights[n.input[1]][1]
    ]


def _quantize(fp32: Path, out: Path, spec: ExportSpec) -> None:
    """int8 MatMul weights per channel and an int8 embedding table (Gather)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    only_weights = {"MatMulConstBOnly": True}
    if spec.precision == "int8-dynamic":
        quantize_dynamic(
            fp32,
            out,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gather"],
            extra_options=only_weights,
        )
        return
    outliers = _widening_matmuls(fp32)
    static = fp32.with_name("static.onnx")  # beside fp32, in the temporary directory
    quantize_static(
        fp32,
        static,
        _Calibration(spec.calibration),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,  # u8 x s8 is the fast VNNI/NEON path
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=outliers,
        op_types_to_quantize=["MatMul", "Gather"],
        calibrate_method=CalibrationMethod.MinMax,
        extra_options=only_weights,
    )
    quantize_dynamic(
        static,
        out,
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_quantize=outliers,
        op_types_to_quantize=["MatMul"],
        extra_options=only_weights,
    )


@register_exporter("onnx", suffix=".onnx", runtime="onnxruntime")
def export(model: nn.Module, spec: ExportSpec, out: Path) -> Exported:
    import onnx
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="pocketbert-onnx-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx" if spec.quantized else out
        _to_onnx(model, spec, fp32)
        if spec.quantized:
            _quantize(fp32, out, spec)
    onnx.checker.check_model(str(out))
    return Exported(
        path=out,
        dynamic_seq=True,
        tools={"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "opset": OPSET},
    )
