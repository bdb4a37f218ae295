"""Profile bundles on devices: each measurement in a fresh process, on its own device.

    records = pocketbert.profile(["out/sst2"], devices=["host", "rpi5"], runs=100)

Devices run at once (one thread each), their measurements one after another. Every
record, ok or failed, is appended to the results store the moment it is known: a device
that drops out loses only its own result, and it is reported failed, never left out.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from pocketbert.core.errors import UserError
from pocketbert.core.progress import Progress
from pocketbert.core.threads import THREADS_PER_CORE, check_threads
from pocketbert.devices import Device, catalog_path, get_devices, load_devices
from pocketbert.lab import TRANSPORTS, Job
from pocketbert.lab.registry import AgentBug
from pocketbert.profiler import hygiene
from pocketbert.profiler.agent import bug_record
from pocketbert.profiler.real_text import (
    DEFAULT_LIMIT,
    DEFAULT_PASSES,
    StagedTexts,
    refuse_bare_file,
    stage_texts,
)
from pocketbert.profiler.results import DEFAULT_STORE, ResultsStore
from pocketbert.profiler.stats import relative_ci, summarize
from pocketbert.profiler.target import Target, open_target


@dataclass
class Options:
    runs: int = 50
    warmup: int = 5
    threads: int | list[int | None] | None = None  # one count or several (one run each)
    seq_lens: list[int | None] = field(default_factory=lambda: [None])
    until_stable: float | None = None  # target: the median's CI half-width / median
    max_rounds: int = 10
    timeout: float = 600.0
    estimate: bool = False  # every device through the emulated transport
    texts: str | Path | None = None  # sentences to time predict() on, each at its own length
    text_passes: int = DEFAULT_PASSES
    text_limit: int = DEFAULT_LIMIT  # sentences timed at most (a seeded sample of the file)

    def __post_init__(self) -> None:
        if self.text_passes < 1 or self.text_limit < 1:
            raise UserError(
                f"--texts-passes and --texts-limit must be >= 1 "
                f"(got {self.text_passes}, {self.text_limit})"
            )
        if self.runs < 1 or self.warmup < 0:
            raise UserError(
                f"--runs must be >= 1 and --warmup >= 0 (got {self.runs}, {self.warmup})"
            )
        if self.until_stable is not None and not 0 < self.until_stable < 1:
            raise UserError(
                f"--until-stable takes a fraction such as 0.02 (got {self.until_stable})"
            )
        if self.timeout <= 0:
            raise UserError(f"--timeout must be positive (got {self.timeout})")
        if self.threads is None or isinstance(self.threads, int):
            self.threads = [self.threads]
        self.threads = list(dict.fromkeys(self.threads)) or [None]
        for t in self.threads:  # the upper bound depends on the device: check_device_threads
            if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 1):
                check_threads(t)  # says what is wrong and what would be right


def check_device_threads(device: Device, threads: int | None, estimate: bool) -> None:
    """A thread count fits the machine that runs it: this one, or the device's catalog cores."""
    if device.transport == "local" and not estimate:
        check_threads(threads)
        return
    cores = device.cpu.get("threads") or device.cpu.get("cores")
    if threads is not None and isinstance(cores, int) and threads > cores * THREADS_PER_CORE:
        raise UserError(
            f"--threads {threads} is out of range for device {device.id}; give 1 to "
            f"{cores * THREADS_PER_CORE} ({cores} cores in its catalog entry x {THREADS_PER_CORE})"
        )


def _check_fit(device: Device, manifest: dict, estimate: bool) -> None:
    """The device runs this format and runtime (estimates too), and can be estimated if asked."""
    fmt, runtime = manifest["format"], manifest.get("runtime")
    what = "file" if manifest.get("source") == "foreign file" else "bundle"
    if fmt not in device.formats or (runtime and runtime not in device.runtimes):
        raise UserError(
            f"device {device.id} runs {', '.join(device.formats)} files; this {what} is {fmt} "
            f"({runtime}): export a {' or '.join(device.formats)} bundle for it"
        )
    if (estimate or device.transport == "emulated") and not device.can_estimate:
        raise UserError(f"device {device.id} has no peak figures in devices.yaml to estimate from")


