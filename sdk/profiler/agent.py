"""The measuring agent: one fresh process that loads a bundle (or a bare model file) and times it.

Runs on the device itself (`pocketbert agent` or `python -m pocketbert.profiler.agent`) with only
numpy and one runtime installed: it never imports torch, transformers or converters. It
prints one JSON record on stdout (and writes it to --out, a file it creates itself, when
given); on bad input the record has ``status: failed`` and the process exits 2; on a bug
it has ``status: error``, ``bug: true`` and a short traceback, and the process exits 1.

Memory: ``baseline`` is this process's peak RSS after importing the runtime and before
loading the model, i.e. a process that only imported the runtime; the model's figure is
the peak after the timed runs minus that baseline.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from pocketbert.core.errors import UserError, first_line
from pocketbert.core.texts import read_texts
from pocketbert.core.threads import check_threads
from pocketbert.profiler import hygiene
from pocketbert.profiler.real_text import DEFAULT_PASSES, measure_texts, refuse_bare_file
from pocketbert.profiler.stats import summarize
from pocketbert.profiler.target import Target, foreign_feeds, open_target


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


def _load(target: Target, threads: int | None):
    """The runtime session; a foreign file that does not load is the user's input, not a bug."""
    from pocketbert.runtimes import load

    try:
        return load(target.model_path, threads=threads)
    except UserError:
        raise
    except Exception as exc:
        if not target.foreign:
            raise
        raise UserError(
            f"'{target.model_path.name}' does not load in {target.manifest['runtime']} "
            f"({first_line(exc)}); give a working {target.manifest['format']} file"
        ) from exc


def _first_run(session, feeds: dict, target: Target) -> float:
    start = time.perf_counter()
    try:
        session.run(feeds)
    except UserError:
        raise
    except Exception as exc:
        if not target.foreign:
            raise
        shapes = ", ".join(f"{n} {list(a.shape)}" for n, a in feeds.items())
        raise UserError(
            f"'{target.model_path.name}' did not run on inputs built from its signature "
            f"({shapes}): {first_line(exc)}"
        ) from exc
    return (time.perf_counter() - start) * 1e3


def measure(
    bundle: str | Path,
    *,
    runs: int = 50,
    warmup: int = 5,
    threads: int | None = None,
    seq_len: int | None = None,
    texts: str | Path | None = None,
    text_passes: int = DEFAULT_PASSES,
) -> dict:
    """Load ``bundle`` (or a bare model file) in this process and time it; the measured record.

    ``texts``: a sentence file; the record's ``texts`` then also times ``predict([s])`` on
    each sentence at its own length (see :mod:`pocketbert.profiler.real_text`)."""
    if runs < 1 or warmup < 0:
        raise UserError(f"runs must be >= 1 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    check_threads(threads)
    machine = hygiene.snapshot()
    target = open_target(bundle)
    if texts is not None:
        if target.foreign:
            raise refuse_bare_file(target.model_path.name)
        read_texts(texts)  # a bad sentence file is refused before anything loads
    manifest = target.manifest
    runtime = manifest.get("runtime", "")
    if not target.foreign:
        max_len = int(manifest["max_seq_len"])
        seq = seq_len or max_len
        if not 3 <= seq <= max_len:
            raise UserError(f"--seq-len {seq} is outside this bundle's range; give 3..{max_len}")
        effective = seq if manifest.get("dynamic_seq", True) else max_len
    import_runtime(runtime)
    gc.collect()
    baseline = peak_rss_mb()
    start = time.perf_counter()
    session = _load(target, threads)
    load_ms = (time.perf_counter() - start) * 1e3
    if target.foreign:
        seq, effective, feeds = foreign_feeds(session, runtime, target.model_path.name, seq_len)
    else:
        feeds = synthetic_feeds(target.root, seq)
    first_ms = _first_run(session, feeds, target)
    for _ in range(warmup):
        session.run(feeds)
    samples = time_runs(lambda: session.run(feeds), runs)
    peak = peak_rss_mb()
    summary = summarize(samples)
    session = None  # let it go: the text figures load their own, through predict()
    real = (
        {"texts": measure_texts(target, texts, threads=threads, warmup=warmup, passes=text_passes)}
        if texts is not None
        else {}
    )
    return {
        "status": "ok",
        "method": "measured",
        "source": manifest["source"],
        "model_sha256": manifest["files"].get(manifest["model_file"]),
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
            "file_mb": round(target.model_path.stat().st_size / 1e6, 3),
        },
        "machine": machine,
        "warnings": hygiene.warnings_for(machine, summary)
        + (
            [f"static-shape file: seq {seq} runs padded to {effective}"] if effective != seq else []
        ),
        **real,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle directory or .zip, or a bare .onnx/.tflite/.pte file")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument(
        "--texts", default=None, help="also time predict() on each sentence of this file"
    )
    p.add_argument("--texts-passes", type=int, default=DEFAULT_PASSES, dest="text_passes")
    p.add_argument(
        "--out", default=None, help="also write the JSON record to this new file (never a link)"
    )


def check_out(out: str) -> Path:
    """``--out`` as a path the agent may create: in an existing writable directory, not a link."""
    path = Path(out)
    if path.is_symlink():
        raise UserError(f"--out '{out}' is a symbolic link; the agent writes only files it creates")
    if path.is_dir():
        raise UserError(f"--out '{out}' is a directory; give a file path")
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"--out '{out}': directory '{parent}' does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out '{out}': directory '{parent}' is not writable")
    return path


def write_out(path: Path, text: str) -> None:
    """Write a fresh file beside ``path`` (O_EXCL) and rename it over ``path``, never through a link."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write --out '{path}' ({exc.strerror})") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o644)
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if (
            path.is_symlink()
        ):  # appeared since check_out: os.replace would not follow it, but say so
            raise UserError(f"--out '{path}' became a symbolic link; not written")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def bug_record(exc: BaseException) -> dict:
    """A record of an exception that is not bad input: a bug, with a short traceback."""
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4)
    return {
        "status": "error",
        "bug": True,
        "error_type": type(exc).__name__,
        "error": first_line(exc),
        "traceback": "".join(frames).rstrip(),
    }


def run_agent(args: argparse.Namespace) -> int:
    """Measure and print one JSON line: bad input is a failed record and exit 2, a bug exit 1."""
    code = 0
    out = None
    try:
        out = check_out(args.out) if args.out else None
        record = measure(
            args.bundle,
            runs=args.runs,
            warmup=args.warmup,
            threads=args.threads,
            seq_len=args.seq_len,
            texts=args.texts,
            text_passes=args.text_passes,
        )
    except UserError as exc:
        record, code = {"status": "failed", "error": str(exc)}, 2
    except Exception as exc:  # not the input's fault: say so, so the lab does not blame the device
        record, code = bug_record(exc), 1
        print(record["traceback"], file=sys.stderr)
    text = json.dumps(record)
    if out is not None:
        try:
            write_out(out, text)
        except UserError as exc:
            record, code = {"status": "failed", "error": str(exc)}, 2
            text = json.dumps(record)
    print(text, flush=True)
    if code == 2:  # the record is for the lab; the person at the terminal gets the one line
        print(f"pocketbert: error: {record['error']}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pocketbert agent", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_agent(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
