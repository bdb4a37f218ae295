"""A transformers encoder as a flat list of FPGA-program ops with float weights.

The ops (``OPS``) are the integer program's own, here with their real-valued meaning;
``run_float`` executes them in float64, which is what calibration observes and what a
test compares with torch. ``export_fpga`` then gives every tensor a scale and every op
its integer constants. Reads torch weights once; runs numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pocketbert.core.errors import UserError, choices

SUPPORTED = ("bert", "distilbert")
OPS = ("embed", "layernorm", "linear", "add", "attention", "gelu", "relu", "tanh", "cls", "pool")


@dataclass
class Graph:
    nodes: list[dict] = field(default_factory=list)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    output: str = ""
    task: str = "classification"

    def add(self, op: str, inputs: list[str], out: str, **attrs) -> str:
        self.nodes.append({"op": op, "inputs": inputs, "output": out, **attrs})
        return out

    def param(self, name: str, tensor) -> str:
        self.weights[name] = np.asarray(tensor.detach().double().numpy(), dtype=np.float64)
        return name


def build(module, task: str) -> Graph:
    """The graph of an ``ExportWrapper`` (``module.model`` is the transformers model)."""
    model = module.model
    kind = model.config.model_type
    if kind not in SUPPORTED:
        raise UserError(
            f"the fpga format does not support architecture '{kind}'; give one of: "
            f"{choices(SUPPORTED)}"
        )
    act = getattr(model.config, "hidden_act", None) or getattr(model.config, "activation", None)
    if act not in ("gelu", "relu"):
        raise UserError(
            f"the fpga integer program has no op for activation '{act}'; "
            "give a model whose FFN activation is gelu or relu"
        )
    g = Graph(task=task)
    if kind == "bert":
        _bert(g, model, act, task)
    else:
        _distilbert(g, model, act, task)
    return g


def _linear(g: Graph, x: str, layer, name: str) -> str:
    g.param(f"{name}.w", layer.weight)
    g.param(f"{name}.b", layer.bias)
    return g.add("linear", [x], name, w=f"{name}.w", b=f"{name}.b")


def _layernorm(g: Graph, x: str, layer, name: str) -> str:
    g.param(f"{name}.g", layer.weight)
    g.param(f"{name}.b", layer.bias)
    return g.add("layernorm", [x], name, g=f"{name}.g", b=f"{name}.b", eps=float(layer.eps))


def _block(g, i, h, q, k, v, o, ln1, up, down, ln2, heads, act) -> str:
    p = f"l{i}"
    qs, ks, vs = (_linear(g, h, m, f"{p}.{n}") for m, n in ((q, "q"), (k, "k"), (v, "v")))
    ctx = g.add("attention", [qs, ks, vs, "mask"], f"{p}.ctx", heads=heads)
    h = _layernorm(g, g.add("add", [h, _linear(g, ctx, o, f"{p}.o")], f"{p}.res1"), ln1, f"{p}.ln1")
    mid = g.add(act, [_linear(g, h, up, f"{p}.up")], f"{p}.act")
    return _layernorm(
        g, g.add("add", [h, _linear(g, mid, down, f"{p}.down")], f"{p}.res2"), ln2, f"{p}.ln2"
    )


def _embed(g: Graph, word, position, extra=None) -> str:
    g.param("emb.word", word.weight)
    pos = position.weight.detach().double()
    if extra is not None:  # token type 0 on every position: fold it into the position table
        pos = pos + extra.weight.detach().double()[0]
    g.weights["emb.pos"] = pos.numpy()
    return g.add("embed", ["input_ids"], "emb", word="emb.word", pos="emb.pos")


def _head(g: Graph, h: str, task: str) -> None:
    g.output = g.add("pool", [h, "mask"], "pooled") if task == "embedding" else h


def _bert(g: Graph, model, act: str, task: str) -> None:
    bert = getattr(model, "bert", model)
    e = bert.embeddings
    h = _layernorm(
        g,
        _embed(g, e.word_embeddings, e.position_embeddings, e.token_type_embeddings),
        e.LayerNorm,
        "emb.ln",
    )
    heads = model.config.num_attention_heads
    for i, layer in enumerate(bert.encoder.layer):
        a, s = layer.attention, layer.attention.self
        h = _block(
            g, i, h, s.query, s.key, s.value, a.output.dense, a.output.LayerNorm,
            layer.intermediate.dense, layer.output.dense, layer.output.LayerNorm, heads, act,
        )  # fmt: skip
    if task == "embedding":
        return _head(g, h, task)
    cls = g.add("cls", [h], "cls")
    pooled = g.add("tanh", [_linear(g, cls, bert.pooler.dense, "pooler")], "pooler.tanh")
    g.output = _linear(g, pooled, model.classifier, "classifier")


def _distilbert(g: Graph, model, act: str, task: str) -> None:
    d = getattr(model, "distilbert", model)
    e = d.embeddings
    h = _layernorm(g, _embed(g, e.word_embeddings, e.position_embeddings), e.LayerNorm, "emb.ln")
    heads = model.config.n_heads
    for i, layer in enumerate(d.transformer.layer):
        a = layer.attention
        h = _block(
            g, i, h, a.q_lin, a.k_lin, a.v_lin, a.out_lin, layer.sa_layer_norm,
            layer.ffn.lin1, layer.ffn.lin2, layer.output_layer_norm, heads, act,
        )  # fmt: skip
    if task == "embedding":
        return _head(g, h, task)
    cls = g.add("cls", [h], "cls")
    pre = g.add("relu", [_linear(g, cls, model.pre_classifier, "pre")], "pre.relu")
    g.output = _linear(g, pre, model.classifier, "classifier")


# --- float execution (calibration and checks) ----------------------------------------------


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def run_float(g: Graph, ids: np.ndarray, mask: np.ndarray, seen: dict | None = None) -> np.ndarray:
    """One row (``ids``, ``mask``: [T]) through the graph in float64; ``seen`` collects
    every tensor's max |value| (calibration)."""
    w = g.weights
    env = {"input_ids": ids, "mask": mask.astype(bool)}
    for n in g.nodes:
        x = [env[i] for i in n["inputs"]]
        op = n["op"]
        if op == "embed":
            y = w[n["word"]][x[0]] + w[n["pos"]][: len(x[0])]
        elif op == "layernorm":
            mu, var = x[0].mean(-1, keepdims=True), x[0].var(-1, keepdims=True)
            y = (x[0] - mu) / np.sqrt(var + n["eps"]) * w[n["g"]] + w[n["b"]]
        elif op == "linear":
            y = x[0] @ w[n["w"]].T + w[n["b"]]
        elif op == "add":
            y = x[0] + x[1]
        elif op == "attention":
            y = _attention(x[0], x[1], x[2], x[3], n["heads"])
        elif op == "gelu":
            y = x[0] * 0.5 * (1.0 + _erf(x[0] / math.sqrt(2.0)))
        elif op == "relu":
            y = np.maximum(x[0], 0.0)
        elif op == "tanh":
            y = np.tanh(x[0])
        elif op == "cls":
            y = x[0][:1]
        elif op == "pool":
            y = (x[0] * x[1][:, None]).sum(0, keepdims=True) / max(x[1].sum(), 1)
        else:  # pragma: no cover - build() only writes OPS
            raise AssertionError(op)
        env[n["output"]] = y
        if seen is not None:
            seen[n["output"]] = max(seen.get(n["output"], 0.0), float(np.abs(y).max()))
    return env[g.output]


def _attention(q, k, v, mask, heads):
    t, width = q.shape
    d = width // heads
    split = [a.reshape(t, heads, d).transpose(1, 0, 2) for a in (q, k, v)]
    scores = split[0] @ split[1].transpose(0, 2, 1) / math.sqrt(d)
    scores = np.where(mask[None, None, :], scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (p @ split[2]).transpose(1, 0, 2).reshape(t, width)
