"""ONNX export (torch.onnx) and quantization with onnxruntime.quantization."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pocketbert.converters.registry import register_exporter
from pocketbert.converters.spec import INPUT_NAMES, Exported, ExportSpec

OPSET = 17


def _to_onnx(model: nn.Module, spec: ExportSpec, path: Path) -> None:
    """TorchScript-based export: its graph matches onnxruntime's transformer fusions."""
    args = tuple(torch.from_numpy(spec.sample[n]) for n in INPUT_NAMES)
    torch.onnx.export(
        model,
        args,
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=["output"],
        dynamic_axes={n: {1: "seq"} for n in INPUT_NAMES},
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )


def _fuse(path: Path, out: Path) -> dict[str, int]:
    """onnxruntime's transformer fusions: Attention, SkipLayerNorm, BiasGelu.

    Embedding+LayerNorm fusion stays off so the embedding table remains a plain Gather
    that int8 quantization can shrink.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False
    fused = optimize_model(
        str(path),
        model_type="bert",
        num_heads=0,
        hidden_size=0,
        optimization_options=options,
        opt_level=0,
    )
    fused.save_model_to_file(str(out))
    return {k: v for k, v in fused.get_fused_operator_statistics().items() if v}


class _Calibration:
    """onnxruntime's CalibrationDataReader over the spec's calibration feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def _dynamic_only(path: Path) -> list[str]:
    """Nodes that int8-static still quantizes dynamically.

    FFN down-projections (a constant weight mapping more features to fewer) read
    straight out of GELU/ReLU and carry activation outliers that a calibrated int8
    range clips; fused Attention has no static int8 kernel in onnxruntime.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name: tuple(i.dims) for i in graph.initializer}

    def narrowing(node) -> bool:
        if node.op_type != "MatMul":
            return False
        dims = weights.get(node.input[1], ())
        return len(dims) == 2 and dims[0] > dims[1]

    return [n.name for n in graph.node if n.op_type == "Attention" or narrowing(n)]


def _quantize(fp32: Path, out: Path, spec: ExportSpec) -> None:
    """int8 MatMul weights per channel and an int8 embedding table (Gather)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    # Fused ops (Attention, SkipLayerNorm) are outside shape inference: their outputs are fp32.
    only_weights = {"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT}
    if spec.precision == "int8-dynamic":
        quantize_dynamic(
            fp32,
            out,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gather", "Attention"],
            extra_options=only_weights,
        )
        return
    outliers = _dynamic_only(fp32)
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
        op_types_to_quantize=["MatMul", "Attention"],
        extra_options=only_weights,
    )


@register_exporter("onnx", suffix=".onnx", runtime="onnxruntime")
def export(model: nn.Module, spec: ExportSpec, out: Path) -> Exported:
    import onnx
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="pocketbert-onnx-") as tmp:
        raw, fp32 = Path(tmp) / "raw.onnx", Path(tmp) / "fp32.onnx"
        _to_onnx(model, spec, raw)
        fusions = _fuse(raw, fp32 if spec.quantized else out)
        if spec.quantized:
            _quantize(fp32, out, spec)
    onnx.checker.check_model(str(out))
    return Exported(
        path=out,
        dynamic_seq=True,
        checks={"fused_ops": fusions},
        tools={"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "opset": OPSET},
    )
