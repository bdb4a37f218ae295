"""The latency model: the counted work of a graph, the device's peak figures, a runtime's
fitted coefficients -> one time, split by what it is spent on.

    t = a * gemm_s + b * memory_s + c * transcendental_s + d * ops_us

    gemm_s           sum over matmul ops of max(fp32 FLOPs / fp32 peak + int8 ops / int8 peak,
                     bytes / sustained bandwidth): each matmul's roofline at the device's peak
    memory_s         bytes moved by every other op / sustained bandwidth
    transcendental_s elements through exp / erf / tanh / rsqrt / softmax, one cycle each on
                     every thread: count / (GHz x threads)
    ops_us           number of ops x 1 us (dispatch, thread wake-up, the runtime's own work)

``a`` is 1 / the runtime's GEMM efficiency; ``b`` how far its element-wise kernels are from
streaming at bandwidth; ``c`` cycles per transcendental element; ``d`` microseconds per op.
All four are fitted per runtime on published device figures (pocketbert/lab/fit.py). Peak
figures are for the device's ``threads``; another thread count scales them linearly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from pocketbert.core.errors import UserError
from pocketbert.lab.op_cost import MATMUL_KINDS, Work

if TYPE_CHECKING:
    from pocketbert.devices import Device

MEMORY_EFFICIENCY = 0.6  # sustained (STREAM-like) share of theoretical DRAM bandwidth
TERMS = ("gemm", "memory", "transcendental", "ops")


@dataclass(frozen=True)
class Coefficients:
    """A runtime's fitted coefficients (see the module docstring), and where they came from."""

    a: float  # 1 / GEMM efficiency
    b: float = 0.0
    c: float = 0.0
    d: float = 0.0
    source: str = ""

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.a, self.b, self.c, self.d)


@dataclass(frozen=True)
class Peaks:
    """The figures of one device the model reads, at the thread count it runs with."""

    gflops_fp32: float
    gops_int8: float
    bandwidth_gbs: float
    ghz: float
    threads: int

    @classmethod
    def of(cls, device: Device, threads: int | None = None) -> Peaks:
        fp32, bandwidth = device.peak_gflops_fp32, device.mem_bandwidth_gbs
        if not fp32 or not bandwidth:
            raise UserError(
                f"device {device.id} has no peak_gflops_fp32/mem_bandwidth_gbs in devices.yaml; "
                "an estimate needs both"
            )
        base = int(device.threads or 1)
        used = int(threads or base)
        scale = used / base
        ghz = float(device.cpu.get("ghz") or fp32 / (16.0 * base))  # 16 FLOP/cycle if unstated
        return cls(fp32 * scale, (device.peak_gops_int8 or fp32) * scale, bandwidth, ghz, used)


def features(work: Work, peaks: Peaks) -> tuple[float, float, float, float]:
    """The four terms of the model before their coefficients (seconds; ops in us)."""
    bandwidth = peaks.bandwidth_gbs * 1e9 * MEMORY_EFFICIENCY
    gemm = sum(
        max(flops / (peaks.gflops_fp32 * 1e9) + int8 / (peaks.gops_int8 * 1e9), moved / bandwidth)
        for flops, int8, moved in work.matmuls
    )
    memory = sum(v for k, v in work.bytes.items() if k not in MATMUL_KINDS) / bandwidth
    transcendental = work.transcendental / (peaks.ghz * 1e9 * peaks.threads)
    ops = work.total_ops * 1e-6
    return gemm, memory, transcendental, ops


def predict(work: Work, peaks: Peaks, coef: Coefficients) -> dict:
    """The estimate in ms, each term's share of it, and the figures it used."""
    x = features(work, peaks)
    parts = [k * v * 1e3 for k, v in zip(coef.as_tuple(), x, strict=True)]
    return {
        "estimate_ms": round(float(sum(parts)), 3),
        "parts_ms": {t: round(float(p), 3) for t, p in zip(TERMS, parts, strict=True)},
        "coefficients": {k: round(v, 4) for k, v in asdict(coef).items() if k != "source"},
        "coefficients_source": coef.source,
        "peaks": asdict(peaks),
        "memory_efficiency": MEMORY_EFFICIENCY,
        "work": work.summary(),
    }


def implied_over_peak(work: Work, peaks: Peaks, ms: float) -> bool:
    """True when ``ms`` is less than the matmuls alone would take at the device's peak."""
    return ms / 1e3 < features(work, peaks)[0]
