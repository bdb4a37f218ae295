"""Count every op of an ONNX graph at one sequence length.

The tensor shapes come from one run of the graph in onnxruntime with every intermediate
value made an output (graph optimisations off, so the ops counted are the file's own):
exact at the counted length, whatever the exporter left symbolic. A matmul whose second
input is a constant (an initializer, directly or through DequantizeLinear) is a GEMM; one
between two activations is attention.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pocketbert.lab.op_cost import OpCost

_INT8_MATMULS = {"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QLinearMatMul"}
_MATMULS = {"MatMul", "FusedMatMul", "Gemm"} | _INT8_MATMULS
_CONVS = {"Conv", "ConvInteger", "QLinearConv"}
_ATTENTION = {"Attention", "QAttention", "MultiHeadAttention"}
# op -> (kind, transcendental evaluations per output element)
_KINDS = {
    "LayerNormalization": ("normalization", 1),  # one rsqrt per row is amortised; 1 per elem
    "SkipLayerNormalization": ("normalization", 1),
    "SimplifiedLayerNormalization": ("normalization", 1),
    "ReduceMean": ("normalization", 0),
    "Sqrt": ("normalization", 1),
    "Reciprocal": ("normalization", 1),
    "Relu": ("activation", 0),
    "Gelu": ("activation", 1),
    "FastGelu": ("activation", 1),
    "BiasGelu": ("activation", 1),
    "Erf": ("activation", 1),
    "Tanh": ("activation", 1),
    "Sigmoid": ("activation", 1),
    "Exp": ("activation", 1),
    "Softmax": ("softmax", 1),
    "Gather": ("gather", 0),
    "GatherBlockQuantized": ("gather", 0),  # int4 embedding tables
    "GatherElements": ("gather", 0),
    "GatherND": ("gather", 0),
    "Reshape": ("layout", 0),
    "Transpose": ("layout", 0),
    "Concat": ("layout", 0),
    "Slice": ("layout", 0),
    "Expand": ("layout", 0),
    "Unsqueeze": ("layout", 0),
    "Squeeze": ("layout", 0),
    "Flatten": ("layout", 0),
    "Split": ("layout", 0),
    "Identity": ("layout", 0),
    "Tile": ("layout", 0),
}
_NO_DATA = {"Shape", "Constant", "Size"}  # ops that read metadata only


def _shapes(model, seq: int) -> dict[str, np.ndarray]:
    """Every value of the graph at batch 1 x ``seq`` tokens, from one onnxruntime run."""
    import onnx
    import onnxruntime as ort

    have = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in have:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                have.add(name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    feeds = {}
    for spec in session.get_inputs():
        dims = [
            d if isinstance(d, int) else (1 if i == 0 else seq) for i, d in enumerate(spec.shape)
        ]
        dtype = (
            np.int64 if "int64" in spec.type else np.int32 if "int32" in spec.type else np.float32
        )
        fill = 1 if "mask" in spec.name and dtype != np.float32 else 0
        feeds[spec.name] = np.full(dims, fill, dtype)
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, feeds), strict=True))
    return {**values, **feeds}


def count(path: Path, seq: int) -> list[OpCost]:
    """One :class:`OpCost` per node of the ONNX file at ``path``, at ``seq`` tokens."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    nodes = list(model.graph.node)
    values = _shapes(model, seq)

    def tensor(name: str):
        return inits.get(name) if name in inits else values.get(name)

    def is_weight(name: str) -> bool:
        node = producer.get(name)
        while (
            name not in inits
            and node is not None
            and node.op_type
            in (
                "DequantizeLinear",
                "Transpose",
                "Identity",
            )
        ):
            name = node.input[0]
            node = producer.get(name)
        return name in inits

    ops = []
    for node in nodes:
        ins = [tensor(n) for n in node.input if n]
        outs = [values.get(n) for n in node.output if n]
        ins = [t for t in ins if t is not None]
        outs = [t for t in outs if t is not None]
        in_bytes = float(sum(t.nbytes for t in ins))
        out_bytes = float(sum(t.nbytes for t in outs))
        weight = float(sum(inits[n].nbytes for n in node.input if n in inits))
        out_elems = float(sum(t.size for t in outs))
        op = node.op_type
        if op in _MATMULS | _CONVS and len(ins) >= 2 and outs:
            a = ins[0]
            if op in _CONVS:
                w = ins[1]
                inner = math.prod(w.shape[1:])
            elif op == "Gemm":
                trans_a = next((x.i for x in node.attribute if x.name == "transA"), 0)
                inner = a.shape[0] if trans_a else a.shape[-1]
            else:
                inner = a.shape[-1]
            work = 2.0 * outs[0].size * inner
            int8 = op in _INT8_MATMULS or op == "ConvInteger" or a.dtype in (np.int8, np.uint8)
            kind = "gemm" if is_weight(node.input[1]) else "attention"
            ops.append(
                OpCost(
                    kind,
                    op,
                    flops=0.0 if int8 else work,
                    int8_ops=work if int8 else 0.0,
                    bytes=in_bytes + out_bytes,
                    weight_bytes=weight,
                    elements=out_elems,
                )
            )
        elif op in _ATTENTION and ins and outs:
            x, w = ins[0], ins[1]
            s = x.shape[-2] if x.ndim >= 2 else 1
            hidden = outs[0].shape[-1]
            project = 2.0 * s * x.shape[-1] * w.shape[-1]
            scores = 2.0 * 2 * s * s * hidden
            int8 = op == "QAttention"
            ops.append(
                OpCost(
                    "attention",
                    op,
                    flops=scores + (0.0 if int8 else project),
                    int8_ops=project if int8 else 0.0,
                    bytes=in_bytes + out_bytes,
                    weight_bytes=weight,
                    elements=out_elems,
                    transcendental=float(s * s),
                )
            )
        elif op in _NO_DATA:
            ops.append(OpCost("layout", op))
        else:
            kind, trans = _KINDS.get(op, ("elementwise", 0))
            moved = in_bytes + out_bytes
            if kind == "gather":  # a lookup reads the rows it gathers, not the whole table
                moved = 2.0 * out_bytes + sum(t.nbytes for t in ins[1:])
            ops.append(
                OpCost(kind, op, bytes=moved, elements=out_elems, transcendental=trans * out_elems)
            )
    return ops
