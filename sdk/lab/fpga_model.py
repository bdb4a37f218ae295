"""The fpga-model transport: a cycle and resource model of a systolic-array accelerator for
``kind: fpga`` devices, run on an fpga bundle's integer program. It is an estimate
(``method: estimated``), never a measurement.

The accelerator, from the device's ``fpga:`` block in devices.yaml:

- a **weight-stationary systolic array** of R x C int8 PEs: ``array: [R, C]`` if given,
  else the largest square that ``(dsps - vector_lanes) x macs_per_dsp`` PEs allow
  (``macs_per_dsp``: 1, 1.75 or 2, the int8 MACs one DSP does per cycle with packing);
- a **vector unit** of ``vector_lanes`` lanes (default 64, one DSP each) for the integer
  GELU, softmax, LayerNorm, tanh, residual adds and requantizations;
- an **on-chip buffer** of ``bram36`` x 4,608 + ``uram`` x 36,864 bytes;
- **DDR** at ``ddr_gbs`` GB/s (theoretical) x DDR_EFFICIENCY, at ``clock_mhz``.

Per op of the program (``fpga_layers``): GEMM cycles in SCALE-Sim's analytical form for the
weight-stationary dataflow (K on the rows, N on the columns, M streamed), per fold
``2R + C + M - 2`` (R cycles to load the weights, M to stream, R + C - 2 to fill and
drain) over ``ceil(K/R) x ceil(N/C)`` folds. That is ``weight_buffers: 1``, SCALE-Sim's own
form (tests check it against SCALE-Sim's demand matrices). ``weight_buffers: 2`` (the
default; TPU-style double-buffered weights in each PE) loads the next fold's weights while
the current one streams: ``R + folds x max(M, R) + R + C - 2``. Vector cycles:
element-passes / lanes, plus ISQRT_CYCLES per LayerNorm row. DDR: each op's weights
(unless the whole model is resident on chip) and its embedding rows, double-buffered so
that it overlaps compute: an op takes max(compute, DDR), and that names its bound.

Fit: each op's live activations + its temporaries + two R x C weight tiles must fit on
chip (else a UserError names the op, the bytes and what the board has); the model is
resident when all its weights fit beside the largest op's working set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbert.core.errors import UserError
from pocketbert.lab.fpga_layers import Layer, program_layers
from pocketbert.lab.registry import Job, register_transport

if TYPE_CHECKING:  # devices imports the lab (its transports), never the other way
    from pocketbert.devices import Device

REQUIRED = ("dsps", "macs_per_dsp", "clock_mhz", "bram36", "uram", "ddr_gbs")
OPTIONAL = ("array", "vector_lanes", "weight_buffers", "luts")
MACS_PER_DSP = (1, 1.75, 2)
BRAM36_BYTES = 36 * 1024 // 8  # one 36 Kb block RAM
URAM_BYTES = 288 * 1024 // 8  # one 288 Kb UltraRAM
DDR_EFFICIENCY = 0.7  # assumed sustained share of the theoretical DDR figure (not fitted)
ISQRT_CYCLES = 16  # per LayerNorm row: Newton steps of a 32-bit integer square root
VECTOR_LANES = 64


def check_fpga_block(block: Any) -> str | None:
    """What is wrong with a device's ``fpga:`` block (a phrase for the catalog's error), or None."""
    if not isinstance(block, dict) or not block:
        return f"is missing; an fpga device needs {', '.join(REQUIRED)}"
    missing = [k for k in REQUIRED if k not in block]
    if missing:
        return f"lacks {', '.join(missing)}; an fpga device needs {', '.join(REQUIRED)}"
    unknown = sorted(set(block) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        return f"has '{unknown[0]}', which is not a field; give: {', '.join(REQUIRED + OPTIONAL)}"
    for key in ("dsps", "bram36", "uram", "vector_lanes"):
        value = block.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"'{key}' is {value!r}; give a whole number of blocks"
    for key in ("clock_mhz", "ddr_gbs"):
        value = block[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return f"'{key}' is {value!r}; give a positive number"
    if block["macs_per_dsp"] not in MACS_PER_DSP:
        return f"'macs_per_dsp' is {block['macs_per_dsp']!r}; give one of 1, 1.75, 2"
    if block.get("weight_buffers", 2) not in (1, 2):
        return f"'weight_buffers' is {block['weight_buffers']!r}; give 1 or 2"
    array = block.get("array")
    if array is not None and not (
        isinstance(array, list)
        and len(array) == 2
        and all(isinstance(a, int) and a > 0 for a in array)
    ):
        return f"'array' is {array!r}; give [rows, columns] of PEs"
    return None


@dataclass(frozen=True)
class Accelerator:
    device: str
    dsps: int
    macs_per_dsp: float
    clock_mhz: float
    bram36: int
    uram: int
    ddr_gbs: float
    rows: int
    cols: int
    vector_lanes: int = VECTOR_LANES
    weight_buffers: int = 2

    @classmethod
    def from_device(cls, device: Device) -> Accelerator:
        problem = check_fpga_block(device.fpga)
        if problem:
            raise UserError(f"device {device.id}: its devices.yaml 'fpga' block {problem}")
        b = device.fpga
        lanes = int(b.get("vector_lanes", VECTOR_LANES))
        if b.get("array"):
            rows, cols = b["array"]
        else:
            side = math.isqrt(int((b["dsps"] - lanes) * b["macs_per_dsp"]))
            rows = cols = side
        acc = cls(
            device.id, b["dsps"], b["macs_per_dsp"], float(b["clock_mhz"]), b["bram36"],
            b["uram"], float(b["ddr_gbs"]), rows, cols, lanes, int(b.get("weight_buffers", 2)),
        )  # fmt: skip
        if acc.array_dsps + lanes > acc.dsps:
            raise UserError(
                f"device {device.id}: an array of {rows} x {cols} PEs needs {acc.array_dsps} DSPs "
                f"at {acc.macs_per_dsp:g} MACs each, plus {lanes} for the vector unit; the "
                f"board has {acc.dsps}: give a smaller 'array'"
            )
        return acc

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def array_dsps(self) -> int:
        return math.ceil(self.pes / self.macs_per_dsp)

    @property
    def on_chip_bytes(self) -> int:
        return self.bram36 * BRAM36_BYTES + self.uram * URAM_BYTES


def gemm_cycles(acc: Accelerator, batch: int, m: int, k: int, n: int) -> int:
    """Cycles of ``batch`` (M x K) @ (K x N) GEMMs on the weight-stationary array."""
    r, c = acc.rows, acc.cols
    folds = batch * math.ceil(k / r) * math.ceil(n / c)
    if acc.weight_buffers == 1:  # SCALE-Sim: each fold loads, streams, fills and drains alone
        return folds * (2 * r + c + m - 2)
    return r + folds * max(m, r) + r + c - 2


def _working_set(acc: Accelerator, layer: Layer) -> int:
    tiles = 2 * acc.pes if layer.weight_bytes and layer.gemms else 0
    return layer.live_bytes + layer.scratch_bytes + tiles


def check_fit(acc: Accelerator, layers: list[Layer]) -> None:
    """Every op's working set fits on chip, or a UserError says which does not."""
    for layer in layers:
        need = _working_set(acc, layer)
        if need > acc.on_chip_bytes:
            raise UserError(
                f"layer {layer.name} ({layer.op}) needs {need:,} bytes on chip (its live "
                f"activations, temporaries and two weight tiles); device {acc.device} has "
                f"{acc.on_chip_bytes:,} ({acc.bram36} BRAM36 + {acc.uram} URAM): give a "
                "shorter --seq-len or a smaller model"
            )


