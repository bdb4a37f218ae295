"""Profile bundles on devices: each measurement in a fresh process, on its own device.

    records = pocketbert.profile(["out/sst2"], devices=["host", "rpi5"], runs=100)

Devices run at once (one thread each), their measurements one after another. Every
record, ok or failed, is appended to the results store the moment it is known: a device
that drops out loses only its own result, and it is reported failed, never left out.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from pocketbert.bundle import open_bundle
from pocketbert.core.errors import UserError
from pocketbert.core.progress import Progress
from pocketbert.devices import Device, get_devices, load_devices
from pocketbert.lab import TRANSPORTS, Job
from pocketbert.profiler import hygiene
from pocketbert.profiler.results import DEFAULT_STORE, ResultsStore
from pocketbert.profiler.stats import relative_ci, summarize


@dataclass
class Options:
    runs: int = 50
    warmup: int = 5
    threads: int | None = None
    seq_lens: list[int | None] = field(default_factory=lambda: [None])
    until_stable: float | None = None  # target: the median's CI half-width / median
    max_rounds: int = 10
    timeout: float = 600.0
    estimate: bool = False  # every device through the emulated transport

    def __post_init__(self) -> None:
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


def _check_fit(device: Device, manifest: dict, estimate: bool) -> None:
    if estimate or device.transport == "emulated":
        if not device.can_estimate:
            raise UserError(
                f"device {device.id} has no peak figures in devices.yaml to estimate from"
            )
        return
    fmt, runtime = manifest["format"], manifest.get("runtime")
    if fmt not in device.formats or (runtime and runtime not in device.runtimes):
        raise UserError(
            f"device {device.id} runs {', '.join(device.formats)} files; this bundle is {fmt} "
            f"({runtime}): export a {' or '.join(device.formats)} bundle for it"
        )


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


def measure_one(device: Device, job: Job, options: Options) -> dict:
    """One (device, bundle, seq) measurement; repeated rounds when --until-stable."""
    transport = TRANSPORTS["emulated" if options.estimate else device.transport]
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


def _device_worker(
    device: Device, bundles: list[tuple[Path, dict]], options: Options, emit, progress: Progress
) -> None:
    for bundle, manifest in bundles:
        for seq in options.seq_lens:
            base = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "device": device.id,
                "transport": "emulated" if options.estimate else device.transport,
                "bundle": str(bundle),
                "bundle_sha256": manifest["files"].get(manifest["model_file"]),
                "format": manifest["format"],
                "precision": manifest.get("precision"),
                "seq_len": seq or manifest["max_seq_len"],
            }
            threads = options.threads or (device.threads if device.transport != "local" else None)
            job = Job(bundle, options.runs, options.warmup, threads, seq, options.timeout)
            progress.say(f"… {device.id}: {bundle.name} seq {base['seq_len']}")
            try:
                _check_fit(device, manifest, options.estimate)
                record = {**base, **measure_one(device, job, options)}
            except UserError as exc:
                record = {
                    **base,
                    "status": "failed",
                    "method": None,
                    "error": _on(device, str(exc)),
                }
            except Exception as exc:  # a bug must not cost the other devices their results
                error = _on(device, f"internal error {exc!r}")
                record = {**base, "status": "failed", "method": None, "error": error}
            emit(record)
            progress.say(f"{'✓' if record['status'] == 'ok' else '✗'} {device.id}: {bundle.name}")


def profile(
    bundles: list[str | Path],
    devices: list[str],
    *,
    options: Options | None = None,
    store: str | Path | None = DEFAULT_STORE,
    catalog: str | Path | None = None,
    quiet: bool = False,
    **kwargs,
) -> list[dict]:
    """Measure (or estimate) every bundle on every device; returns one record per pair.

    ``kwargs`` are :class:`Options` fields (runs, warmup, threads, seq_lens, until_stable,
    timeout, estimate). Failed pairs come back with ``status: failed`` and an ``error``.
    """
    options = replace(options, **kwargs) if options else Options(**kwargs)
    chosen = get_devices(list(devices), load_devices(catalog))
    # a corrupt bundle stops everything before any device starts; the Bundles are held for the
    # whole run, since a zipped bundle's extracted files live as long as its Bundle
    held = [open_bundle(b) for b in bundles]
    opened = [(bundle.root, bundle.manifest) for bundle in held]
    results = ResultsStore(store) if store else None
    records: list[dict] = []
    lock = threading.Lock()

    def emit(record: dict) -> None:
        with lock:
            records.append(record)
            if results:
                results.append(record)

    progress = Progress(quiet)
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        futures = [pool.submit(_device_worker, d, opened, options, emit, progress) for d in chosen]
        for f in futures:
            f.result()
    order = {d.id: i for i, d in enumerate(chosen)}
    return sorted(records, key=lambda r: order[r["device"]])


def format_table(records: list[dict]) -> str:
    """One line per record; measured and estimated figures sit in separate columns."""
    lines = [
        f"{'device':<9}{'method':<10}{'bundle':<16}{'seq':>4}{'p50 ms':>9}{'p90 ms':>9}"
        f"{'±CI':>7}{'est ms':>9}{'load ms':>9}{'mem MB':>8}{'file MB':>8}"
    ]
    for r in records:
        head = f"{r['device']:<9}{(r.get('method') or 'failed'):<10}{Path(r['bundle']).name[:15]:<16}{r['seq_len']:>4}"
        if r["status"] != "ok":
            lines.append(f"{head}  FAILED: {r['error']}")
            continue
        lat, mem = r["latency_ms"], r.get("memory", {})
        if r["method"] == "measured":
            ci = f"{relative_ci(lat):.1%}"
            cells = f"{lat['p50']:>9.3f}{lat['p90']:>9.3f}{ci:>7}{'':>9}{r['load_ms']:>9.1f}{mem['model_peak_delta_mb']:>8.1f}"
        else:
            cells = f"{'':>9}{'':>9}{'':>7}{lat['estimate']:>9.2f}{'':>9}{'':>8}"
        lines.append(f"{head}{cells}{mem.get('file_mb', 0):>8.2f}")
    return "\n".join(lines)
