"""Count every op of an ExecuTorch program (.pte), including the ops inside XNNPACK delegates.

The program is read with the schema and the ``flatc`` binary that ship in the executorch
wheel (``executorch/exir/_serialize/program.fbs``, ``executorch/data/bin/flatc``), found
without importing executorch (which would import torch): flatc turns the program, and each
XNNPACK delegate's graph (``backends/xnnpack/serialization/schema.fbs``, after the
delegate's XH00 header), into JSON. The ops outside delegates are the portable kernels'
(aten names); those inside are XNNPACK nodes with their tensor shapes.

Shapes are the program's own: a dynamic-length program stores its upper bound, so a .pte is
counted at the bundle's max_seq_len whatever length is asked for.
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import tempfile
from importlib.util import find_spec
from pathlib import Path

from pocketbert.core.errors import UserError
from pocketbert.lab.op_cost import OpCost

_INVALID = 0xFFFFFFFF
_BARE = re.compile(r"([:\[,]\s*)(-inf|inf|nan|-nan)\b")
_SPELLED = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN", "-nan": "NaN"}
_ATEN_ITEMSIZE = {"FLOAT": 4, "HALF": 2, "BFLOAT16": 2, "LONG": 8, "INT": 4, "CHAR": 1}
_ATEN_ITEMSIZE |= {"BYTE": 1, "BOOL": 1, "DOUBLE": 8, "SHORT": 2, "QINT8": 1, "QUINT8": 1}
_XNN_ITEMSIZE = {"fp32": 4, "fp16": 2, "bf16": 2, "int32": 4, "qint32": 4, "qcint32": 4}
_XNN_ITEMSIZE |= {"qcint4": 0.5, "qbint4": 0.5}  # the rest (q*int8) are 1 byte

# the kind of an op, by the last part of its name (aten::native_layer_norm -> native_layer_norm;
# XNNFullyConnected -> FullyConnected), and its transcendental evaluations per output element
_KINDS = {
    "mm": ("gemm", 0),
    "addmm": ("gemm", 0),
    "linear": ("gemm", 0),
    "bmm": ("gemm", 0),
    "matmul": ("gemm", 0),
    "convolution": ("gemm", 0),
    "FullyConnected": ("gemm", 0),
    "BatchMatrixMultiply": ("gemm", 0),
    "Conv2d": ("gemm", 0),
    "DepthwiseConv2d": ("gemm", 0),
    "ScaledDotProductAttention": ("attention", 1),
    "native_layer_norm": ("normalization", 1),
    "layer_norm": ("normalization", 1),
    "mean": ("normalization", 0),
    "var": ("normalization", 0),
    "rsqrt": ("normalization", 1),
    "sqrt": ("normalization", 1),
    "SquareRoot": ("normalization", 1),
    "ReciprocalSquareRoot": ("normalization", 1),
    "gelu": ("activation", 1),
    "relu": ("activation", 0),
    "tanh": ("activation", 1),
    "erf": ("activation", 1),
    "sigmoid": ("activation", 1),
    "exp": ("activation", 1),
    "Gelu": ("activation", 1),
    "Tanh": ("activation", 1),
    "Sigmoid": ("activation", 1),
    "Exp": ("activation", 1),
    "Clamp": ("activation", 0),
    "_softmax": ("softmax", 1),
    "softmax": ("softmax", 1),
    "Softmax": ("softmax", 1),
    "embedding": ("gather", 0),
    "index_select": ("gather", 0),
    "gather": ("gather", 0),
    "index": ("gather", 0),
}
_LAYOUT_WORDS = ("copy", "view", "cat", "clone", "Static", "Concatenate", "Copy", "squeeze")
_NO_DATA = {"sym_size", "et_view", "sym_numel"}


def _tools() -> tuple[Path, Path]:
    spec = find_spec("executorch")
    root = (
        Path(spec.submodule_search_locations[0])
        if spec and spec.submodule_search_locations
        else None
    )
    if root is None or not (root / "data" / "bin" / "flatc").is_file():
        raise UserError(
            "counting a .pte file needs the flatc tool and schemas of the executorch wheel; "
            "pip install executorch"
        )
    return root / "data" / "bin" / "flatc", root


def _to_json(flatc: Path, schema: Path, data: bytes, tmp: Path, name: str) -> dict:
    binary = tmp / f"{name}.bin"
    binary.write_bytes(data)
    argv = [str(flatc), "--json", "--strict-json", "--defaults-json", "--raw-binary"]
    argv += ["-I", str(schema.parent), "-o", str(tmp), str(schema), "--", str(binary)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise UserError(f"flatc cannot read the program ({proc.stderr.strip()[:200]})")
    text = (tmp / f"{name}.json").read_text()  # flatc writes inf / nan bare; JSON spells them
    return json.loads(_BARE.sub(lambda m: m[1] + _SPELLED[m[2]], text))


def _kind(name: str) -> tuple[str, float]:
    short = name.split("::")[-1].removeprefix("XNN")
    if short in _KINDS:
        return _KINDS[short]
    if any(w in short for w in _LAYOUT_WORDS) or short in ("expand", "permute", "slice"):
        return "layout", 0
    return "elementwise", 0


def count(path: Path, seq: int | None = None) -> list[OpCost]:
    """One :class:`OpCost` per instruction of the program's first method, delegates opened."""
    flatc, root = _tools()
    data = Path(path).read_bytes()
    if data[4:8][:2] != b"ET":
        raise UserError(f"'{Path(path).name}' is not an ExecuTorch program (no ET header)")
    base = struct.unpack("<Q", data[24:32])[0] if data[8:12] == b"eh00" else 0
    with tempfile.TemporaryDirectory(prefix="pocketbert-pte-") as tmp:
        program = _to_json(flatc, root / "exir/_serialize/program.fbs", data, Path(tmp), "program")
        plan = program["execution_plan"][0]
        values = plan["values"]
        ops: list[OpCost] = []
        for instruction in plan["chains"][0]["instructions"]:
            args = instruction["instr_args"]
            if instruction["instr_args_type"] == "KernelCall":
                name = plan["operators"][args["op_index"]]["name"]
                ops.append(_kernel(name, [values[i] for i in args["args"]]))
            elif instruction["instr_args_type"] == "DelegateCall":
                delegate = plan["delegates"][args["delegate_index"]]
                blob = _delegate_bytes(program, delegate, data, base)
                if delegate["id"] != "XnnpackBackend" or blob[4:8] != b"XH00":
                    ops.append(OpCost("elementwise", f"delegate:{delegate['id']}"))
                    continue
                offset, size = struct.unpack("<II", blob[10:18])
                graph = _to_json(
                    flatc,
                    root / "backends/xnnpack/serialization/schema.fbs",
                    blob[offset : offset + size],
                    Path(tmp),
                    "xnnpack",
                )
                ops += _xnnpack(graph)
    return ops


