"""How good are pocketbert's latency estimates? Two tables.

1. Leave-one-out over published device figures (sdk/assets/published_latency.yaml): each
   point estimated by the cost model fitted on all the other points; a figure faster than
   its matmuls at the device's peak is flagged and never fitted.
2. This host: its peak figures measured by a short GEMM/copy probe (pocketbert.lab.
   host_probe), the same estimator (coefficients fitted on the published figures) predicts
   the p50 of each bundle at 1 thread, beside that p50 measured here.

    python benchmarks/estimates.py [--bundles DIR ...] [--runs 20] [--no-host]

The host bundles default to every bundle under ~/.cache/pocketbert/host-bundles (the real
all-MiniLM-L6-v2 at each format x precision, max 128 tokens, made once with
`python benchmarks/predict_latency.py --real --out ~/.cache/pocketbert/host-bundles`);
each is timed at batch 1, seq 128, 1 thread. Needs: pip install -e '.[convert,examples]'.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

SEQ = 128
HOST_BUNDLES = Path.home() / ".cache/pocketbert/host-bundles"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.0%}"


def published_table() -> dict:
    from pocketbert.lab.fit import error_summary, fitted, leave_one_out, published_points

    points = published_points()
    rows = leave_one_out(points)
    print("\n## Leave-one-out over published figures")
    print("| model | device | runtime | seq | published ms | estimated ms | error | note | sure |")
    print("|---|---|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        est = "-" if r["estimated_ms"] is None else f"{r['estimated_ms']:.0f}"
        print(
            f"| {r['model']} | {r['device']} | {r['runtime']} | {r['seq']} | {r['published_ms']:g} "
            f"| {est} | {pct(r['error'])} | {r['flagged'] or ''} | {r['sure']} |"
        )
    summary = error_summary(rows)
    if summary["points"]:
        print(
            f"\n{summary['points']} fitted points on {summary['devices']} devices: median |error| "
            f"{summary['median_abs_error']:.0%}, max |error| {summary['max_abs_error']:.0%} "
            "(target: median <= 20%, none beyond 40%, >= 8 points on >= 3 devices)"
        )
    print("\nCoefficients fitted on all points (t = a gemm + b memory + c transcendental + d ops):")
    for runtime, c in fitted().items():
        print(
            f"- {runtime}: a {c.a:.3f} (GEMM efficiency {1 / c.a if c.a else 0:.0%}), b {c.b:.3g}, "
            f"c {c.c:.3g} cycles/element, d {c.d:.3g} us/op; {c.source}"
        )
    sources = sorted({r["source"] for r in rows})
    print("\nSources:\n" + "\n".join(f"- {s}" for s in sources))
    return {"rows": rows, "summary": summary}


def host_rows(bundles: list[Path], runs: int) -> list[dict]:
    import numpy as np
    from export_matrix import interleaved_p50_ms

    from pocketbert import runtimes
    from pocketbert.examples import sample_sentences
    from pocketbert.lab import host_probe
    from pocketbert.lab.cost_model import Peaks, features
    from pocketbert.lab.emulated import estimate
    from pocketbert.lab.op_count import bundle_work
    from pocketbert.tokenize import Encoder

    probe = host_probe.measure(threads=1)
    device = host_probe.host_device(probe)
    print(
        f"\nhost probe (1 thread): fp32 MatMul {probe['gflops_fp32']} GFLOP/s, int8 MatMulInteger "
        f"{probe['gops_int8']} GOP/s, copy {probe['copy_gbs']} GB/s, {probe['ghz']} GHz"
    )
    text = " ".join(sample_sentences(20, seed=1))  # long enough to fill 128 tokens
    runners, rows = {}, []
    for bundle in bundles:
        manifest = json.loads((bundle / "manifest.json").read_text())
        feed = Encoder(bundle / "tokenizer.json", SEQ, pad_to=SEQ).feed(text)
        session = runtimes.load(bundle / manifest["model_file"], threads=1)
        feeds = {**feed, "token_type_ids": np.zeros_like(feed["input_ids"])}
        feeds = {k: v for k, v in feeds.items() if k in session.input_names}
        runners[bundle.name] = (lambda s, f: lambda: s.run(f))(session, feeds)
        work, facts = bundle_work(bundle, SEQ)
        est = estimate(work, device, manifest["runtime"], threads=1)
        x = features(work, Peaks.of(device, 1))
        rows.append(
            {
                "bundle": bundle.name,
                "format": manifest["format"],
                "precision": manifest["precision"],
                "runtime": manifest["runtime"],
                "estimated_ms": est["estimate_ms"],
                "parts_ms": est["parts_ms"],
                "source": est["coefficients_source"],
                "x": x,
            }
        )
    p50 = interleaved_p50_ms(runners, runs)
    for r in rows:
        r["measured_ms"] = round(p50[r["bundle"]], 2)
        r["error"] = (r["estimated_ms"] - r["measured_ms"]) / r["measured_ms"]
    return rows


def host_table(bundles: list[Path], runs: int) -> dict:
    from pocketbert.lab.fit import Point, leave_one_out

    rows = host_rows(bundles, runs)
    points = [
        Point(r["bundle"], "host", r["runtime"], SEQ, 1, r["measured_ms"], "here", "", r["x"])
        for r in rows
    ]
    for r, loo in zip(rows, leave_one_out(points), strict=True):
        r["host_loo_ms"], r["host_loo_error"] = loo["estimated_ms"], loo["error"]
    print("\n## This host: estimate vs measured p50 (batch 1, seq 128, 1 thread)")
    print(
        "| bundle | runtime | measured p50 ms | estimated ms | error "
        "| gemm / memory / transc. / ops ms | host-fitted LOO ms | error |"
    )
    print("|---|---|---:|---:|---:|---|---:|---:|")
    for r in rows:
        parts = " / ".join(f"{v:.1f}" for v in r["parts_ms"].values())
        print(
            f"| {r['bundle']} | {r['runtime']} | {r['measured_ms']:.1f} | {r['estimated_ms']:.1f} "
            f"| {pct(r['error'])} | {parts} | {r['host_loo_ms'] or '-'} | {pct(r['host_loo_error'])} |"
        )
    errs = [abs(r["error"]) for r in rows]
    summary = {"points": len(errs)}
    if errs:
        summary |= {"median_abs_error": statistics.median(errs), "max_abs_error": max(errs)}
        print(
            f"\n{len(errs)} bundles: median |error| {summary['median_abs_error']:.0%}, "
            f"max |error| {summary['max_abs_error']:.0%}"
        )
    loo = [abs(r["host_loo_error"]) for r in rows if r["host_loo_error"] is not None]
    if loo:
        summary["host_loo_median_abs_error"] = statistics.median(loo)
        print(
            f"host-fitted leave-one-out (each bundle by the other bundle of its runtime, GEMM term "
            f"only): median |error| {statistics.median(loo):.0%}, max {max(loo):.0%}"
        )
    print("coefficients: " + "; ".join(sorted({r["source"] for r in rows})))
    return {"rows": rows, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles", type=Path, nargs="*", default=None)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-host", action="store_true", help="only the published table")
    parser.add_argument("--json", type=Path, default=None, help="also write both tables here")
    args = parser.parse_args()
    from pocketbert.profiler import hygiene

    snap = hygiene.snapshot()
    print(
        f"cpu: {snap['cpu_model']}, {snap['cores']} cores, load {snap['loadavg']}, {hygiene.isa()}"
    )
    print(
        f"machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"python {platform.python_version()}"
    )
    out = {"published": published_table()}
    if not args.no_host:
        bundles = args.bundles or sorted(p.parent for p in HOST_BUNDLES.glob("*/manifest.json"))
        if not bundles:
            print(
                f"\nno host bundles under {HOST_BUNDLES}; give --bundles or make them (see --help)"
            )
        else:
            out["host"] = host_table(bundles, args.runs)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
