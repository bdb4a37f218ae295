"""Latency statistics over raw samples: percentiles, spread and a CI of the median (numpy only)."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959964


def median_ci(samples: list[float], z: float = Z95) -> tuple[float, float]:
    """Distribution-free 95% confidence interval of the median from order statistics.

    The ranks are n/2 - z*sqrt(n)/2 and 1 + n/2 + z*sqrt(n)/2 (the normal approximation
    of the binomial, as in Conover, Practical Nonparametric Statistics), so it
    holds for any latency distribution; with fewer than 6 samples it is [min, max].
    """
    xs = sorted(samples)
    n = len(xs)
    if n < 6:
        return xs[0], xs[-1]
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)  # 1-based rank -> 0-based index
    hi = min(n - 1, math.ceil(n / 2 + 1 + half) - 1)
    return xs[lo], xs[hi]


def summarize(samples_ms: list[float]) -> dict[str, float | list[float]]:
    """p50/p90/p99, mean, std, min, max and the median's 95% CI, in ms."""
    if not samples_ms:
        raise ValueError("no samples to summarize")
    arr = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    lo, hi = median_ci(samples_ms)
    return {
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
        "mean": round(float(arr.mean()), 4),
        "std": round(float(arr.std(ddof=1)) if arr.size > 1 else 0.0, 4),
        "min": round(float(arr.min()), 4),
        "max": round(float(arr.max()), 4),
        "ci95_median": [round(lo, 4), round(hi, 4)],
    }


def relative_ci(summary: dict) -> float:
    """Half the median's CI width as a fraction of the median."""
    lo, hi = summary["ci95_median"]
    return (hi - lo) / 2 / summary["p50"] if summary["p50"] > 0 else math.inf
