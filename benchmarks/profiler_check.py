"""How far the profiler's own figures can be trusted, measured in this one run:

1. p50 spread across 5 repeated profiles of one bundle (target <= 5% on a quiet machine);
2. the agent's peak-RSS figure against /usr/bin/time -v's maximum RSS of the same process
   (target within 10%);
3. the profiler's own overhead per timed run (target < 1% of a 1 ms model);
4. the roofline estimate against the published figures it was calibrated on, and against
   published figures it was not.

    python benchmarks/profiler_check.py [--bundle DIR] [--runs N] [--threads T]

Without --bundle it exports a random-weight tiny BERT classifier (needs '.[convert]').
Needs /usr/bin/time (apt-get install -y time) for check 2.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pocketbert.devices import Device
from pocketbert.lab.emulated import (
    CALIBRATION,
    PIXEL4_PEAK_GFLOPS,
    Cost,
    bert_cost,
    calibrate,
    roofline,
)
from pocketbert.profiler import hygiene
from pocketbert.profiler.agent import time_runs
from pocketbert.profiler.run import profile

# Published figures the estimate was NOT calibrated on: (source, model, seq, runtime,
# counted FLOPs, device peak fp32 GFLOP/s, bandwidth GB/s, published ms).
# MobileBERT at seq 384: pocketbert's ONNX graph count of the published shape (17.82 GFLOPs).
PUBLISHED = [
    ("TFLite docs, BERT QA (4 threads)", "MobileBERT", 384, "litert", 17.82e9, "Pixel 4", 161.6, 34.1, 74.0),
    ("TFLite docs, BERT QA (4 threads)", "MobileBERT", 384, "litert", 17.82e9, "Pixel 3", 179.2, 29.9, 123.0),
    (
        "ORT 1.2 BERT fusion notes, Xeon W-2123, 1 thread",
        "BERT-base", 128, "onnxruntime", bert_cost(12, 768, 3072, 12, 128).flops_fp32,
        "Xeon W-2123 (1 core, AVX-512 @ 3.6 GHz)", 230.4, 85.3, 297.0,
    ),
]  # fmt: skip


def tiny_bundle(out: Path) -> Path:
    import pocketbert

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from random_models import save_random_model  # tests/random_models.py

    model = save_random_model("bert", out / "model")
    pocketbert.export(model, out / "bundle", format="onnx", precision="fp32", quiet=True)
    return out / "bundle"


def p50_spread(bundle: Path, runs: int, threads: int | None) -> None:
    p50s = []
    for _ in range(5):
        (r,) = profile(
            [bundle], ["host"], runs=runs, warmup=10, threads=threads, store=None, quiet=True
        )
        p50s.append(r["latency_ms"]["p50"])
    spread = (max(p50s) - min(p50s)) / statistics.median(p50s)
    print(
        f"1. p50 over 5 fresh-process profiles ({runs} runs each): {', '.join(f'{p:.4f}' for p in p50s)} ms"
    )
    print(f"   spread (max - min) / median = {spread:.1%}  (target <= 5% on a quiet machine)")


def peak_memory(bundle: Path, runs: int) -> None:
    if not Path("/usr/bin/time").exists():
        print("2. skipped: /usr/bin/time is not installed (apt-get install -y time)")
        return
    argv = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "pocketbert.profiler.agent",
        str(bundle),
        "--runs",
        str(runs),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    time_mb = (
        int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    )
    ours = record["memory"]["peak_rss_mb"]
    print(
        f"2. peak RSS: agent {ours:.1f} MB vs /usr/bin/time -v {time_mb:.1f} MB: {abs(ours / time_mb - 1):.1%} apart"
    )
    print(
        f"   (runtime-only baseline {record['memory']['runtime_only_rss_mb']:.1f} MB, "
        f"model delta {record['memory']['model_peak_delta_mb']:.1f} MB, file {record['memory']['file_mb']:.2f} MB)"
    )


def overhead() -> None:
    n = 200_000
    start = time.perf_counter_ns()
    samples = time_runs(lambda: None, n)
    total = (time.perf_counter_ns() - start) / n
    inside = statistics.median(samples) * 1e6
    print(f"3. overhead per timed run: {total:.0f} ns in all (loop, clocks, store, an empty call);")
    print(
        f"   {inside:.0f} ns between the clocks: {total / 1e6:.4%} of a 1 ms model  (target < 1%)"
    )


def estimates() -> None:
    eff, residuals = calibrate(CALIBRATION["litert"], PIXEL4_PEAK_GFLOPS)
    print(f"4. roofline, litert efficiency {eff:.3f} (fit on Pixel 4, MobileBERT paper, seq 128):")
    for r in residuals:
        off = r["estimated_ms"] / r["published_ms"] - 1
        print(
            f"   {r['model']:<20} published {r['published_ms']:>6.1f} ms  estimated {r['estimated_ms']:>6.1f} ms  ({off:+.0%})"
        )
    print("   not calibrated on:")
    for source, model, seq, runtime, flops, name, peak, bw, ms in PUBLISHED:
        device = Device(
            name,
            "phone",
            "emulated",
            ("onnx",),
            (runtime,),
            peak_gflops_fp32=peak,
            mem_bandwidth_gbs=bw,
        )
        est = roofline(Cost(flops_fp32=flops), device, runtime)["estimate_ms"]
        print(
            f"   {model} seq {seq} on {name} [{source}]: published {ms:.0f} ms, estimated {est:.0f} ms ({est / ms - 1:+.0%})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    machine = hygiene.snapshot()
    print(
        f"machine: {machine['cpu_model']}, {machine['cores']} cores, governor {machine['governor']}, "
        f"load {machine['loadavg']}, other processes busy {machine['busy_cores_before']} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(args.bundle) if args.bundle else tiny_bundle(Path(tmp))
        print(f"bundle: {bundle} (threads {args.threads})")
        p50_spread(bundle, args.runs, args.threads)
        peak_memory(bundle, args.runs)
    overhead()
    estimates()


if __name__ == "__main__":
    main()
