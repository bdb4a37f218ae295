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


def _quantize(fp32: Path, out: Path, spec: ExportSpec) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if spec.precision == "int8-dynamic":
        quantize_dynamic(
            fp32,
            out,
            weight_type=QuantType.QInt8,
            per_channel=False,
            op_types_to_quantize=["MatMul", "Gemm", "Gather"],
        )
    else:
        quantize_static(
            fp32,
            out,
            _Calibration(spec.calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm", "Gather"],
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
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