def _delegate_bytes(program: dict, delegate: dict, data: bytes, base: int) -> bytes:
    where = delegate["processed"]
    if where["location"] == "SEGMENT":
        seg = program["segments"][where["index"]]
        start = base + int(seg["offset"])
        return data[start : start + int(seg["size"])]
    return bytes(program["backend_delegate_data"][where["index"]]["data"])


def _aten_tensor(value: dict) -> tuple[float, float, bool] | None:
    """(elements, bytes, constant) of a Tensor value, or None."""
    if value.get("val_type") != "Tensor":
        return None
    t = value["val"]
    n = float(math.prod(t.get("sizes") or [1]))
    return (
        n,
        n * _ATEN_ITEMSIZE.get(t.get("scalar_type", "FLOAT"), 4),
        bool(t.get("data_buffer_idx")),
    )


def _kernel(name: str, args: list[dict]) -> OpCost:
    short = name.split("::")[-1]
    tensors = [t for t in (_aten_tensor(a) for a in args) if t is not None]
    if short in _NO_DATA or not tensors:
        return OpCost("layout", name)
    kind, trans = _kind(name)
    elements = max(t[0] for t in tensors)
    moved = sum(t[1] for t in tensors)
    weight = sum(t[1] for t in tensors if t[2])
    if kind == "gather":  # a lookup reads the rows it gathers, not the whole table
        moved -= weight
        elements = max((t[0] for t in tensors if not t[2]), default=0.0)
    if kind == "gemm":  # portable matmul: out = the last tensor, inner = first input's last dim
        first = next(a["val"]["sizes"] for a in args if a.get("val_type") == "Tensor")
        work = 2.0 * tensors[-1][0] * first[-1]
        kind = "gemm" if weight else "attention"
        return OpCost(kind, name, flops=work, bytes=moved, weight_bytes=weight, elements=elements)
    return OpCost(kind, name, bytes=moved, elements=elements, transcendental=trans * elements)


def _xnnpack(graph: dict) -> list[OpCost]:
    values = {}
    for v in graph["xvalues"]:
        t = v["xvalue_union"]
        t = t.get("tensor_value", t)
        dtype = t["datatype"].removeprefix("xnn_datatype_")
        n = float(math.prod(t.get("dims") or [1]))
        values[t["id_out"]] = (
            t.get("dims") or [1],
            n,
            n * _XNN_ITEMSIZE.get(dtype, 1),
            dtype,
            bool(t.get("constant_buffer_idx")),
        )
    ops = []
    for node in graph["xnodes"]:
        name = "XNN" + node["xnode_union_type"].removeprefix("XNN")
        fields = node["xnode_union"]
        out = values.get(fields.get("output_id", _INVALID))
        ins = [
            values[v]
            for k, v in fields.items()
            if k.endswith("_id") and k != "output_id" and v != _INVALID and v in values
        ]
        if out is None:
            ops.append(OpCost("layout", name))
            continue
        moved = out[2] + sum(t[2] for t in ins)
        weight = sum(t[2] for t in ins if t[4])
        kind, trans = _kind(name)
        if kind == "gemm" and len(ins) >= 2:
            a, w = ins[0], ins[1]
            inner = a[0][-1] if "Conv" not in name else math.prod(w[0][1:])
            work = 2.0 * out[1] * inner
            int8 = w[3] in ("qcint8", "qint8", "quint8", "qcint4", "qbint4", "qdint8")
            kind = "gemm" if w[4] else "attention"
            ops.append(
                OpCost(
                    kind,
                    name,
                    flops=0.0 if int8 else work,
                    int8_ops=work if int8 else 0.0,
                    bytes=moved,
                    weight_bytes=weight,
                    elements=out[1],
                )
            )
        elif kind == "attention" and len(ins) >= 3:
            q, k = ins[0], ins[1]
            work = 2.0 * 2 * q[1] * k[0][-2]  # QK^T and PV: 2 x q elements x keys
            ops.append(
                OpCost(
                    "attention",
                    name,
                    flops=work,
                    bytes=moved,
                    elements=out[1],
                    transcendental=float(q[1] / q[0][-1] * k[0][-2]),
                )
            )
        else:
            ops.append(
                OpCost(kind, name, bytes=moved, elements=out[1], transcendental=trans * out[1])
            )
    return ops
