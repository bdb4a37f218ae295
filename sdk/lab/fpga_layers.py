"""What an accelerator does for one inference of an fpga program, op by op.

Each op of the program (``runtimes/fpga.py``'s node list) becomes a :class:`Layer`: its
GEMMs as (batch, M, K, N) (a linear: the tokens x in-features by in-features x
out-features; an attention: per head Q K^T and P V), the element-passes it makes through
the nonlinear (vector) unit, the bytes it reads from DDR (its int8 weights, integer biases
and requantization pairs; the rows it looks up in an embedding table), and the bytes of
activations that must sit on chip while it runs: every tensor already made that this op or
a later one still reads, plus its own output (liveness over the node list), plus one head's
int32 scores and uint8 probabilities inside an attention. Widths are the program's own
(``bits`` of each node: 8, 16, 24 or 32; a 24-bit tensor takes 3 bytes).

:func:`bert_program` writes the same node list for a BERT encoder of a given shape (the
order and widths ``converters/fpga_graph.py`` + ``export_fpga.py`` give a BERT), so a
published accelerator's model can be estimated without exporting it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# element-passes through the vector unit per output element of each op
VECTOR_PASSES = {
    "embed": 1,  # word row + position row
    "lookup": 0,
    "trigram": 0,  # address generation only
    "layernorm": 3,  # mean, variance, normalise (+ an isqrt per row, ISQRT_CYCLES)
    "nonorm": 1,
    "linear": 0,  # requantization happens in the array's output stage as results drain
    "add": 1,
    "attention": 0,  # its softmax is counted from the scores: SOFTMAX_PASSES
    "gelu": 1,
    "relu": 1,
    "tanh": 1,
    "requant": 1,
    "cls": 0,
    "pool": 1,
}
SOFTMAX_PASSES = 2  # i-exp and the running sum, then the division into uint8 probabilities
# a program's inputs: name -> (values per token, bytes per value)
PROGRAM_INPUTS = {"input_ids": (1, 4), "positions": (1, 4), "mask": (1, 1)}


@dataclass(frozen=True)
class Layer:
    name: str
    op: str
    gemms: tuple[tuple[int, int, int, int], ...]  # (batch, M, K, N): M x K times K x N
    vector_elems: int  # element-passes through the vector unit
    norm_rows: int  # rows whose integer square root a LayerNorm takes
    weight_bytes: int  # constants streamed from DDR (unless the model is resident on chip)
    table_bytes: int  # embedding rows read from DDR (always: tables stay off chip)
    live_bytes: int  # activations on chip while this op runs
    scratch_bytes: int  # the op's own temporaries

    @property
    def macs(self) -> int:
        return sum(b * m * k * n for b, m, k, n in self.gemms)


def _nbytes(bits: int) -> int:
    return math.ceil(bits / 8)


def program_layers(
    nodes: list[dict],
    shapes: dict[str, tuple[int, ...]],
    sizes: dict[str, int],
    seq: int,
    inputs: dict[str, tuple[int, int]] | None = None,
) -> list[Layer]:
    """The layers of a program at ``seq`` tokens; ``shapes``/``sizes``: each constant
    tensor's shape and byte count (``Program.t``); ``inputs``: the program's inputs as
    name -> (values per token, bytes per value) (default :data:`PROGRAM_INPUTS`)."""
    from pocketbert.runtimes.fpga import node_tensors

    inputs = PROGRAM_INPUTS if inputs is None else inputs
    dims: dict[str, tuple[int, int]] = {n: (seq, c) for n, (c, _) in inputs.items()}
    width: dict[str, int] = {n: b for n, (_, b) in inputs.items()}  # bytes per element
    last_use: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for name in node["inputs"]:
            last_use[name] = i
    made: list[str] = []
    layers = []
    for i, node in enumerate(nodes):
        op, out = node["op"], node["output"]
        rows, cols = dims.get(node["inputs"][0], (seq, 1))
        gemms: tuple = ()
        scratch = table = 0
        if op in ("embed", "lookup"):
            tables = [node[k] for k in ("word", "pos", "table") if k in node]
            rows, cols = seq, shapes[tables[0]][1]
            table = sum(seq * sizes[t] // shapes[t][0] for t in tables)
        elif op == "trigram":
            cols *= 3
        elif op == "linear":
            n_out, k_in = shapes[node["w"]]
            gemms = ((1, rows, k_in, n_out),)
            cols = n_out
        elif op == "attention":
            heads = node["heads"]
            d = cols // heads
            gemms = ((heads, rows, d, rows), (heads, rows, rows, d))
            scratch = rows * rows * (4 + 1)  # one head's int32 scores and uint8 probabilities
        elif op in ("cls", "pool"):
            rows = 1
        dims[out] = (rows, cols)
        width[out] = _nbytes(node["bits"])
        elems = rows * cols
        if op == "attention":
            elems = node["heads"] * rows * rows * SOFTMAX_PASSES
        else:
            elems *= VECTOR_PASSES[op]
        live = sum(
            _tensor_bytes(t, dims, width) for t in (*inputs, *made) if last_use.get(t, -1) >= i
        )
        made.append(out)
        weights = sum(sizes[t] for t in node_tensors(node) if t not in _tables(node))
        layers.append(
            Layer(
                name=out,
                op=op,
                gemms=gemms,
                vector_elems=elems,
                norm_rows=rows if op == "layernorm" else 0,
                weight_bytes=weights,
                table_bytes=table,
                live_bytes=live + rows * cols * width[out],
                scratch_bytes=scratch,
            )
        )
    return layers


def _tables(node: dict) -> set[str]:
    return {node[k] for k in ("word", "pos", "table") if k in node}


def _tensor_bytes(name: str, dims: dict, width: dict) -> int:
    rows, cols = dims[name]
    return rows * cols * width[name]


def bert_program(
    layers: int, hidden: int, ffn: int, heads: int, weight_bits: int = 8
) -> tuple[list[dict], dict[str, tuple[int, ...]], dict[str, int], dict]:
    """(nodes, shapes, sizes, inputs) of a BERT encoder's program, without embeddings or task head:
    its input ``emb.ln`` (int16, from the host) and each layer as export_fpga writes it
    (int8 weights, or ``weight_bits``-bit ones packed, an int32/int64 bias and an int32
    (m, shift) pair per output channel)."""
    nodes: list[dict] = []
    shapes: dict[str, tuple[int, ...]] = {}
    sizes: dict[str, int] = {}

    def add(op, inputs, out, bits, **attrs):
        requant = [] if op in ("cls", "pool") else [out]
        nodes.append(
            {"op": op, "inputs": inputs, "output": out, "bits": bits, "requant": requant, **attrs}
        )
        for prefix in requant:
            shapes[f"{prefix}.m"] = shapes[f"{prefix}.shift"] = (1,)
            sizes[f"{prefix}.m"] = sizes[f"{prefix}.shift"] = 4
        return out

    def linear(x, name, k, n, bits, acc=32):
        shapes[f"{name}.w"], sizes[f"{name}.w"] = (n, k), math.ceil(n * k * weight_bits / 8)
        shapes[f"{name}.b"], sizes[f"{name}.b"] = (n,), n * (4 if acc == 32 else 8)
        node = add("linear", [x], name, bits, w=f"{name}.w", b=f"{name}.b", acc_bits=acc)
        for suffix in ("m", "shift"):  # per-channel requantization
            sizes[f"{name}.{suffix}"] = 4 * n
        return node

    def layernorm(x, name, bits):
        for suffix, size in (("g", 2), ("b", 4)):
            shapes[f"{name}.{suffix}"], sizes[f"{name}.{suffix}"] = (hidden,), hidden * size
        return add("layernorm", [x], name, bits, g=f"{name}.g", b=f"{name}.b", fraction=14)

    h16 = "emb.ln"
    h8 = add("requant", [h16], "emb.ln.i8", 8)
    for i in range(layers):
        p = f"l{i}"
        q, k, v = (linear(h8, f"{p}.{n}", hidden, hidden, 8) for n in "qkv")
        ctx = add("attention", [q, k, v, "mask"], f"{p}.ctx", 8, heads=heads)
        res = add("add", [h16, linear(ctx, f"{p}.o", hidden, hidden, 24)], f"{p}.res1", 24)
        ln1 = layernorm(res, f"{p}.ln1", 16)
        up = linear(add("requant", [ln1], f"{ln1}.i8", 8), f"{p}.up", hidden, ffn, 16)
        mid = add("gelu", [up], f"{p}.act", 16)
        down = linear(mid, f"{p}.down", ffn, hidden, 24, acc=48)
        h16 = layernorm(add("add", [ln1, down], f"{p}.res2", 24), f"{p}.ln2", 16)
        h8 = add("requant", [h16], f"{h16}.i8", 8)
    nodes.pop()  # the last layer's int8 copy has no reader
    return nodes, shapes, sizes, {"emb.ln": (hidden, 2), "mask": (1, 1)}
