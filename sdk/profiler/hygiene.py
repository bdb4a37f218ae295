"""Benchmark hygiene: what the CPU was doing while we measured, and warnings when it matters.

Reads only /proc and /sys (Linux, Android); elsewhere the fields are None and no warning
is raised about what could not be read.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

BUSY_WARN = 0.10  # other processes using more than 10% of one core
SPREAD_WARN = 0.10  # (p90 - p50) / p50
CI_WARN = 0.05  # the median's CI half-width over the median


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Hardware", "Model", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def governors() -> list[str]:
    found = {
        p.read_text().strip()
        for p in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor")
        if p.is_file()
    }
    return sorted(found)


def _cpu_times() -> tuple[int, int] | None:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]), idle


def busy_cores(interval: float = 0.25) -> float | None:
    """How many cores other processes kept busy over ``interval`` seconds (we sleep meanwhile)."""
    a = _cpu_times()
    time.sleep(interval)
    b = _cpu_times()
    if a is None or b is None or b[0] == a[0]:
        return None
    total, idle = b[0] - a[0], b[1] - a[1]
    return round((total - idle) / total * (os.cpu_count() or 1), 3)


def isa() -> str:
    """The int8-relevant instruction sets this CPU reports (Linux: x86 flags, ARM Features)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "isa unknown"
    flags = {
        f
        for line in lines
        if line.startswith(("flags", "Features"))
        for f in line.split(":", 1)[1].split()
    }
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
    return "isa: " + (" ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted))


def snapshot() -> dict:
    """The machine's state right before a measurement."""
    try:
        load = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        load = None
    return {
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "governor": governors() or None,
        "loadavg": load,
        "busy_cores_before": busy_cores(),
    }


def warnings_for(machine: dict, summary: dict | None) -> list[str]:
    """Plain-language warnings about a measurement that may not be trustworthy."""
    out: list[str] = []
    busy = machine.get("busy_cores_before")
    if busy is not None and busy > BUSY_WARN:
        out.append(
            f"other processes kept {busy:.2f} cores busy while measuring; close them or expect noise"
        )
    govs = machine.get("governor") or []
    if govs and govs != ["performance"]:
        out.append(
            f"CPU governor is {'/'.join(govs)}, not performance; clocks may ramp during the runs"
        )
    if summary:
        p50 = summary["p50"]
        if p50 > 0 and (summary["p90"] - p50) / p50 > SPREAD_WARN:
            out.append(f"wide spread: p90 is {(summary['p90'] / p50 - 1):.0%} above p50")
        lo, hi = summary["ci95_median"]
        if p50 > 0 and (hi - lo) / 2 / p50 > CI_WARN:
            out.append(
                f"the median's 95% CI is ±{(hi - lo) / 2 / p50:.1%}; use more --runs or --until-stable"
            )
    return out
