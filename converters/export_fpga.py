"""FPGA integer program: int8 weights, int8/int16 activations, integer-only nonlinearities.

The encoder becomes ``fpga_graph``'s op list; every tensor gets a scale calibrated
(max |x|) on the export job's calibration text, every weight an int8 per-channel
encoding, every bias an int32 at S_w * S_a, every change of scale a dyadic (m, shift),
and GELU, softmax, tanh and LayerNorm their I-BERT integer kernels' constants. The file
(``.fpga``) is a safetensors file: the integer tensors, plus the program (JSON, in the
header's ``__metadata__["program"]``); runtimes/fpga.py executes it. Floats exist here
only while the constants are computed; the program holds one float tensor, the scale
that turns the final int32 logits back into real values.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from torch import nn

from pocketbert.converters import fpga_graph
from pocketbert.converters.quantization import Int8Static
from pocketbert.converters.registry import register_exporter
from pocketbert.converters.spec import Exported, ExportSpec
from pocketbert.core.errors import UserError
from pocketbert.runtimes import fpga_kernels as K

FORMAT, VERSION = "pocketbert-fpga", 1
INT8, INT16 = 8, 16
# the width a consumer wants its input in: int8 into MACs, int16 into nonlinear units
_WANTS = {
    **dict.fromkeys(("attention", "linear", "relu", "trigram"), INT8),
    **dict.fromkeys(("gelu", "tanh", "add", "layernorm", "nonorm"), INT16),
}


def _qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def _dyadic(real: float, in_bits: int) -> tuple[int, int]:
    return K.dyadic(real, bits=min(K.MULTIPLIER_BITS, 62 - in_bits))


class _Quantizer:
    def __init__(self, graph: fpga_graph.Graph, seen: dict[str, float]) -> None:
        self.g, self.seen = graph, seen
        self.tensors: dict[str, np.ndarray] = {}
        self.scale: dict[str, float] = {}
        self.bits: dict[str, int] = {}
        self.consumers: dict[str, list[str]] = {}
        for n in graph.nodes:
            for i in n["inputs"]:
                self.consumers.setdefault(i, []).append(n["op"])

    def out_bits(self, name: str) -> int:
        wants = {_WANTS[op] for op in self.consumers.get(name, ())}
        return max(wants) if wants else 32

    def act_scale(self, name: str, bits: int) -> float:
        return max(self.seen.get(name, 0.0), 1e-8) / _qmax(bits)

    def requant(self, node: dict, real, in_bits: int, prefix: str) -> None:
        pairs = [_dyadic(float(r), in_bits) for r in np.atleast_1d(real)]
        self.tensors[f"{prefix}.m"] = np.array([p[0] for p in pairs], dtype=np.int32)
        self.tensors[f"{prefix}.shift"] = np.array([p[1] for p in pairs], dtype=np.int32)
        node.setdefault("requant", []).append(prefix)

    def node(self, n: dict) -> dict:
        op, out, w = n["op"], n["output"], self.g.weights
        q = {"op": op, "inputs": n["inputs"], "output": out}
        s_in = [self.scale.get(i) for i in n["inputs"]]
        if op == "embed":
            table = max(np.abs(w[n["word"]]).max(), np.abs(w[n["pos"]]).max())
            s = table / _qmax(INT16)
            for key in ("word", "pos"):
                self.tensors[n[key]] = np.round(w[n[key]] / s).astype(np.int16)
                q[key] = n[key]
            self._set(out, s, 32, q)
        elif op == "lookup":  # a table read by token id or by position
            bits = self.out_bits(out)
            table = w[n["table"]]
            s = max(np.abs(table).max(), 1e-8) / _qmax(bits)
            self.tensors[n["table"]] = np.round(table / s).astype(
                np.int8 if bits == 8 else np.int16
            )
            q["table"] = n["table"]
            self._set(out, s, bits, q)
        elif op == "trigram":
            self._set(out, s_in[0], self.bits[n["inputs"][0]], q)
        elif op == "nonorm":  # MobileBERT's x * gamma + beta, int8 gamma, int32 beta
            gamma = w[n["g"]]
            s_g = max(np.abs(gamma).max(), 1e-8) / 127
            self.tensors[n["g"]] = np.round(gamma / s_g).astype(np.int8)
            self.tensors[n["b"]] = np.round(w[n["b"]] / (s_in[0] * s_g)).astype(np.int32)
            q.update(g=n["g"], b=n["b"])
            s_out = self.act_scale(out, INT8)
            self.requant(q, s_in[0] * s_g / s_out, self.bits[n["inputs"][0]] + 9, out)
            self._set(out, s_out, INT8, q)
        elif op == "layernorm":
            gamma = w[n["g"]]
            s_g = max(np.abs(gamma).max(), 1e-8) / 127
            s_z = 2.0**-K.LAYERNORM_FRACTION * s_g
            self.tensors[n["g"]] = np.round(gamma / s_g).astype(np.int8)
            self.tensors[n["b"]] = np.round(w[n["b"]] / s_z).astype(np.int32)
            q.update(g=n["g"], b=n["b"], fraction=K.LAYERNORM_FRACTION)
            s_out = self.act_scale(out, INT8)
            self.requant(q, s_z / s_out, 31, out)
            self._set(out, s_out, INT8, q)
        elif op == "linear":
            weight = w[n["w"]]
            s_w = np.maximum(np.abs(weight).max(1), 1e-8) / 127
            s_acc = s_in[0] * s_w
            self.tensors[n["w"]] = np.round(weight / s_w[:, None]).astype(np.int8)
            bias = np.round(w[n["b"]] / s_acc)
            if np.abs(bias).max() >= 2**31:
                raise UserError(f"layer {out}: its bias does not fit int32 at S_w*S_a")
            self.tensors[n["b"]] = bias.astype(np.int32)
            q.update(w=n["w"], b=n["b"])
            bits = self.out_bits(out)
            if bits == 32:  # the program's output: int32, back to real values at the end
                self.tensors["output.scale"] = s_acc.astype(np.float32)
                self._set(out, 1.0, 32, q)
            else:
                s_out = self.act_scale(out, bits)
                self.requant(q, s_acc / s_out, 31, out)
                self._set(out, s_out, bits, q)
        elif op == "add":
            s_out = self.act_scale(out, INT16)
            for side, (name, s) in zip("ab", zip(n["inputs"], s_in, strict=True), strict=True):
                self.requant(q, s / s_out, self.bits[name], f"{out}.{side}")
            self._set(out, s_out, INT16, q)
        elif op == "attention":
            heads = n["heads"]
            d = self.g.weights[self._producer_weight(n["inputs"][0])].shape[0] // heads
            s_scores = s_in[0] * s_in[1] / math.sqrt(d)
            c = K.softmax_constants(s_scores)
            q.update(heads=heads, **{k: c[k] for k in ("lift", "q_ln2", "q_b", "q_c")})
            q["softmax_bits"] = K.SOFTMAX_BITS
            s_out = self.act_scale(out, INT8)
            self.requant(q, 2.0**-K.SOFTMAX_BITS * s_in[2] / s_out, 31, out)
            self._set(out, s_out, INT8, q)
        elif op == "gelu":
            c = K.gelu_constants(s_in[0])
            q.update(q_b=c["q_b"], q_c=c["q_c"], q_one=c["q_one"])
            peak = _qmax(INT16) * (abs(c["q_b"]) ** 2 + abs(c["q_c"]) + abs(c["q_one"]))
            s_out = self.act_scale(out, INT8)
            self.requant(q, c["out_scale"] / s_out, peak.bit_length() + 1, out)
            self._set(out, s_out, INT8, q)
        elif op == "tanh":
            c = K.exp_constants(2.0 * s_in[0])
            q.update(**{k: c[k] for k in ("lift", "q_ln2", "q_b", "q_c")})
            self._set(out, 2.0**-7, INT8, q)
        elif op in ("relu", "cls"):
            self._set(out, s_in[0], self.bits[n["inputs"][0]], q)
        elif op == "pool":  # a masked sum of int8 rows: int32, divided by the count at the end
            self.tensors["output.scale"] = np.array([s_in[0]], dtype=np.float32)
            self._set(out, 1.0, 32, q)
        return q

    def _producer_weight(self, name: str) -> str:
        return next(n["w"] for n in self.g.nodes if n["output"] == name)

    def _set(self, name: str, scale: float, bits: int, q: dict) -> None:
        self.scale[name], self.bits[name] = float(scale), bits
        q["bits"], q["scale"] = bits, float(scale)  # scale: documentation, unused at run time


def calibrate(graph: fpga_graph.Graph, feeds: list[dict[str, np.ndarray]]) -> dict[str, float]:
    seen: dict[str, float] = {}
    for feed in feeds:
        ids, mask = feed["input_ids"][0], feed["attention_mask"][0]
        keep = mask != 0
        fpga_graph.run_float(graph, ids[keep], mask[keep], seen)
    return seen


def program(graph: fpga_graph.Graph, seen: dict[str, float]) -> tuple[dict, dict]:
    """(the JSON program, its tensors by name)."""
    qz = _Quantizer(graph, seen)
    nodes = [qz.node(n) for n in graph.nodes]
    prog = {
        "format": FORMAT,
        "version": VERSION,
        "task": graph.task,
        "inputs": ["input_ids", "attention_mask"],
        "output": graph.output,
        "rounding": "half-up",
        "saturation": {"int8": [-128, 127], "int16": [-32768, 32767], "softmax": [0, 255]},
        "nodes": nodes,
    }
    used = {t for n in nodes for t in _tensor_names(n)} | {"output.scale"}
    return prog, {k: v for k, v in qz.tensors.items() if k in used}


def _tensor_names(node: dict):
    for key in ("word", "pos", "table", "w", "b", "g"):
        if key in node:
            yield node[key]
    for prefix in node.get("requant", ()):
        yield f"{prefix}.m"
        yield f"{prefix}.shift"


def save(prog: dict, tensors: dict[str, np.ndarray], out: Path) -> None:
    """Write the program file at a temporary name, then rename it into place."""
    from safetensors.numpy import save_file

    tmp = out.with_name(out.name + ".tmp")
    try:
        save_file(tensors, str(tmp), metadata={"program": json.dumps(prog, sort_keys=True)})
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _integer_only(model: nn.Module, spec: ExportSpec) -> tuple[dict, dict]:
    graph = fpga_graph.build(model, spec.task)
    if not spec.calibration:
        raise UserError("the fpga format calibrates its scales on text; give calibration text")
    return program(graph, calibrate(graph, spec.calibration))


@register_exporter("fpga", suffix=".fpga", runtime="fpga", handles={Int8Static: _integer_only})
def export(model: nn.Module, spec: ExportSpec, out: Path, build) -> Exported:
    """The integer program of ``model``, calibrated on ``spec.calibration``."""
    import safetensors

    prog, tensors = build(model, spec)
    save(prog, tensors, Path(out))
    return Exported(
        path=Path(out),
        dynamic_seq=True,
        tools={"program": f"{FORMAT} {VERSION}", "safetensors": safetensors.__version__},
    )
