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
import torch

from pocketbert.core.errors import UserError, choices

SUPPORTED = ("bert", "distilbert", "mobilebert", "squeezebert")
OPS = (
    "embed", "lookup", "trigram", "layernorm", "nonorm", "linear", "add", "attention",
    "gelu", "relu", "tanh", "cls", "pool", "requant",
)  # fmt: skip


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
    builders = {
        "bert": _bert,
        "distilbert": _distilbert,
        "mobilebert": _mobilebert,
        "squeezebert": _squeezebert,
    }
    builders[kind](g, model, act, task)
    return g


def _linear(g: Graph, x: str, layer, name: str) -> str:
    """A Linear, or a kernel-size-1 grouped Conv1d (either kind) as its block-diagonal
    dense matrix: the program's linear op is dense; zeros off the blocks stay zeros."""
    parts = getattr(layer, "parts", None)
    if parts is None and hasattr(layer, "groups"):  # a Conv1d that export_ready left alone
        from pocketbert.converters.squeeze_linear import _linears

        parts = _linears(layer)
    if parts is None:
        weight, bias = layer.weight.detach().double(), layer.bias.detach().double()
    else:
        weight = torch.block_diag(*(p.weight.detach().double() for p in parts))
        bias = torch.cat([p.bias.detach().double() for p in parts])
    g.param(f"{name}.w", weight)
    g.param(f"{name}.b", bias)
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


def _squeezebert(g: Graph, model, act: str, task: str) -> None:
    sq = model.transformer
    e = sq.embeddings
    if model.config.embedding_size != model.config.hidden_size:
        raise UserError(
            f"squeezebert embedding_size {model.config.embedding_size} != hidden_size "
            f"{model.config.hidden_size}: the model itself cannot run; give equal sizes"
        )
    h = _layernorm(
        g,
        _embed(g, e.word_embeddings, e.position_embeddings, e.token_type_embeddings),
        e.LayerNorm,
        "emb.ln",
    )
    heads = model.config.num_attention_heads
    for i, layer in enumerate(sq.encoder.layers):
        a, post, out = layer.attention, layer.post_attention, layer.output
        h = _block(
            g, i, h, a.query, a.key, a.value, post.conv1d, post.layernorm,
            layer.intermediate.conv1d, out.conv1d, out.layernorm, heads, act,
        )  # fmt: skip
    if task == "embedding":
        return _head(g, h, task)
    cls = g.add("cls", [h], "cls")
    pooled = g.add("tanh", [_linear(g, cls, sq.pooler.dense, "pooler")], "pooler.tanh")
    g.output = _linear(g, pooled, model.classifier, "classifier")


def _norm(g: Graph, x: str, layer, name: str) -> str:
    """LayerNorm, or MobileBERT's NoNorm (an elementwise x * gamma + beta), or nothing where
    export_ready folded that NoNorm into the Linear before it."""
    if isinstance(layer, torch.nn.Identity):
        return x
    if type(layer).__name__ != "NoNorm":
        return _layernorm(g, x, layer, name)
    g.param(f"{name}.g", layer.weight)
    g.param(f"{name}.b", layer.bias)
    return g.add("nonorm", [x], name, g=f"{name}.g", b=f"{name}.b")