def _merge(rounds: list[dict], target: float) -> dict:
    """Pool the samples of several fresh-process rounds into one record."""
    samples = [s for r in rounds for s in r["samples_ms"]]
    summary = summarize(samples)
    record = dict(rounds[-1])
    record.update(
        samples_ms=samples,
        latency_ms=summary,
        rounds=len(rounds),
        runs=len(samples),
        load_ms=sorted(r["load_ms"] for r in rounds)[len(rounds) // 2],
        first_run_ms=sorted(r["first_run_ms"] for r in rounds)[len(rounds) // 2],
        memory={
            **rounds[-1]["memory"],
            "model_peak_delta_mb": max(r["memory"]["model_peak_delta_mb"] for r in rounds),
        },
    )
    record["warnings"] = hygiene.warnings_for(record.get("machine", {}), summary)
    if relative_ci(summary) > target:
        record["warnings"].append(f"not stable after {len(rounds)} rounds (target ±{target:.1%})")
    return record


def transport_name(device: Device, estimate: bool) -> str:
    """The device's transport, or with --estimate its estimator (fpga devices: the fpga model)."""
    if not estimate:
        return device.transport
    return "fpga-model" if device.kind == "fpga" else "emulated"


def measure_one(device: Device, job: Job, options: Options) -> dict:
    """One (device, bundle, seq) measurement; repeated rounds when --until-stable."""
    transport = TRANSPORTS[transport_name(device, options.estimate)]
    record = transport(device, job)
    if options.until_stable is None or record.get("method") != "measured":
        return record
    rounds = [record]
    while (
        relative_ci(summarize([s for r in rounds for s in r["samples_ms"]])) > options.until_stable
    ):
        if len(rounds) >= options.max_rounds:
            break
        rounds.append(transport(device, job))
    return _merge(rounds, options.until_stable)


def _on(device: Device, message: str) -> str:
    return (
        message if message.startswith(f"device {device.id}") else f"device {device.id}: {message}"
    )


def _outcome(device: Device, job: Job, options: Options, manifest: dict) -> dict:
    """The measured/estimated record, or a failed one (the device's or the input's fault), or a
    bug (``status: error``, ``bug: true``): a bug must not cost the other devices their results."""
    try:
        _check_fit(device, manifest, options.estimate)
        return measure_one(device, job, options)
    except UserError as exc:
        return {"status": "failed", "method": None, "error": _on(device, str(exc))}
    except AgentBug as exc:  # the agent on the device hit a bug and said so
        record = {k: exc.record.get(k) for k in ("error_type", "traceback")}
        error = f"internal error {record['error_type']}: {exc}"
        return {
            "status": "error",
            "bug": True,
            "method": None,
            **record,
            "error": _on(device, error),
        }
    except Exception as exc:
        record = bug_record(exc)
        error = f"internal error {record['error_type']}: {record['error']}"
        return {**record, "method": None, "error": _on(device, error)}


def _device_worker(
    device: Device,
    targets: list[tuple[str, Target, Job]],
    options: Options,
    texts: StagedTexts | None,
    emit,
    progress,
) -> None:
    for name, target, job in targets:
        manifest = target.manifest
        for seq in options.seq_lens:
            # the sentences run at their own lengths: once per thread count, not per --seq-len
            sentences = job.texts if seq == options.seq_lens[0] else None
            for threads in options.threads:
                base = {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "device": device.id,
                    "transport": transport_name(device, options.estimate),
                    "bundle": name,
                    "source": manifest["source"],
                    "bundle_sha256": manifest["files"].get(manifest["model_file"]),
                    "format": manifest["format"],
                    "precision": manifest.get("precision"),
                    "seq_len": seq or manifest["max_seq_len"],
                    "threads": threads,
                }
                if threads is None and device.transport != "local":
                    threads = device.threads
                run = replace(job, threads=threads, seq_len=seq, texts=sentences)
                label = f"{Path(name).name} seq {base['seq_len'] or '-'}"
                progress.say(f"… {device.id}: {label}")
                record = {**base, **_outcome(device, run, options, manifest)}
                if texts and "texts" in record:  # the user's file, not the copy that travelled
                    record["texts"] = {**texts.record(), **record["texts"]}
                emit(record)
                mark = "✓" if record["status"] == "ok" else "✗"
                progress.say(f"{mark} {device.id}: {label}")


@contextmanager
def _staged(paths: list[str | Path], options: Options):
    """Open every bundle or bare model file; a bare file travels as a one-file directory, the
    sentences of ``--texts`` as one file beside the bundle. Yields (targets, staged texts)."""
    scratch = None
    try:
        texts = None
        if options.texts is not None:
            scratch = Path(tempfile.mkdtemp(prefix="pocketbert-profile-"))
            texts = stage_texts(options.texts, scratch, options.text_limit)
        staged = []
        for p in paths:
            target = open_target(p)  # a corrupt bundle stops everything before a device starts
            job = Job(target.root, options.runs, options.warmup, timeout=options.timeout)
            if texts:
                if target.foreign:
                    raise refuse_bare_file(target.model_path.name)
                job = replace(job, texts=str(texts.path), text_passes=options.text_passes)
            if target.foreign:
                scratch = scratch or Path(tempfile.mkdtemp(prefix="pocketbert-profile-"))
                digest = target.manifest["files"][target.model_path.name]
                folder = scratch / f"{target.model_path.stem}-{digest[:12]}"
                folder.mkdir(exist_ok=True)
                copy = folder / target.model_path.name
                if not copy.exists():
                    try:
                        os.link(target.model_path, copy)
                    except OSError:
                        shutil.copyfile(target.model_path, copy)
                job = replace(job, bundle=folder, model_file=copy.name)
            staged.append((str(p), target, job))
        yield staged, texts
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def profile(
    bundles: list[str | Path],
    devices: list[str],
    *,
    options: Options | None = None,
    store: str | Path | ResultsStore | None = DEFAULT_STORE,
    catalog: str | Path | None = None,
    quiet: bool = False,
    **kwargs,
) -> list[dict]:
    """Measure (or estimate) every bundle on every device; returns one record per measurement.

    ``bundles`` are bundle directories or .zip files, or bare .onnx/.tflite/.pte files
    (inputs built from the file's own signature; ``"source": "foreign file"``). ``kwargs``
    are :class:`Options` fields (runs, warmup, threads, seq_lens, until_stable, timeout,
    estimate, texts, text_passes, text_limit); ``threads`` takes one count or a list.
    ``texts``: a sentence file (.txt one a line, .csv/.jsonl with a text column); each
    bundle's record then has ``texts``, the figures of ``predict([s])`` per sentence at its
    own length, tokenization included, beside the fixed-length figure. ``catalog`` is the devices.yaml to
    use (default: ./devices.yaml if there is one, else the packaged catalog); ``store`` the
    JSONL results file to append to (default: ./pocketbert-results.jsonl; None: none).
    Pairs the device could not run come back with ``status: failed`` and an ``error``;
    pocketbert's own bugs with ``status: error`` and ``bug: true``.
    """
    options = replace(options, **kwargs) if options else Options(**kwargs)
    path = catalog_path(catalog)
    chosen = get_devices(list(devices), load_devices(path))
    for device in chosen:
        for threads in options.threads:
            check_device_threads(device, threads, options.estimate)
    results = store if isinstance(store, ResultsStore) or store is None else ResultsStore(store)
    records: list[dict] = []
    lock = threading.Lock()

    def emit(record: dict) -> None:
        record["catalog"] = str(path)
        with lock:
            records.append(record)
            if results:
                results.append(record)

    progress = Progress(quiet)
    with _staged(bundles, options) as (targets, texts), ThreadPoolExecutor(len(chosen)) as pool:
        futures = [
            pool.submit(_device_worker, d, targets, options, texts, emit, progress) for d in chosen
        ]
        for f in futures:
            f.result()
    order = {d.id: i for i, d in enumerate(chosen)}
    return sorted(records, key=lambda r: order[r["device"]])


HEADERS = ("device", "method", "bundle", "seq", "thr", "p50 ms", "p90 ms", "±CI", "est ms")
HEADERS += ("load ms", "mem MB", "file MB")
# --texts: predict() per sentence at its own length, beside the fixed-length figure
TEXT_HEADERS = ("text p50 ms", "text p90 ms", "tokens p50/p90")
_LEFT = 3  # device, method and bundle are left-aligned; the rest are numbers


def _cells(r: dict) -> list[str]:
    head = [
        r["device"],
        r.get("method") or ("bug" if r.get("bug") else "failed"),
        Path(r["bundle"]).name,
        str(r.get("seq_len") or "-"),
        str(r.get("threads") or "-"),
    ]
    if r["status"] != "ok":
        return head
    lat, mem = r["latency_ms"], r.get("memory", {})
    if r["method"] == "measured":
        cells = [f"{lat['p50']:.3f}", f"{lat['p90']:.3f}", f"{relative_ci(lat):.1%}", ""]
        cells += [f"{r['load_ms']:.1f}", f"{mem['model_peak_delta_mb']:.1f}"]
    else:
        cells = ["", "", "", f"{lat['estimate']:.2f}", "", ""]
    return head + cells + [f"{mem.get('file_mb', 0):.2f}"] + _text_cells(r.get("texts"))


def _text_cells(texts: dict | None) -> list[str]:
    if not texts:
        return []
    tokens = f"{texts['median_tokens']:g}/{texts['p90_tokens']:g}"
    return [f"{texts['p50_ms']:.3f}", f"{texts['p90_ms']:.3f}", tokens]


def format_table(records: list[dict]) -> str:
    """One line per record, columns as wide as their content; measured and estimated figures
    sit in separate columns, the --texts figures after them, and a failed record says why after
    its first columns."""
    rows = [_cells(r) for r in records]
    headers = HEADERS + (TEXT_HEADERS if any(r.get("texts") for r in records) else ())
    widths = [
        max([len(h)] + [len(row[i]) for row in rows if i < len(row)]) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < _LEFT else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ).rstrip()

    lines = [line(list(headers))]
    for r, row in zip(records, rows, strict=True):
        if r["status"] == "ok":
            lines.append(line(row))
        else:
            lines.append(f"{line(row)}  {'BUG' if r.get('bug') else 'FAILED'}: {r['error']}")
    return "\n".join(lines)


def warning_lines(records: list[dict]) -> list[str]:
    """``warning: DEVICE BUNDLE seq N [threads T]: ...``, one per warning of each record."""
    out = []
    for r in records:
        where = f"{r['device']} {Path(r['bundle']).name} seq {r.get('seq_len') or '-'}"
        if r.get("threads"):
            where += f" threads {r['threads']}"
        out += [f"warning: {where}: {w}" for w in r.get("warnings", [])]
    return out
