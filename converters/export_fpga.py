"""FPGA integer program: int8 weights, integer activations, integer-only nonlinearities.

The encoder becomes ``fpga_graph``'s op list; every tensor gets a width (int8 into the
MACs, int16 into the nonlinear units and LayerNorm outputs, a 24-bit residual stream)
and a scale calibrated on the export job's calibration text; every weight an int8
per-channel encoding, every bias an integer at S_w * S_a, every change of scale a
dyadic (m, shift), and GELU, softmax, tanh and LayerNorm their I-BERT integer kernels'
constants. The file (``.fpga``) is a safetensors file: the integer tensors, plus the
program (JSON, in the header's ``__metadata__["program"]``); runtimes/fpga.py executes
it. Floats exist here only while the constants are computed; the program holds one
float tensor, the scale that turns the final accumulator back into real values.
Int8Static's ``dynamic_outliers`` has no meaning here: every layer is static.
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
from pocketbert.runtimes.fpga import node_tensors

FORMAT, VERSION = "pocketbert-fpga", 1
INT8, INT16, INT24 = 8, 16, 24
# the width a consumer wants its input in: int8 into MACs, int16 into nonlinear units
_WANTS = {
    **dict.fromkeys(("attention", "linear", "trigram"), INT8),
    **dict.fromkeys(("gelu", "tanh", "relu"), INT16),
    # the residual stream: 24 bits keep the ordinary channels resolved beside MiniLM's
    # outlier ones (at int16 its LayerNorm outputs lose 0.007 of cosine per layer)
    **dict.fromkeys(("add", "layernorm", "nonorm"), INT24),
}


def _qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def _fit(x, dtype) -> np.ndarray:
    """``round(x)`` as ``dtype``; a value outside it is a bug here, never a wrap-around."""
    q = np.round(np.asarray(x, dtype=np.float64))
    info = np.iinfo(dtype)
    if q.size and (q.min() < info.min or q.max() > info.max):
        raise AssertionError(f"a quantized tensor leaves {np.dtype(dtype)}: [{q.min()}, {q.max()}]")
    return q.astype(dtype)


def _dyadic(real: float, in_bits: int) -> tuple[int, int]:
    return K.dyadic(real, bits=min(K.MULTIPLIER_BITS, 62 - in_bits))


class _Quantizer:
    def __init__(self, graph: fpga_graph.Graph, seen: dict[str, float], samples: dict) -> None:
        self.g, self.seen, self.samples = graph, seen, samples
        self.tensors: dict[str, np.ndarray] = {}
        self.scale: dict[str, float] = {}
        self.bits: dict[str, int] = {}
        self.consumers: dict[str, list[str]] = {}
        for n in graph.nodes:
            for i in n["inputs"]:
                self.consumers.setdefault(i, []).append(n["op"])

    def out_bits(self, name: str) -> int:
        wants = {_WANTS[op] for op in self.consumers.get(name, ()) if op in _WANTS}
        return max(wants) if wants else 32

    def act_scale(self, name: str, bits: int) -> float:
        """int16: max |x| / 32767. int8: the clip of max |x| (1 down to 0.2 of it) whose
        rounding and clipping error over the calibration samples is least."""
        peak = max(self.seen.get(name, 0.0), 1e-8)
        sample = self.samples.get(name)
        if bits != INT8 or sample is None:
            return peak / _qmax(bits)
        best, best_err = peak, math.inf
        for clip in peak * np.linspace(1.0, 0.2, 33):
            s = clip / 127
            err = float(np.mean((np.clip(np.round(sample / s), -128, 127) * s - sample) ** 2))
            if err < best_err:
                best, best_err = clip, err
        return best / 127

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
                self.tensors[n[key]] = _fit(w[n[key]] / s, np.int16)
                q[key] = n[key]
            self._set(out, s, 32, q)
        elif op == "lookup":  # a table read by token id or by position
            bits = INT8 if self.out_bits(out) == INT8 else INT16  # a table is 8 or 16 bits
            table = w[n["table"]]
            s = max(np.abs(table).max(), 1e-8) / _qmax(bits)
            self.tensors[n["table"]] = _fit(table / s, np.int8 if bits == 8 else np.int16)
            q["table"] = n["table"]
            self._set(out, s, bits, q)
        elif op == "trigram":
            self._set(out, s_in[0], self.bits[n["inputs"][0]], q)
        elif op == "nonorm":  # MobileBERT's x * gamma + beta: int16 gamma, int64 beta (its
            # input is the 24-bit residual stream, so beta at s_in * s_g needs up to ~40 bits)
            gamma = w[n["g"]]
            s_g = max(np.abs(gamma).max(), 1e-8) / _qmax(INT16)
            self.tensors[n["g"]] = _fit(gamma / s_g, np.int16)
            self.tensors[n["b"]] = _fit(w[n["b"]] / (s_in[0] * s_g), np.int64)
            q.update(g=n["g"], b=n["b"])
            bits = INT16 if self.out_bits(out) in (INT16, INT24) else INT8
            s_out = self.act_scale(out, bits)
            self.requant(q, s_in[0] * s_g / s_out, self.bits[n["inputs"][0]] + 17, out)
            self._set(out, s_out, bits, q)
        elif op == "layernorm":
            gamma = w[n["g"]]  # int16: an int8 gamma costs MiniLM 0.006 of cosine per norm
            s_g = max(np.abs(gamma).max(), 1e-8) / _qmax(INT16)
            s_z = 2.0**-K.LAYERNORM_FRACTION * s_g
            self.tensors[n["g"]] = _fit(gamma / s_g, np.int16)
            self.tensors[n["b"]] = _fit(w[n["b"]] / s_z, np.int32)
            q.update(g=n["g"], b=n["b"], fraction=K.LAYERNORM_FRACTION)
            bits = INT16 if self.out_bits(out) in (INT16, INT24) else INT8
            s_out = self.act_scale(out, bits)
            self.requant(q, s_z / s_out, 40, out)  # |z| < 2**23 (n < 2**16), gamma 2**15
            self._set(out, s_out, bits, q)
        elif op == "linear":
            weight = w[n["w"]]
            s_w = np.maximum(np.abs(weight).max(1), 1e-8) / 127
            s_acc = s_in[0] * s_w
            self.tensors[n["w"]] = _fit(weight / s_w[:, None], np.int8)
            # int8 inputs: int32 accumulators. int16 inputs (the FFN down-projections, read
            # from GELU/ReLU, whose int8 outputs cost MiniLM 0.02 of cosine per layer):
            # 48-bit accumulators, as a DSP48E2's, and a 48-bit bias.
            acc_bits = 32 if self.bits[n["inputs"][0]] == INT8 else 48
            bias = np.round(w[n["b"]] / s_acc)
            if np.abs(bias).max() >= 2.0 ** (acc_bits - 1):
                raise UserError(f"layer {out}: its bias does not fit int{acc_bits} at S_w*S_a")
            self.tensors[n["b"]] = _fit(bias, np.int32 if acc_bits == 32 else np.int64)
            q.update(w=n["w"], b=n["b"], acc_bits=acc_bits)
            bits = self.out_bits(out)
            if bits == 32:  # the program's output: int32, back to real values at the end
                self.tensors["output.scale"] = s_acc.astype(np.float32)
                self._set(out, 1.0, 32, q)
            else:
                s_out = self.act_scale(out, bits)
                self.requant(q, s_acc / s_out, acc_bits - 1, out)
                self._set(out, s_out, bits, q)
        elif op == "add":
            s_out = self.act_scale(out, INT24)
            for side, (name, s) in zip("ab", zip(n["inputs"], s_in, strict=True), strict=True):
                self.requant(q, s / s_out, self.bits[name], f"{out}.{side}")
            self._set(out, s_out, INT24, q)
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
            s_out = self.act_scale(out, INT16)
            self.requant(q, c["out_scale"] / s_out, peak.bit_length() + 1, out)
            self._set(out, s_out, INT16, q)
        elif op == "tanh":
            c = K.exp_constants(2.0 * s_in[0])
            q.update(**{k: c[k] for k in ("lift", "q_ln2", "q_b", "q_c")})
            self._set(out, 2.0**-7, INT8, q)
        elif op == "requant":  # an int8 copy of an int16 tensor, for the MACs that read it
            s_out = self.act_scale(out, INT8)
            self.requant(q, s_in[0] / s_out, self.bits[n["inputs"][0]], out)
            self._set(out, s_out, INT8, q)
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


SAMPLES_PER_TEXT = 1024  # values of each tensor kept per calibration text (seeded)


def calibrate(graph: fpga_graph.Graph, feeds: list[dict[str, np.ndarray]]) -> tuple[dict, dict]:
    """(max |x| of every tensor, a seeded sample of each one's values)."""
    seen: dict[str, float] = {}
    parts: dict[str, list] = {}
    rng = np.random.default_rng(0)
    for feed in feeds:
        ids, mask = feed["input_ids"][0], feed["attention_mask"][0]
        keep = mask != 0
        trace: dict = {}
        fpga_graph.run_float(graph, ids[keep], mask[keep], seen, trace)
        for name, value in trace.items():
            flat = value.ravel()
            pick = rng.integers(0, flat.size, min(SAMPLES_PER_TEXT, flat.size))
            parts.setdefault(name, []).append(flat[pick].astype(np.float32))
    return seen, {k: np.concatenate(v) for k, v in parts.items()}


def split_widths(graph: fpga_graph.Graph) -> fpga_graph.Graph:
    """A tensor read both by int16 units (a residual add) and by int8 MACs stays int16,
    and the MACs read an int8 copy of it (a ``requant`` op): LayerNorm outputs carry
    outlier channels that the residual stream needs and an int8 matmul input would clip."""
    wants: dict[str, set] = {}
    for n in graph.nodes:
        for i in n["inputs"]:
            wants.setdefault(i, set()).add(_WANTS.get(n["op"]))
    mixed = {t for t, w in wants.items() if INT8 in w and w & {INT16, INT24}}
    nodes = []
    for n in graph.nodes:
        if any(i in mixed for i in n["inputs"]) and _WANTS.get(n["op"]) == INT8:
            n = {**n, "inputs": [f"{i}.i8" if i in mixed else i for i in n["inputs"]]}
        nodes.append(n)
        if n["output"] in mixed:
            nodes.append({"op": "requant", "inputs": [n["output"]], "output": f"{n['output']}.i8"})
    return fpga_graph.Graph(nodes, graph.weights, graph.output, graph.task)


def program(graph: fpga_graph.Graph, seen: dict[str, float], samples: dict) -> tuple[dict, dict]:
    """(the JSON program, its tensors by name)."""
    qz = _Quantizer(graph, seen, samples)
    nodes = [qz.node(n) for n in graph.nodes]
    prog = {
        "format": FORMAT,
        "version": VERSION,
        "task": graph.task,
        "inputs": ["input_ids", "attention_mask"],
        "output": graph.output,
        "rounding": "half-up",
        "saturation": {
            "int8": [-128, 127],
            "int16": [-32768, 32767],
            "int24": [-(2**23), 2**23 - 1],
            "softmax": [0, 255],
        },
        "accumulators": {"int8 inputs": 32, "int16 inputs": 48},
        "nodes": nodes,
    }
    used = {t for n in nodes for t in node_tensors(n)} | {"output.scale"}
    return prog, {k: v for k, v in qz.tensors.items() if k in used}


def save(prog: dict, tensors: dict[str, np.ndarray], out: Path) -> None:
    """Write the program file at a temporary name, then rename it into place."""
    from safetensors.numpy import save_file

    tmp = out.with_name(out.name + ".tmp")
    try:
        save_file(tensors, str(tmp), metadata={"program": json.dumps(prog, sort_keys=True)})
        tmp.chmod(0o644)  # as the bundle's other files (safetensors writes 0600)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _integer_only(model: nn.Module, spec: ExportSpec) -> tuple[dict, dict]:
    graph = fpga_graph.build(model, spec.task)
    if not spec.calibration:
        raise UserError("the fpga format calibrates its scales on text; give calibration text")
    graph = split_widths(graph)
    return program(graph, *calibrate(graph, spec.calibration))


def _rewrites(config, module: nn.Module) -> dict:
    """MobileBERT's residual NoNorms stay NoNorms: the program's integer NoNorm works on a
    16-bit copy of the residual, and the carried streams' scales and shifts
    (converters/no_norm_carry.py) would push the Linears' int32 biases out of range."""
    if any(type(m).__name__ == "NoNorm" for m in module.modules()):
        return {"carry_no_norms": False}
    return {}


@register_exporter(
    "fpga",
    suffix=".fpga",
    runtime="fpga",
    handles={Int8Static: _integer_only},
    rewrites=_rewrites,
)
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
