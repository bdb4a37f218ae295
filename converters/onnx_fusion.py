"""Fold each statically quantized MatMul and its bias Add into one MatMulIntegerToFloat.

onnxruntime turns ``DequantizeLinear(x) , DequantizeLinear(W) -> MatMul`` into its
``MatMulIntegerToFloat`` kernel when the session loads, but leaves the bias ``Add`` after
it as a separate pass over the output (int8-static SqueezeBERT: 102 such Adds). The
dynamic recipe gets the bias folded in (``DynamicQuantizeMatMul``), so int8-static ran
slower than int8-dynamic. Writing the fused node ourselves, with the bias as its last
input, closes that gap. The node is onnxruntime's (domain ``com.microsoft``), as the
bundle's runtime is.

    count = fold_static_matmul_bias(model)   # onnx.ModelProto, in place
"""

from __future__ import annotations

from collections import defaultdict

import onnx
from onnx import helper

MS_DOMAIN = "com.microsoft"


def _through_identity(name: str, producer: dict) -> str:
    while name in producer and producer[name].op_type == "Identity":
        name = producer[name].input[0]
    return name


def fold_static_matmul_bias(model: onnx.ModelProto) -> int:
    """Rewrite ``DQ(x), DQ(const W) -> MatMul -> Add(const bias)``; return how many."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, list] = defaultdict(list)
    for n in graph.node:
        for name in n.input:
            readers[name].append(n)
    shapes = {i.name: list(i.dims) for i in graph.initializer}

    replaced: dict[int, onnx.NodeProto] = {}
    dropped: set[int] = set()
    for mm in graph.node:
        if mm.op_type != "MatMul":
            continue
        a, b = (producer.get(name) for name in mm.input)
        if not (a and b and a.op_type == b.op_type == "DequantizeLinear"):
            continue
        if b.input[0] not in shapes or len(readers[mm.output[0]]) != 1:
            continue
        add = readers[mm.output[0]][0]
        others = [name for name in add.input if name != mm.output[0]]
        if add.op_type != "Add" or len(others) != 1:
            continue
        bias = _through_identity(others[0], producer)
        if shapes.get(bias) != shapes[b.input[0]][-1:]:  # a constant [out_features] only
            continue
        zero_a = a.input[2] if len(a.input) > 2 else ""
        zero_b = b.input[2] if len(b.input) > 2 else ""
        replaced[id(add)] = helper.make_node(
            "MatMulIntegerToFloat",
            [a.input[0], b.input[0], a.input[1], b.input[1], zero_a, zero_b, bias],
            list(add.output),
            name=mm.name + "_bias",
            domain=MS_DOMAIN,
        )
        dropped.add(id(mm))
    if not replaced:
        return 0
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped]
    read = {name for n in nodes for name in n.input} | {o.name for o in graph.output}
    nodes = [n for n in nodes if n.op_type != "DequantizeLinear" or n.output[0] in read]
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return len(replaced)