def estimate(acc: Accelerator, layers: list[Layer]) -> dict:
    """Latency, bounds, utilisation and the per-layer table of one inference."""
    check_fit(acc, layers)
    hz = acc.clock_mhz * 1e6
    ddr = acc.ddr_gbs * 1e9 * DDR_EFFICIENCY
    weights = sum(layer.weight_bytes for layer in layers)
    peak = max(_working_set(acc, layer) for layer in layers)
    acts = max(layer.live_bytes + layer.scratch_bytes for layer in layers)
    resident = weights + acts <= acc.on_chip_bytes
    rows, total_s, busy_cycles = [], 0.0, 0
    for layer in layers:
        gemm = sum(gemm_cycles(acc, *g) for g in layer.gemms)
        vector = math.ceil(layer.vector_elems / acc.vector_lanes)
        vector += layer.norm_rows * ISQRT_CYCLES
        ddr_bytes = layer.table_bytes + (0 if resident else layer.weight_bytes)
        compute_s, ddr_s = (gemm + vector) / hz, ddr_bytes / ddr
        seconds = max(compute_s, ddr_s)
        if ddr_s > compute_s:
            bound = "ddr"
        else:
            bound = "array" if gemm and gemm >= vector else ("vector" if vector else "-")
        total_s += seconds
        busy_cycles += gemm
        rows.append(
            {
                "layer": layer.name,
                "op": layer.op,
                "macs": layer.macs,
                "gemm_cycles": gemm,
                "vector_cycles": vector,
                "ddr_bytes": ddr_bytes,
                "on_chip_bytes": _working_set(acc, layer),
                "ms": round(seconds * 1e3, 5),
                "bound": bound,
            }
        )
    macs = sum(layer.macs for layer in layers)
    weight_store = weights if resident else 2 * acc.pes
    uram_used = min(acc.uram, math.ceil(weight_store / URAM_BYTES)) if acc.uram else 0
    spill = max(0, weight_store - uram_used * URAM_BYTES)
    act = acts + spill
    bram_used = math.ceil(act / BRAM36_BYTES)
    if bram_used > acc.bram36:  # activations overflow into free URAM blocks
        uram_used = min(
            acc.uram, uram_used + math.ceil((bram_used - acc.bram36) * BRAM36_BYTES / URAM_BYTES)
        )
        bram_used = acc.bram36
    ms = total_s * 1e3
    by_bound: dict[str, float] = {}
    for r in rows:
        if r["bound"] != "-":  # an op with no work (cls)
            by_bound[r["bound"]] = by_bound.get(r["bound"], 0.0) + r["ms"]
    return {
        "estimate_ms": round(ms, 4),
        "throughput_per_s": round(1e3 / ms, 2),  # one sentence at a time, ops in sequence
        "bound": max(by_bound, key=by_bound.get),
        "ms_by_bound": {k: round(v, 4) for k, v in by_bound.items()},
        "accelerator": {
            "array": [acc.rows, acc.cols],
            "pes": acc.pes,
            "macs_per_dsp": acc.macs_per_dsp,
            "clock_mhz": acc.clock_mhz,
            "vector_lanes": acc.vector_lanes,
            "weight_buffers": acc.weight_buffers,
            "on_chip_bytes": acc.on_chip_bytes,
            "ddr_gbs": acc.ddr_gbs,
            "ddr_efficiency": DDR_EFFICIENCY,
        },
        "macs": macs,
        "weight_bytes": weights,
        "weights_resident": resident,
        "peak_on_chip_bytes": peak,
        "utilisation": {
            "dsp": round((acc.array_dsps + acc.vector_lanes) / acc.dsps, 4),
            "bram36": round(bram_used / acc.bram36, 4) if acc.bram36 else None,
            "uram": round(uram_used / acc.uram, 4) if acc.uram else None,
            "array_busy": round(busy_cycles / (total_s * hz), 4),  # share of time in GEMMs
            "mac_efficiency": round(macs / (acc.pes * total_s * hz), 4),  # useful MACs / peak
        },
        "layers": rows,
    }


