"""``--size auto``: check the budget's flags without torch, and give the converters the
device's latency model (see converters/student_size.py for the rule that picks the size)."""

from __future__ import annotations

from typing import Any

from pocketbert.core.errors import UserError

AUTO = "auto"
DEFAULT_SPEEDUP = 4.0  # the same as converters.student_size.DEFAULT_SPEEDUP (no torch here)


def _device(device_id: str):
    from pocketbert.devices import catalog_path, get_devices, load_devices

    return get_devices([device_id], load_devices(catalog_path(None)))[0]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_budget(
    size: str, speedup: float | None, max_latency_ms: float | None, device: str | None
) -> float | None:
    """A UserError for a budget that cannot be met as given; returns the speed-up target
    (the default when neither target is given with ``--size auto``)."""
    if size != AUTO:
        if speedup is not None or max_latency_ms is not None or device is not None:
            raise UserError(
                "--speedup, --max-latency-ms and --device choose the student's size: "
                f"give --size auto with them, not --size {size}"
            )
        return speedup
    if speedup is not None and (not _number(speedup) or speedup < 1):
        raise UserError(
            f"--speedup must be a number >= 1 (times faster than the teacher), not {speedup!r}"
        )
    if max_latency_ms is not None and (not _number(max_latency_ms) or max_latency_ms <= 0):
        raise UserError(f"--max-latency-ms must be a number > 0, not {max_latency_ms!r}")
    target = _device(device or "host")  # an unknown id lists the known ones
    if max_latency_ms is not None and target.transport != "local" and not target.can_estimate:
        raise UserError(
            f"device {target.id} has no peak figures in devices.yaml to predict a latency "
            "from; give --speedup instead, or add peak_gflops_fp32 and mem_bandwidth_gbs"
        )
    return DEFAULT_SPEEDUP if speedup is None and max_latency_ms is None else speedup


def size_budget(
    family: str,
    knobs: dict[str, Any],
    speedup: float | None,
    max_latency_ms: float | None,
    device: str | None,
):
    """The converters' SizeBudget: on a device other than this host, its roofline estimate
    (or, without peak figures, the FLOPs ratio)."""
    from pocketbert.converters.student_size import SizeBudget

    target = _device(device or "host")
    estimate, flops_only = None, False
    if target.transport != "local":
        if target.can_estimate:
            from pocketbert.lab.emulated import Cost, roofline

            runtime = target.runtimes[0] if target.runtimes else ""

            def estimate(flops: float, weight_bytes: float) -> float:
                cost = Cost(flops_fp32=flops, weight_bytes=weight_bytes)
                return roofline(cost, target, runtime)["estimate_ms"]
        else:
            flops_only = True
    return SizeBudget(
        family,
        tuple(sorted(knobs.items())),
        speedup,
        max_latency_ms,
        target.id,
        estimate,
        flops_only,
    )
