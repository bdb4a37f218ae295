"""Every format x precision on the real all-MiniLM-L6-v2 and on random-weight MobileBERT
and SqueezeBERT classifiers of similar size: file size, p50 latency at 1 and 2 threads
(batch 1, seq 128) and parity, beside PyTorch eager fp32 and optimum's ONNX export + ORT
dynamic int8 of the same model, all measured in this one run. optimum's files are timed
twice: through pocketbert's runtime (the session options our bundles run with) and with
onnxruntime's default session options, as optimum's own ORTModel classes open them.

    python benchmarks/export_matrix.py [--out DIR] [--runs N] [--models minilm,mobilebert,squeezebert]

Needs: pip install -e '.[convert,examples,compare]'
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

SEQ = 128
THREADS = (1, 2)


def interleaved_p50_ms(
    runners: dict[str, object], runs: int, warmup: int = 5, block: int = 10, settle_s: float = 0.05
) -> dict[str, float]:
    """p50 of each runner, timed in rounds of ``block`` runs each, so drift hits all alike.

    Between runners the machine rests ``settle_s``: onnxruntime's and XNNPACK's worker
    threads spin for a while after a run and would otherwise steal the next runner's cores.
    """
    samples: dict[str, list[float]] = {k: [] for k in runners}
    for fn in runners.values():
        for _ in range(warmup):
            fn()
        time.sleep(settle_s)
    while any(len(v) < runs for v in samples.values()):
        for name, fn in runners.items():
            for _ in range(min(block, runs - len(samples[name]))):
                start = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - start) * 1000)
            time.sleep(settle_s)
    return {k: statistics.median(v) for k, v in samples.items()}


def models(root: Path, names: list[str]) -> dict[str, Path]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from random_models import save_random_model  # tests/random_models.py

    from pocketbert.examples import minilm_path

    out = {}
    if "minilm" in names:
        out["minilm"] = minilm_path()
    for arch in ("mobilebert", "squeezebert"):
        if arch in names:
            out[arch] = save_random_model(
                arch, root / arch, size="small", tokenizer_from=minilm_path()
            )
    return out


def feed(tokenizer_dir: Path) -> dict[str, np.ndarray]:
    from pocketbert.examples import sample_sentences
    from pocketbert.tokenize import Encoder

    text = " ".join(sample_sentences(20, seed=1))  # long enough to fill 128 tokens
    return Encoder(tokenizer_dir / "tokenizer.json", SEQ, pad_to=SEQ).feed(text)


def torch_row(model_dir: Path, f: dict) -> dict:
    import torch

    from pocketbert.converters.model import load_model

    module = load_model(model_dir).module
    args = (torch.from_numpy(f["input_ids"]), torch.from_numpy(f["attention_mask"]))

    def make(threads: int):
        def run():
            torch.set_num_threads(threads)
            with torch.inference_mode():
                module(*args)

        return run

    return {
        "format": "pytorch-eager",
        "precision": "fp32",
        "mb": None,
        "parity": "reference",
        "make": make,
    }


def _model_feeds(f: dict, names) -> dict:
    feeds = {**f, "token_type_ids": np.zeros_like(f["input_ids"])}
    return {k: v for k, v in feeds.items() if k in names}


def session_maker(path: Path, f: dict):
    from pocketbert import runtimes

    def make(threads: int):
        session = runtimes.load(path, threads=threads)
        feeds = _model_feeds(f, session.input_names)
        return lambda: session.run(feeds)

    return make


def default_session_maker(path: Path, f: dict):
    """onnxruntime with no fusion turned off, as optimum's ORTModel classes open a file:
    what a user of optimum's export runs."""
    from pocketbert.runtimes.ort import open_session, session_options

    def make(threads: int):
        session = open_session(path, session_options(threads, disabled=()))
        feeds = _model_feeds(f, {i.name for i in session.get_inputs()})
        return lambda: session.run(None, feeds)

    return make


def bundle_rows(model_dir: Path, out: Path, f: dict) -> list[dict]:
    from pocketbert.examples import sample_sentences
    from pocketbert.exporter import ExportFailed, export

    try:
        results = export(
            model_dir,
            out,
            format="all",
            precision="all",
            calibration=sample_sentences(128, seed=7),
            allow_parity_failure=True,
            quiet=True,
        )
    except ExportFailed as exc:
        results = exc.results
    rows = []
    for r in results:
        row = {"format": r.format, "precision": r.precision}
        if r.error:
            rows.append({**row, "error": r.error})
            continue
        manifest = json.loads((r.path / "manifest.json").read_text())
        model_file = r.path / manifest["model_file"]
        p = r.parity
        row["mb"] = round(model_file.stat().st_size / 1e6, 1)
        row["parity"] = (
            f"max|Δ| {p['max_abs_diff']:.1e} "
            + (
                f"argmax {p['argmax_agreement']:.1%}"
                if "argmax_agreement" in p
                else f"cos {p['mean_cosine']:.4f}"
            )
            + ("" if p["passed"] else " FAILS GATE")
        )
        row["make"] = session_maker(model_file, f)
        rows.append(row)
    return rows


