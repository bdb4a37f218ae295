"""The emulated transport: a roofline estimate, labelled ``method: estimated``, never a measurement.

    time = max(compute, memory)
    compute = fp32 FLOPs / (peak fp32 x eff) + int8 ops / (peak int8 x eff)
    memory  = bytes moved / (bandwidth x MEMORY_EFFICIENCY)

The work is counted from the exported graph (ONNX: matmul-like and attention nodes with
their weight shapes; TFLite: FULLY_CONNECTED / BATCH_MATMUL with the file's own shapes).
ONNX shapes of activations are not known, so a Gemm counts one token (the pooler and
classifier on [CLS]) and every other matmul all tokens: int8 files, whose pooler is a
MatMulInteger, overcount it by (seq - 1) tokens (0.7% of BERT-base at seq 128).
``eff`` is per runtime, calibrated on the MobileBERT paper's Pixel 4 figures (TFLite,
4 threads, seq 128: MobileBERT 62 ms, BERT-base 342 ms); runtimes without published phone
figures reuse it, and the record says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbert.core.errors import UserError, first_line
from pocketbert.lab.registry import Job, register_transport

if TYPE_CHECKING:  # devices imports the lab (its transports), never the other way
    from pocketbert.devices import Device

MEMORY_EFFICIENCY = 0.6  # sustained (STREAM-like) share of theoretical DRAM bandwidth


@dataclass
class Cost:
    """Work for one inference, counted from a graph."""

    flops_fp32: float = 0.0
    ops_int8: float = 0.0
    weight_bytes: float = 0.0
    activation_bytes: float = 0.0

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.activation_bytes


def bert_cost(
    layers: int, hidden: int, intermediate: int, heads: int, seq: int, labels: int = 2
) -> Cost:
    """Hand count of a BERT classifier (pooler and classifier on [CLS], as exported)."""
    head = hidden * hidden + hidden * labels
    linear = layers * seq * (4 * hidden * hidden + 2 * hidden * intermediate) + head
    attention = layers * 2 * seq * seq * hidden
    weights = layers * (4 * hidden * hidden + 2 * hidden * intermediate) + head
    acts = (  # each linear reads its input and writes its output; scores written + read
        layers * (seq * (10 * hidden + 2 * intermediate) + 2 * heads * seq * seq)
        + 3 * hidden
        + labels
    )
    return Cost(2.0 * (linear + attention), 0.0, 4.0 * weights, 4.0 * acts)


# The calibration: the MobileBERT paper (Sun et al., ACL 2020, Table 4), Pixel 4, TFLite,
# 4 threads, seq 128, fp32. FLOPs are pocketbert's own graph counts of the same shapes:
# BERT-base from bert_cost (12 x 768, 3072, 12 heads); MobileBERT counted from the ONNX
# graph of a random-weight MobileBERT of the published shape (tests/random_models.py
# "mobilebert/small", exported with pocketbert export --format onnx, seq 128).
PIXEL4_PEAK_GFLOPS = 161.6  # devices.yaml pixel4
CALIBRATION = {
    "litert": [
        ("MobileBERT (25.3M)", 5.436e9, 62.0),
        ("BERT-base (109M)", bert_cost(12, 768, 3072, 12, 128).flops_fp32, 342.0),
    ]
}


def calibrate(
    points: list[tuple[str, float, float]], peak_gflops: float
) -> tuple[float, list[dict]]:
    """One efficiency per runtime: the geometric mean over the published points, and residuals."""
    effs = [flops / (peak_gflops * 1e9 * ms / 1e3) for _, flops, ms in points]
    eff = math.exp(sum(math.log(e) for e in effs) / len(effs))
    residuals = [
        {
            "model": name,
            "published_ms": ms,
            "estimated_ms": round(flops / (peak_gflops * 1e9 * eff) * 1e3, 1),
        }
        for name, flops, ms in points
    ]
    return eff, residuals


EFFICIENCY = {
    name: calibrate(points, PIXEL4_PEAK_GFLOPS)[0] for name, points in CALIBRATION.items()
}


def efficiency(runtime: str) -> tuple[float, str]:
    if runtime in EFFICIENCY:
        return EFFICIENCY[runtime], f"{runtime}: calibrated on MobileBERT-paper Pixel 4 figures"
    reused = EFFICIENCY["litert"]
    return reused, f"{runtime}: no published phone figures; litert's Pixel 4 efficiency reused"


def roofline(cost: Cost, device: Device, runtime: str) -> dict:
    """The estimate for ``cost`` on ``device``: time, which bound dominates, and the inputs."""
    eff, source = efficiency(runtime)
    fp32 = device.peak_gflops_fp32 or 0.0
    int8 = device.peak_gops_int8 or fp32
    bandwidth = device.mem_bandwidth_gbs or 0.0
    if not fp32 or not bandwidth:
        raise UserError(
            f"device {device.id} has no peak_gflops_fp32/mem_bandwidth_gbs in devices.yaml; "
            "an estimate needs both"
        )
    compute_s = cost.flops_fp32 / (fp32 * 1e9 * eff) + cost.ops_int8 / (int8 * 1e9 * eff)
    memory_s = cost.bytes / (bandwidth * 1e9 * MEMORY_EFFICIENCY)
    notes = [source] + (
        ["int8 efficiency is not calibrated: fp32's is reused"] if cost.ops_int8 else []
    )
    return {
        "estimate_ms": round(max(compute_s, memory_s) * 1e3, 3),
        "bound": "compute" if compute_s >= memory_s else "memory",
        "compute_ms": round(compute_s * 1e3, 3),
        "memory_ms": round(memory_s * 1e3, 3),
        "efficiency": round(eff, 4),
        "memory_efficiency": MEMORY_EFFICIENCY,
        "cost": asdict(cost),
        "notes": notes,
    }


# --- counting the work in an exported graph ---------------------------------------------------

_INT8_MATMULS = {"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QLinearMatMul"}
_MATMULS = {"MatMul", "FusedMatMul", "Gemm"} | _INT8_MATMULS
_ATTENTION = {"Attention", "QAttention"}
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 10: 2, 11: 8, 16: 2}  # ONNX TensorProto dtype -> bytes


def onnx_cost(path: Path, seq: int, heads: int = 1) -> Cost:
    """Count an ONNX graph: every matmul with a constant weight, and every attention block."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name: i for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}

    def weight(name: str):
        """The constant behind a matmul input (through DequantizeLinear), or None."""
        node = producer.get(name)
        if name not in inits and node is not None and node.op_type == "DequantizeLinear":
            name = node.input[0]
        return inits.get(name)

    cost = Cost()
    widths: list[int] = []
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        w = weight(node.input[1]) if len(node.input) > 1 else None
        if node.op_type in _MATMULS and w is not None and len(w.dims) == 2:
            k, n = (
                w.dims
                if not (node.op_type == "Gemm" and attrs.get("transB") and attrs["transB"].i)
                else w.dims[::-1]
            )
            m = 1 if node.op_type == "Gemm" else seq  # Gemm: the pooler/classifier on [CLS]
        elif node.op_type in _ATTENTION and w is not None:
            k, n = w.dims
            m, heads = seq, attrs["num_heads"].i if "num_heads" in attrs else 1
            cost.flops_fp32 += 2.0 * 2 * seq * seq * (n // 3)  # QK^T and PV
            cost.activation_bytes += 4.0 * 2 * heads * seq * seq
        elif node.op_type == "Softmax" and widths:
            d = max(set(widths), key=widths.count)  # unfused attention: hidden = commonest width
            cost.flops_fp32 += 2.0 * 2 * seq * seq * d
            cost.activation_bytes += 4.0 * 2 * heads * seq * seq  # scores: [heads, seq, seq]
            continue
        else:
            continue
        widths.append(int(k))
        int8 = (
            node.op_type in _INT8_MATMULS or node.op_type == "QAttention" or w.data_type in (2, 3)
        )
        work = 2.0 * m * k * n
        if int8:
            cost.ops_int8 += work
        else:
            cost.flops_fp32 += work
        cost.weight_bytes += k * n * _ITEMSIZE.get(w.data_type, 4)
        cost.activation_bytes += 4.0 * m * (k + n)
    return cost


def tflite_cost(path: Path) -> Cost:
    """Count a (static-shape) TFLite file from its own op list and tensor shapes."""
    from pocketbert.runtimes.litert import _interpreter_class

    it = _interpreter_class()(model_path=str(path))
    it.allocate_tensors()
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    cost = Cost()
    for op in it._get_ops_details():
        ins = [tensors[i] for i in op["inputs"] if i >= 0]
        if op["op_name"] == "FULLY_CONNECTED" and len(ins) >= 2:
            x, w = ins[0], ins[1]
            n, k = (int(d) for d in w["shape"])
            m = int(x["shape"].prod()) // k
            work = 2.0 * m * k * n
            if w["dtype"].__name__ in ("int8", "uint8"):
                cost.ops_int8 += work
            else:
                cost.flops_fp32 += work
            cost.weight_bytes += k * n * w["dtype"](0).itemsize
            cost.activation_bytes += 4.0 * m * (k + n)
        elif op["op_name"] == "BATCH_MATMUL" and len(ins) == 2:
            a, b = (tuple(int(d) for d in t["shape"]) for t in ins)
            batch, rows, inner = math.prod(a[:-2]), a[-2], a[-1]
            cols = b[-1] if b[-2] == inner else b[-2]
            cost.flops_fp32 += 2.0 * batch * rows * inner * cols
            cost.activation_bytes += 4.0 * batch * (rows * inner + inner * cols + rows * cols)
    return cost


COUNTERS = {
    "onnx": lambda path, seq, heads: onnx_cost(path, seq, heads),
    "tflite": lambda path, seq, heads: tflite_cost(path),
}


def bundle_cost(bundle: Path, seq: int | None) -> tuple[Cost, dict]:
    """The work of one inference of a bundle (or a bare model file), and the facts around it."""
    from pocketbert.profiler.target import open_target

    target = open_target(bundle)
    fmt = target.manifest["format"]
    if fmt not in COUNTERS:
        raise UserError(
            f"estimates count work from ONNX or TFLite graphs; this bundle is {fmt}. "
            "Estimate an onnx or tflite bundle of the same model"
        )
    if target.foreign:
        if fmt == "onnx" and seq is None:
            raise UserError(
                f"'{target.model_path.name}' is a bare ONNX file with no stated length; "
                "give --seq-len to estimate it"
            )
        effective = seq
    else:
        max_len = int(target.manifest["max_seq_len"])
        effective = (seq or max_len) if target.manifest.get("dynamic_seq", True) else max_len
    facts = {
        **target.manifest,
        "effective_seq_len": effective,
        "file_bytes": target.model_path.stat().st_size,
    }
    heads = int(target.manifest.get("shape", {}).get("heads") or 1)
    try:
        return COUNTERS[fmt](target.model_path, effective, heads), facts
    except (UserError, KeyError, IndexError, TypeError, AttributeError):
        raise  # our counting code's own failures are bugs
    except Exception as exc:
        if not target.foreign:
            raise
        raise UserError(
            f"'{target.model_path.name}' cannot be read as a {fmt} graph ({first_line(exc)}); "
            f"give a working {fmt} file"
        ) from exc


@register_transport("emulated")
def run(device: Device, job: Job) -> dict:
    cost, manifest = bundle_cost(Path(job.target(str(job.bundle))), job.seq_len)
    estimate = roofline(cost, device, manifest.get("runtime", ""))
    seq = job.seq_len or manifest["max_seq_len"] or manifest["effective_seq_len"]
    return {
        "status": "ok",
        "method": "estimated",
        "source": manifest["source"],
        "format": manifest["format"],
        "precision": manifest.get("precision"),
        "runtime": manifest.get("runtime"),
        "threads": job.threads or device.threads,
        "seq_len": seq,
        "effective_seq_len": manifest["effective_seq_len"],
        "latency_ms": {"estimate": estimate.pop("estimate_ms")},
        "roofline": estimate,
        "memory": {"file_mb": round(manifest["file_bytes"] / 1e6, 3)},
        "warnings": ["--texts is measured, never estimated: no figure on the sentences"]
        if job.texts
        else [],
    }
