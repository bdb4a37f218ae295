"""Fit each runtime's coefficients on published device figures, and say how well that does
leave-one-out: each published point estimated by a model fitted without it.

The figures are sdk/assets/published_latency.yaml (each with its source); the op counts of
their models sdk/assets/published_counts.json (benchmarks/published_graphs.py writes it).
The fit minimises the squared relative error, coefficients >= 0 (exact: every subset of
free coefficients is solved and the best feasible one kept; there are four), and ``a`` >= 1
(no runtime runs its GEMMs faster than the device's peak). A runtime with
at least MIN_POINTS_FOR_ALL points gets all four coefficients of its own; one with fewer gets
only its GEMM coefficient ``a``, the other three taken from the runtime with the most points.
A published figure faster than its matmuls at the device's peak is flagged and never fitted.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from pocketbert.lab.cost_model import Coefficients, Peaks, features, implied_over_peak
from pocketbert.lab.op_cost import Work

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TABLE = ASSETS / "published_latency.yaml"
COUNTS = ASSETS / "published_counts.json"
MIN_POINTS_FOR_ALL = 6  # four coefficients and two points to spare


@dataclass(frozen=True)
class Point:
    """One published figure with what the model needs to estimate it."""

    model: str
    device: str
    runtime: str
    seq: int
    threads: int
    ms: float
    source: str
    sure: str
    x: tuple[float, float, float, float]  # cost_model.features of its graph on its device
    over_peak: bool = False


def nnls_relative(
    x: np.ndarray, y: np.ndarray, free: Sequence[int] | None = None, scale: np.ndarray | None = None
) -> np.ndarray:
    """theta >= 0 minimising sum(((x @ theta) - y) / scale) ** 2 (scale: y unless given) over
    the columns ``free``."""
    scale = y if scale is None else scale
    a, b = x / scale[:, None], y / scale
    cols = list(range(x.shape[1]) if free is None else free)
    best, best_err = np.zeros(x.shape[1]), float((b**2).sum())  # theta = 0
    for r in range(1, len(cols) + 1):
        for subset in itertools.combinations(cols, r):
            sol, *_ = np.linalg.lstsq(a[:, subset], b, rcond=None)
            if (sol < 0).any():
                continue
            theta = np.zeros(x.shape[1])
            theta[list(subset)] = sol
            err = float(((a @ theta - b) ** 2).sum())
            if err < best_err - 1e-12:
                best, best_err = theta, err
    return best


def _with_a_at_least_one(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The fit with a = 1 (GEMMs at the device's peak: no runtime beats it), b c d refitted
    on what the GEMMs leave of each figure."""
    rest = nnls_relative(x[:, 1:], y - x[:, 0], scale=y)
    return np.concatenate([[1.0], rest])


def fit(points: Sequence[Point]) -> dict[str, Coefficients]:
    """Coefficients per runtime from ``points`` (flagged ones left out)."""
    by_runtime: dict[str, list[Point]] = {}
    for p in points:
        if not p.over_peak:
            by_runtime.setdefault(p.runtime, []).append(p)
    if not by_runtime:
        return {}
    richest = max(by_runtime, key=lambda r: len(by_runtime[r]))
    out: dict[str, Coefficients] = {}

    def arrays(pts):
        return np.array([p.x for p in pts]), np.array([p.ms / 1e3 for p in pts])

    x, y = arrays(by_runtime[richest])
    full = len(by_runtime[richest]) >= MIN_POINTS_FOR_ALL
    theta = nnls_relative(x, y, None if full else [0])
    if full and theta[0] < 1.0 and (y - x[:, 0] > 0).all():
        theta = _with_a_at_least_one(x, y)
    out[richest] = Coefficients(*theta, source=f"{richest}: fitted on {len(y)} published points")
    for runtime, pts in by_runtime.items():
        if runtime == richest:
            continue
        x, y = arrays(pts)
        if len(pts) >= MIN_POINTS_FOR_ALL:
            out[runtime] = Coefficients(
                *nnls_relative(x, y), source=f"{runtime}: fitted on {len(y)} published points"
            )
            continue
        shared = np.array(out[richest].as_tuple())
        rest = x[:, 1:] @ shared[1:]  # the borrowed terms' time, then a alone
        a = nnls_relative(x[:, :1], y - rest)[0] if (y - rest > 0).all() else 0.0
        if a <= 0:  # the borrowed terms alone overshoot: fit a with them scaled away
            a = nnls_relative(x[:, :1], y)[0]
            shared = shared * 0
        out[runtime] = Coefficients(
            a,
            *shared[1:],
            source=f"{runtime}: a fitted on {len(y)} published points, b c d from {richest}",
        )
    return out


def leave_one_out(
    points: Sequence[Point], fitter: Callable[[Sequence[Point]], dict[str, Coefficients]] = fit
) -> list[dict]:
    """One row per point: its published and its estimated ms, by a fit that never saw it
    (a flagged point is estimated by the fit on all the others, and marked)."""
    rows = []
    for i, p in enumerate(points):
        coefs = fitter([q for j, q in enumerate(points) if j != i])
        coef = coefs.get(p.runtime)
        est = None if coef is None else 1e3 * float(np.dot(coef.as_tuple(), p.x))
        rows.append(
            {
                "model": p.model,
                "device": p.device,
                "runtime": p.runtime,
                "seq": p.seq,
                "published_ms": p.ms,
                "estimated_ms": None if est is None else round(est, 1),
                "error": None if est is None else (est - p.ms) / p.ms,
                "flagged": "implies more than the device's peak" if p.over_peak else "",
                "source": p.source,
                "sure": p.sure,
            }
        )
    return rows


def error_summary(rows: Sequence[dict]) -> dict:
    errs = [abs(r["error"]) for r in rows if r["error"] is not None and not r.get("flagged")]
    if not errs:
        return {"points": 0}
    return {
        "points": len(errs),
        "devices": len(
            {r["device"] for r in rows if r["error"] is not None and not r.get("flagged")}
        ),
        "median_abs_error": statistics.median(errs),
        "max_abs_error": max(errs),
    }


def _devices() -> dict:
    import yaml

    from pocketbert.devices import _check_entry, load_devices

    devices = dict(load_devices(ASSETS / "devices.yaml"))
    table = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    for i, entry in enumerate(table.get("devices", [])):
        devices.setdefault(entry["id"], _check_entry(entry, f"{TABLE.name}: device #{i + 1}"))
    return devices


@lru_cache(maxsize=1)
def published_points() -> tuple[Point, ...]:
    """Every published point whose graph has been counted (published_counts.json)."""
    import yaml

    table = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    counts = json.loads(COUNTS.read_text()) if COUNTS.is_file() else {}
    devices = _devices()
    points = []
    for p in table["points"]:
        key = f"{p['model']}/{p['graph']}/{p['seq']}"
        if key not in counts:
            continue
        work = Work.from_dict(counts[key])
        peaks = Peaks.of(devices[p["device"]], p["threads"])
        point = Point(
            p["model"],
            p["device"],
            p["runtime"],
            int(p["seq"]),
            int(p["threads"]),
            float(p["ms"]),
            p["source"],
            p.get("sure", ""),
            features(work, peaks),
        )
        points.append(replace(point, over_peak=implied_over_peak(work, peaks, point.ms)))
    return tuple(points)


@lru_cache(maxsize=1)
def fitted() -> dict[str, Coefficients]:
    """The coefficients every estimate uses: the fit on all published points."""
    return fit(published_points())
