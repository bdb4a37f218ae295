"""Count every op of a TFLite file at one sequence length, read from its flatbuffer.

The file is read with the TFLite schema that ships with the interpreter package
(``schema_py_generated``), lazily: no buffer is copied, no interpreter is built. A file with
one signature per length bucket is counted on the bucket that ``seq`` tokens run at (the
smallest that fits, as the LiteRT runtime picks it); a one-signature file at its own length.
"""

from __future__ import annotations

import math
import mmap
from pathlib import Path

from pocketbert.core.errors import UserError
from pocketbert.lab.op_cost import OpCost

_GEMMS = {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"}
# op -> (kind, transcendental evaluations per output element)
_KINDS = {
    "MEAN": ("normalization", 0),
    "SQUARED_DIFFERENCE": ("normalization", 0),
    "RSQRT": ("normalization", 1),
    "SQRT": ("normalization", 1),
    "L2_NORMALIZATION": ("normalization", 1),
    "GELU": ("activation", 1),
    "TANH": ("activation", 1),
    "LOGISTIC": ("activation", 1),
    "EXP": ("activation", 1),
    "RELU": ("activation", 0),
    "RELU6": ("activation", 0),
    "SOFTMAX": ("softmax", 1),
    "EMBEDDING_LOOKUP": ("gather", 0),
    "GATHER": ("gather", 0),
    "GATHER_ND": ("gather", 0),
    "RESHAPE": ("layout", 0),
    "TRANSPOSE": ("layout", 0),
    "CONCATENATION": ("layout", 0),
    "SLICE": ("layout", 0),
    "STRIDED_SLICE": ("layout", 0),
    "SQUEEZE": ("layout", 0),
    "EXPAND_DIMS": ("layout", 0),
    "BROADCAST_TO": ("layout", 0),
    "PACK": ("layout", 0),
    "UNPACK": ("layout", 0),
    "SPLIT": ("layout", 0),
    "SPLIT_V": ("layout", 0),
}
_NO_DATA = {"SHAPE"}
_ITEMSIZE = {"FLOAT32": 4, "FLOAT16": 2, "INT32": 4, "INT64": 8, "INT8": 1, "UINT8": 1, "BOOL": 1}
_ITEMSIZE |= {"INT16": 2, "FLOAT64": 8}


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            from tflite_runtime import schema_py_generated as schema  # type: ignore
        except ImportError as exc:
            raise UserError(
                "counting a .tflite file needs the TFLite schema; pip install ai-edge-litert"
            ) from exc
    return schema


def _subgraph(model, seq: int | None) -> tuple[int, int | None]:
    """(subgraph index, its length) that ``seq`` tokens run in (None: the longest)."""
    sigs = []
    for i in range(model.SignatureDefsLength()):
        sig = model.SignatureDefs(i)
        key = (sig.SignatureKey() or b"").decode()
        if key.startswith("seq_") and key[4:].isdigit():
            sigs.append((int(key[4:]), sig.SubgraphIndex()))
    if not sigs:
        return 0, seq
    fits = sorted(s for s in sigs if seq is not None and s[0] >= seq) or [max(sigs)]
    length, index = fits[0]
    return index, length


def count(path: Path, seq: int | None) -> list[OpCost]:
    """One :class:`OpCost` per operator of the subgraph ``seq`` tokens run in."""
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        model = schema.Model.GetRootAs(buf, 0)
        index, _ = _subgraph(model, seq)
        graph = model.Subgraphs(index)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]

        def constant(buffer: int) -> bool:
            b = model.Buffers(buffer) if buffer < model.BuffersLength() else None
            return bool(b is not None and (b.DataLength() or b.Size()))

        tensors = []
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
            dtype = types.get(tensor.Type(), "FLOAT32")
            tensors.append((shape, dtype, constant(tensor.Buffer())))
        ops = []
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            code = codes[op.OpcodeIndex()]
            name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            ins = [tensors[i] for i in op.InputsAsNumpy() if i >= 0] if op.InputsLength() else []
            outs = [tensors[i] for i in op.OutputsAsNumpy() if i >= 0] if op.OutputsLength() else []
            ops.append(_op_cost(name, ins, outs))
    return ops


def _size(t) -> float:
    return float(math.prod(t[0]))


def _bytes(t) -> float:
    return _size(t) * _ITEMSIZE.get(t[1], 4)


def _op_cost(name: str, ins: list, outs: list) -> OpCost:
    in_bytes = sum(_bytes(t) for t in ins)
    out_bytes = sum(_bytes(t) for t in outs)
    weight = sum(_bytes(t) for t in ins if t[2])
    out_elems = sum(_size(t) for t in outs)
    if name in _GEMMS and len(ins) >= 2 and outs:
        w = ins[1]
        inner = w[0][-1] if name == "FULLY_CONNECTED" else math.prod(w[0][1:])
        if name == "DEPTHWISE_CONV_2D":
            inner = math.prod(w[0][1:-1])
        return _matmul("gemm", name, ins, outs, inner, in_bytes + out_bytes, weight, out_elems)
    if name == "BATCH_MATMUL" and len(ins) >= 2 and outs:
        a = ins[0][0]
        kind = "gemm" if ins[1][2] else "attention"
        return _matmul(kind, name, ins, outs, a[-1], in_bytes + out_bytes, weight, out_elems)
    if name in _NO_DATA:
        return OpCost("layout", name)
    kind, trans = _KINDS.get(name, ("elementwise", 0))
    moved = in_bytes + out_bytes
    if kind == "gather":  # a lookup reads the rows it gathers, not the whole table
        moved = 2.0 * out_bytes + sum(_bytes(t) for t in ins if not t[2])
    return OpCost(kind, name, bytes=moved, elements=out_elems, transcendental=trans * out_elems)


def _matmul(kind, name, ins, outs, inner, moved, weight, out_elems) -> OpCost:
    work = 2.0 * _size(outs[0]) * inner
    int8 = ins[1][1] in ("INT8", "UINT8")  # int8 weights: hybrid or integer kernels
    return OpCost(
        kind,
        name,
        flops=0.0 if int8 else work,
        int8_ops=work if int8 else 0.0,
        bytes=moved,
        weight_bytes=weight,
        elements=out_elems,
    )
