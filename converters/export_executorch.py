"""ExecuTorch export: torch.export -> (PT2E int8) -> XNNPACK lowering -> ``.pte``.

Every precision first rewrites SqueezeBERT encoders to run in [batch, seq, channels]
(``squeezebert_channels_last``): XNNPACK would otherwise run a transpose
copy around every grouped layer and leave their splits to portable kernels, overhead
that int8 pays as much as fp32 (SqueezeBERT int8 was no faster than fp32). fp32 then
lowers the module as it is. Both int8 precisions first swap the embedding tables
for int8 ones (``int8_embedding``; XNNPACK's quantizer leaves them fp32), then run PT2E
with the XNNPACK quantizer on Linear layers: symmetric per-channel int8 weights with
dynamic per-token activations (int8-dynamic), or static activations calibrated on the
spec's calibration text (int8-static; the FFN down-projections stay dynamic, see
``_int8_static``). Files get a dynamic sequence dimension where torch.export manages one,
else a static [1, max_seq_len] one.
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import torch

from pocketbert.converters.int8_embedding import int8_embeddings
from pocketbert.converters.quantization import Fp32, Int8Dynamic, Int8Static
from pocketbert.converters.registry import register_exporter
from pocketbert.converters.spec import INPUT_NAMES, Exported, ExportSpec, pad_feed
from pocketbert.converters.squeezebert_channels_last import squeezebert_channels_last
from pocketbert.core.errors import first_line

# Nodes that are graph plumbing, not kernels the runtime executes.
_PLUMBING = {"getitem", "executorch_call_delegate", "sym_size", "sym_numel", "sym_storage_offset"}


def _args(feed: dict) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(feed[n]).to(torch.int64) for n in INPUT_NAMES)


def _shapes(spec: ExportSpec, dynamic: bool) -> dict | None:
    if not dynamic:
        return None
    seq = torch.export.Dim("seq", min=spec.min_seq_len, max=spec.max_seq_len)
    return {n: {1: seq} for n in INPUT_NAMES}


def _calibration_feeds(spec: ExportSpec, dynamic: bool) -> list[dict]:
    """Calibration text at natural length for dynamic files, padded for static ones.

    Padding positions are masked out of the output, but their activations would widen
    the observed ranges (MiniLM int8-static cosine 0.983 -> 0.989 without them).
    """
    feeds = spec.calibration or [spec.sample]
    if not dynamic:
        return [pad_feed(f, spec.max_seq_len) for f in feeds]
    short = [f for f in feeds if f["input_ids"].shape[1] < spec.min_seq_len]
    fitted = [pad_feed(f, spec.min_seq_len) for f in short]
    return [f for f in feeds if f["input_ids"].shape[1] >= spec.min_seq_len] + fitted


# Ops a linear's input may pass through after an activation without changing its range.
_SHAPE_OPS = {"view", "reshape", "_unsafe_view", "transpose", "permute", "t", "contiguous"}
_SHAPE_OPS |= {"clone", "split", "split_with_sizes", "getitem"}
_ACTIVATIONS = {"gelu", "relu", "silu", "tanh", "hardtanh", "sigmoid"}


def _after_activation(node: torch.fx.Node) -> bool:
    """Whether ``node`` is a linear reading an activation's output (FFN down-projection)."""
    if node.target != torch.ops.aten.linear.default:
        return False
    x = node.args[0]
    while isinstance(x, torch.fx.Node) and x.op == "call_function":
        name = getattr(x.target, "__name__", str(x.target)).split(".")[0]
        if name in _ACTIVATIONS:
            return True
        if name not in _SHAPE_OPS:
            return False
        x = x.args[0]
    return False


def _linears(config, keep=None):
    """An XNNPACK quantizer annotating Linear layers only (those ``keep`` accepts)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    q = XNNPACKQuantizer().set_operator_type(torch.ops.aten.linear.default, config)
    return q.set_filter_function(keep) if keep else q


def _symmetric(dynamic: bool):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        get_symmetric_quantization_config,
    )

    return get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)


def _pt2e(model: torch.nn.Module, spec: ExportSpec, dynamic: bool, quantizer, calibrate: bool):
    """torch.export, PT2E prepare/calibrate/convert; the converted graph module + checks.

    ``calibrate``: run the spec's calibration text (else one sample, which dynamic
    activations need only to trace the observers).
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = torch.export.export(
        model, _args(spec.sample), dynamic_shapes=_shapes(spec, dynamic), strict=False
    ).module()
    linear = [n for n in graph.graph.nodes if n.target == torch.ops.aten.linear.default]
    checks = {"int8_linears": len(linear)}
    feeds = [spec.sample]
    if calibrate:
        checks["dynamic_activation_linears"] = (
            sum(map(_after_activation, linear)) if spec.precision.dynamic_outliers else 0
        )
        feeds = _calibration_feeds(spec, dynamic)
        checks["calibration_feeds"] = len(feeds)
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for feed in feeds:
            prepared(*_args(feed))
    return convert_pt2e(prepared), checks


