"""The work of one op and of a whole graph: what every per-format counter returns.

Every op of an exported graph falls in one kind:

    gemm           matmul-like ops with a weight (FULLY_CONNECTED, MatMul, linear, conv)
    attention      activation x activation matmuls (QK^T, PV) and fused attention
    elementwise    add, mul, sub, div, where, cast, quantize/dequantize, ...
    normalization  layer norm and its pieces (mean, variance, rsqrt)
    activation     gelu, relu, tanh, erf, sigmoid, ...
    softmax
    gather         embedding lookups, gather, index_select
    layout         reshape, transpose, concat, slice, expand, copy (bytes only)

An op's cost is its multiply-adds (x2 = FLOPs; int8 apart), the bytes it reads and writes
(inputs, weights, outputs: the tensor sizes of the graph at the counted length), its output
elements, and, for transcendental ops (exp, erf, tanh, rsqrt, ...), the elements that go
through one. Ops that move no data (shape queries, constants, views) count as ops only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

KINDS = (
    "gemm",
    "attention",
    "elementwise",
    "normalization",
    "activation",
    "softmax",
    "gather",
    "layout",
)
MATMUL_KINDS = ("gemm", "attention")


@dataclass
class OpCost:
    """One op: its kind, its name in the format, and its work."""

    kind: str
    op: str
    flops: float = 0.0  # floating-point (2 x multiply-adds for matmuls)
    int8_ops: float = 0.0  # integer matmul ops (2 x multiply-adds)
    bytes: float = 0.0  # read + written, weights included
    weight_bytes: float = 0.0
    elements: float = 0.0  # output elements
    transcendental: float = 0.0  # elements through exp / erf / tanh / rsqrt / ...

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"op kind '{self.kind}' is not one of {KINDS}")


def _zeros() -> dict[str, float]:
    return dict.fromkeys(KINDS, 0.0)


@dataclass
class Work:
    """The work of one inference, summed per kind of op."""

    flops: dict[str, float] = field(default_factory=_zeros)
    int8_ops: dict[str, float] = field(default_factory=_zeros)
    bytes: dict[str, float] = field(default_factory=_zeros)
    elements: dict[str, float] = field(default_factory=_zeros)
    ops: dict[str, float] = field(default_factory=_zeros)
    transcendental: float = 0.0
    weight_bytes: float = 0.0
    # the roofline time of each matmul op at peak, summed: max(compute, memory) per op is
    # kept per op because a weight-bound small matmul and a compute-bound big one do not add up
    # otherwise. Units: FLOP-equivalents at the fp32 peak (int8 ops scaled by the int8 ratio at
    # estimate time), so stored as the raw parts.
    matmuls: list[tuple[float, float, float]] = field(default_factory=list)  # (flops, int8, bytes)

    @classmethod
    def of(cls, ops: Iterable[OpCost]) -> Work:
        work = cls()
        for op in ops:
            work.flops[op.kind] += op.flops
            work.int8_ops[op.kind] += op.int8_ops
            work.bytes[op.kind] += op.bytes
            work.elements[op.kind] += op.elements
            work.ops[op.kind] += 1
            work.transcendental += op.transcendental
            work.weight_bytes += op.weight_bytes
            if op.kind in MATMUL_KINDS:
                work.matmuls.append((op.flops, op.int8_ops, op.bytes))
        return work

    @property
    def gemm_flops(self) -> float:
        return sum(self.flops[k] for k in MATMUL_KINDS)

    @property
    def gemm_int8_ops(self) -> float:
        return sum(self.int8_ops[k] for k in MATMUL_KINDS)

    @property
    def other_bytes(self) -> float:
        return sum(v for k, v in self.bytes.items() if k not in MATMUL_KINDS)

    @property
    def other_elements(self) -> float:
        return sum(v for k, v in self.elements.items() if k not in MATMUL_KINDS)

    @property
    def total_ops(self) -> int:
        return int(sum(self.ops.values()))

    def summary(self) -> dict:
        """The per-kind totals an estimate's record shows (no per-op list)."""
        return {
            "gemm_gflops": round(self.gemm_flops / 1e9, 4),
            "gemm_int8_gops": round(self.gemm_int8_ops / 1e9, 4),
            "weight_mb": round(self.weight_bytes / 1e6, 3),
            "transcendental_m": round(self.transcendental / 1e6, 4),
            "ops": {k: int(v) for k, v in self.ops.items() if v},
            "mb_moved": {k: round(v / 1e6, 3) for k, v in self.bytes.items() if v},
            "elements_m": {k: round(v / 1e6, 4) for k, v in self.elements.items() if v},
        }

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Work:
        data = dict(data)
        data["matmuls"] = [tuple(m) for m in data.get("matmuls", [])]
        return cls(**data)


def elementwise(
    kind: str, op: str, ins: list[float], out: float, itemsize: float, trans: float = 0
):
    """An op that reads tensors of ``ins`` elements and writes ``out`` elements; ``trans``:
    transcendental evaluations per output element."""
    return OpCost(
        kind,
        op,
        bytes=itemsize * (sum(ins) + out),
        elements=out,
        transcendental=trans * out,
    )