def bundle_layers(bundle: Path, seq: int | None) -> tuple[list[Layer], dict, int]:
    """The layers of an fpga bundle's program at ``seq`` tokens (default: its max length),
    its manifest (with ``file_bytes``) and the length used."""
    from pocketbert.profiler.target import open_target
    from pocketbert.runtimes.fpga import read_program

    target = open_target(bundle)
    manifest = target.manifest
    if manifest["format"] != "fpga":
        raise UserError(
            f"the fpga model estimates integer programs; this bundle is {manifest['format']}: "
            "export the model with --format fpga --precision int8-static"
        )
    program = read_program(target.model_path)
    longest = max(
        (len(t) for k, t in program.t.items() if k.endswith("pos") or k.endswith("pos.t")),
        default=0,
    )
    seq = seq or manifest.get("max_seq_len") or longest
    if longest and seq > longest:
        raise UserError(f"--seq-len {seq} is longer than this program's {longest} positions")
    shapes = {k: tuple(v.shape) for k, v in program.t.items()}
    sizes = {k: int(v.nbytes) for k, v in program.t.items()}
    manifest = {**manifest, "file_bytes": target.model_path.stat().st_size}
    return program_layers(program.nodes, shapes, sizes, seq), manifest, seq


@register_transport("fpga-model")
def run(device: Device, job: Job) -> dict:
    layers, manifest, seq = bundle_layers(Path(job.target(str(job.bundle))), job.seq_len)
    result = estimate(Accelerator.from_device(device), layers)
    return {
        "status": "ok",
        "method": "estimated",
        "source": manifest["source"],
        "format": manifest["format"],
        "precision": manifest.get("precision"),
        "runtime": "fpga-model",
        "threads": None,
        "seq_len": seq,
        "effective_seq_len": seq,
        "latency_ms": {"estimate": result.pop("estimate_ms")},
        "fpga_model": result,
        "memory": {"file_mb": round(manifest["file_bytes"] / 1e6, 3)},
        "warnings": ["--texts is measured, never estimated: no figure on the sentences"]
        if job.texts
        else [],
    }