def _fp32(model: torch.nn.Module, spec: ExportSpec, dynamic: bool):
    return model, {}


def _int8_dynamic(model: torch.nn.Module, spec: ExportSpec, dynamic: bool):
    """int8 embedding tables; Linear: per-channel int8 weights, per-token activations."""
    tables = int8_embeddings(model)
    graph, checks = _pt2e(model, spec, dynamic, _linears(_symmetric(True)), calibrate=False)
    return graph, {"int8_embedding_tables": tables, **checks}


def _int8_static(model: torch.nn.Module, spec: ExportSpec, dynamic: bool):
    """int8 embedding tables; Linear: per-channel int8 weights, calibrated activations.

    A static "add"/"mul" annotation would put the additive attention mask (finfo.min on
    padding) and the pooling arithmetic on an int8 per-tensor grid. Static activations
    also ruin the FFN down-projection (its GELU input has a long tail: MiniLM cosine
    0.92), so with ``dynamic_outliers`` those linears take dynamic activations (0.99).
    """
    from torchao.quantization.pt2e.quantizer import ComposableQuantizer

    tables = int8_embeddings(model)
    static = _symmetric(False)
    if spec.precision.dynamic_outliers:
        quantizer = ComposableQuantizer(
            [
                _linears(static, lambda n: not _after_activation(n)),
                _linears(_symmetric(True), _after_activation),
            ]
        )
    else:
        quantizer = _linears(static)
    graph, checks = _pt2e(model, spec, dynamic, quantizer, calibrate=True)
    return graph, {"int8_embedding_tables": tables, **checks}


def _op_name(target) -> str:
    """``aten.view_copy.default`` -> ``aten.view_copy``; other overloads keep their name."""
    name = getattr(target, "__name__", str(target))
    return name.removesuffix(".default")


def _count_ops(graph_module: torch.fx.GraphModule) -> Counter:
    ops: Counter = Counter()
    for node in graph_module.graph.nodes:
        if node.op == "call_function":
            name = _op_name(node.target)
            if not _PLUMBING.intersection(name.split(".")):
                ops[name] += 1
    return ops


def _delegation_checks(program) -> dict:
    """Ops left outside XNNPACK delegates (name -> count) and the delegated op fraction."""
    gm = program.exported_program().graph_module
    undelegated = _count_ops(gm)
    delegated = sum(
        sum(_count_ops(child.original_module.graph_module).values())
        for _, child in gm.named_children()
        if hasattr(child, "original_module")
    )
    total = delegated + sum(undelegated.values())
    return {
        "undelegated_ops": dict(sorted(undelegated.items(), key=lambda kv: -kv[1])),
        "delegated_fraction": round(delegated / total, 4) if total else 0.0,
    }


def _lower(model: torch.nn.Module, spec: ExportSpec, dynamic: bool, quantize) -> tuple[bytes, dict]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    extra: dict = {}
    model = copy.deepcopy(model)
    if channels_last := squeezebert_channels_last(model):
        extra["channels_last_encoders"] = channels_last
    model, more = quantize(model, spec, dynamic)
    extra.update(more)
    program = torch.export.export(
        model, _args(spec.sample), dynamic_shapes=_shapes(spec, dynamic), strict=False
    )
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    checks = {**_delegation_checks(edge), **extra}
    return edge.to_executorch().buffer, checks


def _tools() -> dict:
    import torchao
    from executorch.version import __version__ as et_version

    return {"executorch": et_version, "torchao": torchao.__version__, "torch": torch.__version__}


@register_exporter(
    "executorch",
    suffix=".pte",
    runtime="executorch",
    handles={Fp32: _fp32, Int8Dynamic: _int8_dynamic, Int8Static: _int8_static},
)
def export(model: torch.nn.Module, spec: ExportSpec, out: Path, quantize) -> Exported:
    """Write ``model`` as an XNNPACK-delegated ``.pte`` at ``out`` (dynamic seq if possible).

    ``quantize(model, spec, dynamic) -> (module, checks)`` is the precision's step
    between the SqueezeBERT rewrite and the lowering.
    """
    try:
        buffer, checks = _lower(model, spec, True, quantize)
        dynamic = True
    except Exception as exc:  # torch.export raises many types for unsupported dynamism
        first = first_line(exc)
        buffer, checks = _lower(model, spec, False, quantize)
        dynamic = False
        checks["static_seq_reason"] = f"dynamic sequence export failed: {first}"
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(buffer)
    tmp.replace(out)
    return Exported(path=out, dynamic_seq=dynamic, checks=checks, tools=_tools())
