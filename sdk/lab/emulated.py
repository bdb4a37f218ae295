"""The emulated transport: an estimate from every op of the exported graph, labelled
``method: estimated``, never a measurement.

The work is counted per op from the bundle's own file (pocketbert/lab/op_count.py: ONNX,
TFLite and ExecuTorch), turned into time by the cost model (pocketbert/lab/cost_model.py)
with the device's peak figures from devices.yaml and the runtime's coefficients fitted on
published device figures (pocketbert/lab/fit.py). A runtime with no published figures
borrows litert's, and the record says so.

``roofline`` is the GEMM-only form for callers that have only FLOPs and weight bytes (the
student-size search): max(compute, memory) with the fitted GEMM efficiency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbert.lab.cost_model import MEMORY_EFFICIENCY, Coefficients, Peaks, predict
from pocketbert.lab.fit import fitted
from pocketbert.lab.op_cost import MATMUL_KINDS, Work
from pocketbert.lab.op_count import COUNTERS, bundle_work
from pocketbert.lab.registry import Job, register_transport

if TYPE_CHECKING:  # devices imports the lab (its transports), never the other way
    from pocketbert.devices import Device

__all__ = ["COUNTERS", "EFFICIENCY", "Cost", "bert_cost", "bundle_cost", "coefficients", "roofline"]
FALLBACK_RUNTIME = "litert"


@dataclass
class Cost:
    """The matmul work of one inference (the GEMM-only view of a :class:`Work`)."""

    flops_fp32: float = 0.0
    ops_int8: float = 0.0
    weight_bytes: float = 0.0
    activation_bytes: float = 0.0

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.activation_bytes

    @classmethod
    def of(cls, work: Work) -> Cost:
        moved = sum(work.bytes[k] for k in MATMUL_KINDS)
        return cls(
            work.gemm_flops, work.gemm_int8_ops, work.weight_bytes, moved - work.weight_bytes
        )


def bert_cost(
    layers: int, hidden: int, intermediate: int, heads: int, seq: int, labels: int = 2
) -> Cost:
    """Hand count of a BERT classifier's matmuls (pooler and classifier on [CLS], as exported).

    Each linear reads its input and weight and writes its output (biases are separate adds,
    except the classifier's Gemm); QK^T reads Q and K and writes the scores
    [heads, seq, seq], PV reads the probabilities and V and writes the context."""
    head = hidden * hidden + hidden * labels
    linear = layers * seq * (4 * hidden * hidden + 2 * hidden * intermediate) + head
    attention = layers * 2 * seq * seq * hidden
    weights = layers * (4 * hidden * hidden + 2 * hidden * intermediate) + head + labels
    acts = (  # the pooler's bias reaches its Gemm as a computed input, not as an initializer
        layers * (seq * (10 * hidden + 2 * intermediate) + 4 * seq * hidden + 2 * heads * seq * seq)
        + 4 * hidden
        + labels
    )
    return Cost(2.0 * (linear + attention), 0.0, 4.0 * weights, 4.0 * acts)


def coefficients(runtime: str) -> Coefficients:
    """The runtime's fitted coefficients, or litert's (said so in their source)."""
    coefs = fitted()
    if runtime in coefs:
        return coefs[runtime]
    base = coefs[FALLBACK_RUNTIME]
    return Coefficients(
        *base.as_tuple(),
        source=f"{runtime}: no published device figures; {base.source} reused",
    )


class _Efficiency(dict):
    """runtime -> fitted GEMM efficiency (1 / a); a runtime without figures gets litert's."""

    def __missing__(self, runtime: str) -> float:
        return 1.0 / coefficients(runtime).a


EFFICIENCY: dict[str, float] = _Efficiency()


def roofline(cost: Cost, device: Device, runtime: str) -> dict:
    """The GEMM-only estimate for ``cost`` on ``device``: time, which bound dominates."""
    eff = EFFICIENCY[runtime]
    peaks = Peaks.of(device)
    compute_s = cost.flops_fp32 / (peaks.gflops_fp32 * 1e9 * eff) + cost.ops_int8 / (
        peaks.gops_int8 * 1e9 * eff
    )
    memory_s = cost.bytes / (peaks.bandwidth_gbs * 1e9 * MEMORY_EFFICIENCY)
    return {
        "estimate_ms": round(max(compute_s, memory_s) * 1e3, 3),
        "bound": "compute" if compute_s >= memory_s else "memory",
        "compute_ms": round(compute_s * 1e3, 3),
        "memory_ms": round(memory_s * 1e3, 3),
        "efficiency": round(eff, 4),
        "memory_efficiency": MEMORY_EFFICIENCY,
        "cost": asdict(cost),
        "notes": [coefficients(runtime).source],
    }


def bundle_cost(bundle: Path, seq: int | None) -> tuple[Cost, dict]:
    """The matmul work of one inference of a bundle, and the facts around it."""
    work, facts = bundle_work(bundle, seq)
    return Cost.of(work), facts


def estimate(work: Work, device: Device, runtime: str, threads: int | None = None) -> dict:
    """The estimate of ``work`` on ``device`` under ``runtime``, with every figure it used."""
    return predict(work, Peaks.of(device, threads), coefficients(runtime))


@register_transport("emulated")
def run(device: Device, job: Job) -> dict:
    work, manifest = bundle_work(Path(job.target(str(job.bundle))), job.seq_len)
    runtime = manifest.get("runtime", "") or FALLBACK_RUNTIME
    model = estimate(work, device, runtime, job.threads)
    model["cost"] = asdict(Cost.of(work))
    model["notes"] = [model["coefficients_source"], *manifest.get("count_notes", [])]
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
        "latency_ms": {"estimate": model.pop("estimate_ms")},
        "roofline": model,
        "memory": {"file_mb": round(manifest["file_bytes"] / 1e6, 3)},
        "warnings": ["--texts is measured, never estimated: no figure on the sentences"]
        if job.texts
        else [],
    }