def _mobilebert(g: Graph, model, act: str, task: str) -> None:
    mb, cfg = model.mobilebert, model.config
    e = mb.embeddings
    x = g.add(
        "lookup", ["input_ids"], "emb.word", table=g.param("emb.word.t", e.word_embeddings.weight)
    )
    if e.trigram_input:
        x = g.add("trigram", [x], "emb.trigram")
    if e.trigram_input or e.embedding_size != e.hidden_size:
        x = _linear(g, x, e.embedding_transformation, "emb.proj")
    pos = (
        e.position_embeddings.weight.detach().double()
        + e.token_type_embeddings.weight.detach().double()[0]
    )
    g.weights["emb.pos.t"] = pos.numpy()
    p = g.add("lookup", ["positions"], "emb.pos", table="emb.pos.t")
    h = _norm(g, g.add("add", [x, p], "emb.sum"), e.LayerNorm, "emb.ln")
    heads = cfg.num_attention_heads
    if cfg.use_bottleneck_attention or not cfg.use_bottleneck:
        raise UserError(
            "the fpga program takes MobileBERT with use_bottleneck=True and "
            "use_bottleneck_attention=False (the published shape); give such a model"
        )
    for i, layer in enumerate(mb.encoder.layer):
        pre, b = f"l{i}", layer.bottleneck
        inp = _norm(
            g, _linear(g, h, b.input.dense, f"{pre}.bin"), b.input.LayerNorm, f"{pre}.bin.n"
        )
        if cfg.key_query_shared_bottleneck:
            qk = _norm(
                g,
                _linear(g, h, b.attention.dense, f"{pre}.batt"),
                b.attention.LayerNorm,
                f"{pre}.batt.n",
            )
        else:
            qk = h
        s, o = layer.attention.self, layer.attention.output
        qs, ks = _linear(g, qk, s.query, f"{pre}.q"), _linear(g, qk, s.key, f"{pre}.k")
        ctx = g.add(
            "attention",
            [qs, ks, _linear(g, h, s.value, f"{pre}.v"), "mask"],
            f"{pre}.ctx",
            heads=heads,
        )
        a = _norm(
            g,
            g.add("add", [_linear(g, ctx, o.dense, f"{pre}.o"), inp], f"{pre}.res1"),
            o.LayerNorm,
            f"{pre}.ln1",
        )
        for j, ffn in enumerate(
            getattr(layer, "ffn", ()) if cfg.num_feedforward_networks > 1 else ()
        ):
            f = f"{pre}.ffn{j}"
            mid = g.add(act, [_linear(g, a, ffn.intermediate.dense, f"{f}.up")], f"{f}.act")
            a = _norm(
                g,
                g.add("add", [_linear(g, mid, ffn.output.dense, f"{f}.down"), a], f"{f}.res"),
                ffn.output.LayerNorm,
                f"{f}.ln",
            )
        mid = g.add(act, [_linear(g, a, layer.intermediate.dense, f"{pre}.up")], f"{pre}.act")
        out = layer.output
        y = _norm(
            g,
            g.add("add", [_linear(g, mid, out.dense, f"{pre}.down"), a], f"{pre}.res2"),
            out.LayerNorm,
            f"{pre}.ln2",
        )
        ob = out.bottleneck
        h = _norm(
            g,
            g.add("add", [_linear(g, y, ob.dense, f"{pre}.bout"), h], f"{pre}.res3"),
            ob.LayerNorm,
            f"{pre}.ln3",
        )
    if task == "embedding":
        return _head(g, h, task)
    cls = g.add("cls", [h], "cls")
    if mb.pooler.do_activate:
        cls = g.add("tanh", [_linear(g, cls, mb.pooler.dense, "pooler")], "pooler.tanh")
    g.output = _linear(g, cls, model.classifier, "classifier")


# --- float execution (calibration and checks) ----------------------------------------------


def _erf(x):
    return torch.special.erf(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


def run_float(
    g: Graph, ids: np.ndarray, mask: np.ndarray, seen: dict | None = None, trace: dict | None = None
) -> np.ndarray:
    """One row (``ids``, ``mask``: [T]) through the graph in float64; ``seen`` collects
    every tensor's max |value| (calibration), ``trace`` every tensor."""
    w = g.weights
    env = {"input_ids": ids, "mask": mask.astype(bool), "positions": np.arange(len(ids))}
    for n in g.nodes:
        x = [env[i] for i in n["inputs"]]
        op = n["op"]
        if op == "embed":
            y = w[n["word"]][x[0]] + w[n["pos"]][: len(x[0])]
        elif op == "lookup":
            y = w[n["table"]][x[0]]
        elif op == "trigram":
            y = trigram(x[0])
        elif op == "nonorm":
            y = x[0] * w[n["g"]] + w[n["b"]]
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
        elif op == "requant":  # a change of integer width; the same real value
            y = x[0]
        elif op == "cls":
            y = x[0][:1]
        elif op == "pool":
            y = (x[0] * x[1][:, None]).sum(0, keepdims=True) / max(x[1].sum(), 1)
        else:  # pragma: no cover - build() only writes OPS
            raise AssertionError(op)
        env[n["output"]] = y
        if trace is not None:
            trace[n["output"]] = y
        if seen is not None:
            seen[n["output"]] = max(seen.get(n["output"], 0.0), float(np.abs(y).max()))
    return env[g.output]


def trigram(x: np.ndarray) -> np.ndarray:
    """MobileBERT's [next token, token, previous token] concatenation (zero beyond the ends)."""
    nxt, prv = np.zeros_like(x), np.zeros_like(x)
    nxt[:-1], prv[1:] = x[1:], x[:-1]
    return np.concatenate([nxt, x, prv], axis=-1)


def _attention(q, k, v, mask, heads):
    t, width = q.shape
    d = width // heads
    split = [a.reshape(t, heads, d).transpose(1, 0, 2) for a in (q, k, v)]
    scores = split[0] @ split[1].transpose(0, 2, 1) / math.sqrt(d)
    scores = np.where(mask[None, None, :], scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (p @ split[2]).transpose(1, 0, 2).reshape(t, width)