def optimum_rows(model_dir: Path, out: Path, f: dict) -> list[dict]:
    """optimum-onnx's export + ORTQuantizer dynamic int8 (avx512_vnni, per-channel)."""
    try:
        from optimum.onnxruntime import (
            ORTModelForFeatureExtraction,
            ORTModelForSequenceClassification,
            ORTQuantizer,
        )
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
    except ImportError:
        return [
            {
                "format": "optimum-onnx",
                "precision": "-",
                "error": "pip install 'optimum[onnxruntime]'",
            }
        ]
    from pocketbert.converters.architectures import preflight

    task = preflight(model_dir).task
    cls = (
        ORTModelForSequenceClassification
        if task == "classification"
        else ORTModelForFeatureExtraction
    )
    cls.from_pretrained(model_dir, export=True).save_pretrained(out / "fp32")
    quantizer = ORTQuantizer.from_pretrained(out / "fp32")
    config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True)
    quantizer.quantize(config, save_dir=out / "int8")
    rows = []
    for precision, path in (
        ("fp32", out / "fp32" / "model.onnx"),
        ("int8-dynamic", out / "int8" / "model_quantized.onnx"),
    ):
        mb = round(path.stat().st_size / 1e6, 1)
        for fmt, maker in (
            ("optimum-onnx", session_maker),  # the same session options as our bundles
            ("optimum-onnx-ort-defaults", default_session_maker),
        ):
            rows.append(
                {
                    "format": fmt,
                    "precision": precision,
                    "mb": mb,
                    "parity": "-",
                    "make": maker(path, f),
                }
            )
    return rows


def time_rows(rows: list[dict], runs: int) -> None:
    """Fill p50_ms_<t>t of every row, all rows of one thread count timed interleaved."""
    live = [r for r in rows if "make" in r]
    for t in THREADS:
        runners = {i: r["make"](t) for i, r in enumerate(live)}
        for i, p50 in interleaved_p50_ms(runners, runs).items():
            live[i][f"p50_ms_{t}t"] = p50
    for r in live:
        del r["make"]


def print_table(name: str, rows: list[dict]) -> None:
    base = next(r for r in rows if r["format"] == "pytorch-eager")
    print(f"\n## {name}")
    print("| format | precision | MB | p50 ms 1t | p50 ms 2t | vs eager 1t | parity |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['format']} | {r['precision']} | | | | | ERROR: {r['error'][:120]} |")
            continue
        speed = base["p50_ms_1t"] / r["p50_ms_1t"]
        mb = "" if r["mb"] is None else r["mb"]
        print(
            f"| {r['format']} | {r['precision']} | {mb} | {r['p50_ms_1t']:.1f} | {r['p50_ms_2t']:.1f} | {speed:.2f}x | {r['parity']} |"
        )


def print_targets(rows: list[dict]) -> None:
    """The issue's targets, computed from this table's own figures."""
    ok = {(r["format"], r["precision"]): r for r in rows if "error" not in r}
    for (fmt, precision), r in sorted(ok.items()):
        base = ok.get((fmt, "fp32"))
        if precision == "fp32" or base is None or fmt in ("pytorch-eager",):
            continue
        speed = " ".join(f"{t}t {base[f'p50_ms_{t}t'] / r[f'p50_ms_{t}t']:.2f}x" for t in THREADS)
        size = r["mb"] / base["mb"]
        print(f"- {fmt} {precision}: speed-up over fp32 {speed}; size {size:.0%} of fp32")
    for theirs_fmt in ("optimum-onnx", "optimum-onnx-ort-defaults"):
        for precision in ("int8-dynamic", "fp32"):
            ours, theirs = ok.get(("onnx", precision)), ok.get((theirs_fmt, precision))
            if ours and theirs:
                ratio = " ".join(
                    f"{t}t {theirs[f'p50_ms_{t}t'] / ours[f'p50_ms_{t}t']:.2f}x" for t in THREADS
                )
                print(f"- onnx {precision} vs {theirs_fmt} {precision} (>1 = ours faster): {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", default=None, help="keep bundles here (default: a temporary directory)"
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--models", default="minilm,mobilebert,squeezebert")
    parser.add_argument("--json", default=None, help="also write all rows to this JSON file")
    args = parser.parse_args()
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="pocketbert-bench-"))
    from int8_kernels import isa

    from pocketbert.profiler import hygiene

    snap = hygiene.snapshot()
    print(f"cpu: {snap['cpu_model']}, {snap['cores']} cores, {isa()}, load {snap['loadavg']}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.system()} {platform.release()}, "
        f"python {platform.python_version()}; batch 1, seq {SEQ}; {args.runs} timed runs after 5 warm-up, "
        "rows of a table timed in interleaved rounds of 10 runs"
    )
    everything = {}
    for name, model_dir in models(root / "models", args.models.split(",")).items():
        f = feed(model_dir)
        rows = [torch_row(model_dir, f)]
        rows += bundle_rows(model_dir, root / "bundles" / name, f)
        rows += optimum_rows(model_dir, root / "optimum" / name, f)
        time_rows(rows, args.runs)
        print_table(name, rows)
        print_targets(rows)
        everything[name] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
