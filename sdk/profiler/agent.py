"""The measuring agent: one fresh process that loads a bundle and times it.

Runs on the device itself (`pocketbert agent` or `python -m pocketbert.profiler.agent`) with only
numpy and one runtime installed: it never imports torch, transformers or converters. It
prints one JSON record on stdout (and writes it to --out when given); on bad input the
record has ``status: failed`` and the process exits 2.

Memory: ``baseline`` is this process's peak RSS after importing the runtime and before
loading the model, i.e. a process that only imported the runtime; the model's figure is
the peak after the timed runs minus that baseline.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from pocketbert.bundle import open_bundle
from pocketbert.core.errors import UserError
from pocketbert.profiler import hygiene
from pocketbert.profiler.stats import summarize


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM) in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def import_runtime(name: str) -> None:
    """Import the runtime's packages, or say what to install on this device."""
    from pocketbert.runtimes import RUNTIMES

    info = RUNTIMES.get(name)
    if info is None:
        raise UserError(
            f"this device's pocketbert has no runtime '{name}'; upgrade pocketbert here"
        )
    for module in info.needed_imports():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UserError(
                f"the bundle needs the '{name}' runtime, which is not installed on this device; "
                f"install it there: pip install {info.install}"
            ) from exc


def synthetic_feeds(bundle_root: Path, seq_len: int) -> dict[str, np.ndarray]:
    """[CLS] + random vocabulary ids + [SEP], all attended: the worst case for a length."""
    vocab = (
        json.loads((bundle_root / "tokenizer.json").read_text()).get("model", {}).get("vocab", {})
    )
    size = max(len(vocab), 8)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, size, size=(1, seq_len), dtype=np.int64)
    ids[0, 0] = vocab.get("[CLS]", 2)
    ids[0, -1] = vocab.get("[SEP]", 3)
    return {"input_ids": ids, "attention_mask": np.ones((1, seq_len), dtype=np.int64)}


def time_runs(run, runs: int) -> list[float]:
    """``runs`` timed calls of ``run()``, in ms; the only work between two clocks is the call."""
    clock = time.perf_counter_ns
    samples = [0] * runs
    for i in range(runs):
        start = clock()
        run()
        samples[i] = clock() - start
    return [s / 1e6 for s in samples]


def measure(
    bundle: str | Path,
    *,
    runs: int = 50,
    warmup: int = 5,
    threads: int | None = None,
    seq_len: int | None = None,
) -> dict:
    """Load ``bundle`` in this process and time it; returns the measured record."""
    from pocketbert.runtimes import load

    if runs < 1 or warmup < 0:
        raise UserError(f"runs must be >= 1 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    machine = hygiene.snapshot()
    b = open_bundle(bundle)
    manifest = b.manifest
    runtime = manifest.get("runtime", "")
    max_len = int(manifest["max_seq_len"])
    seq = seq_len or max_len
    if not 3 <= seq <= max_len:
        raise UserError(f"--seq-len {seq} is outside this bundle's range; give 3..{max_len}")
    effective = seq if manifest.get("dynamic_seq", True) else max_len
    import_runtime(runtime)
    gc.collect()
    baseline = peak_rss_mb()
    start = time.perf_counter()
    session = load(b.model_path, threads=threads)
    load_ms = (time.perf_counter() - start) * 1e3
    feeds = synthetic_feeds(b.root, seq)
    start = time.perf_counter()
    session.run(feeds)
    first_ms = (time.perf_counter() - start) * 1e3
    for _ in range(warmup):
        session.run(feeds)
    samples = time_runs(lambda: session.run(feeds), runs)
    peak = peak_rss_mb()
    summary = summarize(samples)
    return {
        "status": "ok",
        "method": "measured",
        "format": manifest["format"],
        "precision": manifest.get("precision"),
        "runtime": runtime,
        "threads": threads,
        "seq_len": seq,
        "effective_seq_len": effective,
        "runs": runs,
        "warmup": warmup,
        "latency_ms": summary,
        "samples_ms": [round(s, 4) for s in samples],
        "load_ms": round(load_ms, 3),
        "first_run_ms": round(first_ms, 3),
        "memory": {
            "peak_rss_mb": round(peak, 2),
            "runtime_only_rss_mb": round(baseline, 2),
            "model_peak_delta_mb": round(peak - baseline, 2),
            "file_mb": round(b.model_path.stat().st_size / 1e6, 3),
        },
        "machine": machine,
        "warnings": hygiene.warnings_for(machine, summary)
        + ([f"static-shape file: seq {seq} runs padded to {max_len}"] if effective != seq else []),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle directory or .zip on this device")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--out", default=None, help="also write the JSON record here")


def run_agent(args: argparse.Namespace) -> int:
    """Measure and print one JSON line; a UserError becomes a failed record and exit 2."""
    code = 0
    try:
        record = measure(
            args.bundle,
            runs=args.runs,
            warmup=args.warmup,
            threads=args.threads,
            seq_len=args.seq_len,
        )
    except UserError as exc:
        record, code = {"status": "failed", "error": str(exc)}, 2
    text = json.dumps(record)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pocketbert agent", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_agent(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
