"""ONNX export (torch.onnx) and quantization with onnxruntime.quantization."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pocketbert.converters.quantization import Fp32, Int8Dynamic, Int8Static
from pocketbert.converters.registry import register_exporter
from pocketbert.converters.spec import INPUT_NAMES, Exported, ExportSpec

OPSET = 17


def _to_onnx(model: nn.Module, spec: ExportSpec, path: Path) -> None:
    """TorchScript-based export.

    Its graph is the one onnxruntime's own session-time fusions recognise (the dynamo
    exporter's is not). Fusing offline with onnxruntime.transformers.optimizer before
    quantizing was measured slower: its SkipLayerNormalization and QAttention kernels
    lose to what the session fuses itself from a plain quantized graph (MiniLM int8,
    1 thread: 10.9 ms fused vs 8.3 ms plain, optimum's export 10.0 ms).
    """
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
    range clips.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name: tuple(i.dims) for i in graph.initializer}

    def narrowing(node) -> bool:
        if node.op_type != "MatMul":
            return False
        dims = weights.get(node.input[1], ())
        return len(dims) == 2 and dims[0] > dims[1]

    return [n.name for n in graph.node if narrowing(n)]


_ONLY_WEIGHTS = {"MatMulConstBOnly": True}  # activation x activation matmuls stay fp32


def _fp32(fp32: Path, out: Path, spec: ExportSpec) -> None:
    shutil.move(fp32, out)


def _int8_dynamic(fp32: Path, out: Path, spec: ExportSpec) -> None:
    """int8 MatMul weights per channel and int8 embedding tables (Gather), or int4 tables
    (``embedding_bits`` 4: ``_int4_tables``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int4 = spec.precision.embedding_bits == 4
    quantize_dynamic(
        fp32,
        out,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"] if int4 else ["MatMul", "Gather"],
        extra_options=_ONLY_WEIGHTS,
    )
    if int4:
        _int4_tables(out)


INT4_BLOCK = 32  # table entries per fp32 scale, along the hidden axis


def _int4_tables(path: Path) -> None:
    """Every Gather of a 2-D float table (the embeddings) becomes onnxruntime's
    GatherBlockQuantized over a symmetric int4 table, in place.

    onnxruntime's weight-only quantizer writes it; it also raises the default opset to 21
    for int4 DequantizeLinear, which this graph does not use (GatherBlockQuantized is a
    com.microsoft op): the opset goes back to the export's, the IR version stays 10 (int4
    tensors)."""
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )
    from onnxruntime.quantization.quant_utils import QuantFormat

    model = onnx.load(str(path))
    tables = {
        i.name
        for i in model.graph.initializer
        if len(i.dims) == 2 and i.data_type == onnx.TensorProto.FLOAT
    }
    gathers = [n for n in model.graph.node if n.op_type == "Gather"]
    others = [n.name for n in gathers if n.input[0] not in tables]  # shape and index Gathers
    if len(others) == len(gathers):
        return
    opsets = {o.domain: o.version for o in model.opset_import}
    config = DefaultWeightOnlyQuantConfig(
        block_size=INT4_BLOCK,
        is_symmetric=True,
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize=("Gather",),
        quant_axes=(("Gather", 1),),
    )
    quantizer = MatMulNBitsQuantizer(model, nodes_to_exclude=others, algo_config=config)
    quiet = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level, quiet.level = quiet.level, logging.ERROR  # its per-node INFO lines
    try:
        quantizer.process()
    finally:
        quiet.setLevel(level)
    written = quantizer.model.model
    for opset in written.opset_import:
        if opset.domain in opsets:
            opset.version = opsets[opset.domain]
    onnx.save(written, str(path))


def _int8_static(fp32: Path, out: Path, spec: ExportSpec) -> None:
    """Calibrated int8 MatMul inputs (QDQ), outlier layers dynamic, bias folded in."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    dynamic = spec.precision.dynamic_outliers
    outliers = _dynamic_only(fp32) if dynamic else []
    static = fp32.with_name("static.onnx")  # beside fp32, in the temporary directory
    quantize_static(
        fp32,
        static if dynamic else out,
        _Calibration(spec.calibration),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,  # u8 x s8 is the fast VNNI/NEON path
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=outliers,
        op_types_to_quantize=["MatMul", "Gather"],
        calibrate_method=CalibrationMethod.MinMax,
        # A MatMul's output stays fp32 (no QLinearMatMul -> DequantizeLinear), so
        # fold_static_matmul_bias can write it and its bias as one MatMulIntegerToFloat.
        extra_options={**_ONLY_WEIGHTS, "OpTypesToExcludeOutputQuantization": ["MatMul"]},
    )
    if dynamic:
        quantize_dynamic(
            static,
            out,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_quantize=outliers,
            op_types_to_quantize=["MatMul"],
            extra_options=_ONLY_WEIGHTS,
        )
    from pocketbert.converters.onnx_fusion import fold_static_matmul_bias

    model = onnx.load(str(out))
    if fold_static_matmul_bias(model):
        onnx.save(model, str(out))


def _rewrites(config, module: nn.Module) -> dict:
    """fp32 keeps SqueezeBERT's grouped 1x1 convolutions as Conv: onnxruntime's fp32 grouped
    Conv ran 1.03x faster than the per-group MatMuls at 128 tokens and 1.31x at 32 (random
    SqueezeBERT 6 x 384, 1 thread). The int8 recipes take the MatMuls, which the quantizers
    need (onnxruntime's ConvInteger is slower than fp32)."""
    from pocketbert.converters.pointwise_conv import is_pointwise

    if isinstance(config, Fp32) and any(map(is_pointwise, module.modules())):
        return {"convs_as_linear": False}
    return {}


@register_exporter(
    "onnx",
    suffix=".onnx",
    runtime="onnxruntime",
    handles={Fp32: _fp32, Int8Dynamic: _int8_dynamic, Int8Static: _int8_static},
    rewrites=_rewrites,
)
def export(model: nn.Module, spec: ExportSpec, out: Path, quantize) -> Exported:
    """TorchScript ONNX in the spec's scratch directory, then ``quantize(fp32, out, spec)``."""
    import onnx
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="pocketbert-onnx-", dir=spec.work_dir) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _to_onnx(model, spec, fp32)
        quantize(fp32, Path(out), spec)
    onnx.checker.check_model(str(out))
    return Exported(
        path=out,
        dynamic_seq=True,
        tools={"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "opset": OPSET},
    )
