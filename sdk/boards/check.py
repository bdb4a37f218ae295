"""``pocketbert verify BUNDLE --on rpi5``: run a bundle on a board's own software, emulated.

The bundle runs through pocketbert's own torch-free code (``pocketbert.load(b).outputs``)
inside Debian's arm64 python3.11 under qemu-user (``pocketbert.boards.root``), with the
aarch64 wheels the board installs (``pocketbert.boards.wheels``), on a few sentences; its
outputs are compared with the host's run of the same bundle by the export gate's own
figures and rule (``pocketbert.verify``). This is a correctness check: under qemu a GEMM
runs ~1000x slower than on the board, so the time recorded is the check's own, on this
host, and never a figure for the board.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pocketbert.core.errors import UserError, choices, first_line

DEFAULT_TEXTS = 4  # sentences per check: enough for the figures, cheap under qemu
# The same file on two runtimes: besides the gate's rule (whose row-count floor lets a few
# texts through whatever they say), its outputs must point the host's way.
MIN_COSINE = 0.98
TIMEOUT_S = 1800
NOT_BOARD_TIME = "the check's own time on this host under qemu, not a figure for the board"


# What this check found a board's runtime cannot run, by (format, precision, requirement).
# The build refuses these combinations before any work; tests/test_board_emulation.py runs
# each one under emulation, so a runtime release that starts running the file fails it.
REFUSALS = {
    ("tflite", "int8-dynamic", "tflite-runtime==2.14.0"): (
        "tflite-runtime 2.14.0, which computes wrong outputs from pocketbert's int8 TFLite "
        "files (ai-edge-quantizer's int8 FULLY_CONNECTED and EMBEDDING_LOOKUP weights; its "
        "x86-64 build as much as its aarch64 one under qemu), which ai-edge-litert 2.3 runs right"
    ),
    ("tflite", "int8-static", "tflite-runtime==2.14.0"): (
        "tflite-runtime 2.14.0, which crashes (SIGSEGV in invoke, aarch64 under qemu) or "
        "computes wrong outputs from pocketbert's int8-static TFLite files, which "
        "ai-edge-litert 2.3 runs right"
    ),
}


def refusal(device, fmt: str, precision: str) -> str | None:
    """Why ``device``'s software cannot run ``fmt`` bundles at ``precision`` (REFUSALS)."""
    for requirement in device.software.get(fmt, []):
        reason = REFUSALS.get((fmt, precision, requirement.replace(" ", "")))
        if reason:
            return reason
    return None


def emulable(catalog: dict) -> list[str]:
    return sorted(d.id for d in catalog.values() if d.software)


def board(device_id: str, catalog_file: str | Path | None = None):
    """The catalog entry of a board that can be emulated, or a UserError naming those that can."""
    from pocketbert.devices import catalog_path, load_devices

    catalog = load_devices(catalog_path(catalog_file))
    if device_id not in catalog:
        raise UserError(
            f"no device '{device_id}' in the catalog; choose one of: {choices(catalog)}"
        )
    device = catalog[device_id]
    if not device.software:
        raise UserError(
            f"device '{device_id}' lists no software: entry in devices.yaml, so its Python cannot "
            f"be emulated; boards that can: {', '.join(emulable(catalog)) or 'none'}"
        )
    arch = device.cpu.get("arch")
    if arch != "aarch64":
        raise UserError(f"device '{device_id}' is {arch}; the emulated check runs aarch64 boards")
    return device


def sources(into: Path) -> Path:
    """pocketbert's torch-free packages (sdk as ``pocketbert``, runtimes inside it), copied
    for the emulated Python; the converters are left out (a board has no torch)."""
    import pocketbert
    import pocketbert.runtimes

    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    package = into / "pocketbert"
    shutil.copytree(Path(pocketbert.__file__).parent, package, ignore=skip)
    shutil.rmtree(package / "runtimes", ignore_errors=True)
    shutil.copytree(Path(pocketbert.runtimes.__file__).parent, package / "runtimes", ignore=skip)
    return into


def check_on_board(
    bundle: str | Path,
    device_id: str,
    *,
    texts: list[str] | None = None,
    catalog: str | Path | None = None,
    say: Callable[[str], None] = print,
    timeout_s: float = TIMEOUT_S,
) -> dict:
    """Run ``bundle`` on ``device_id``'s emulated software; the record of what happened.

    ``status``: ``passed`` (ran, and its outputs pass the export gate's rule against the
    host's), ``failed`` (ran, and missed it) or ``does not run`` (the board's runtime refused
    the file: ``error``). Bad input (an unknown board, a format it does not run, no qemu, a
    wheel it cannot have) is a UserError before anything runs.
    """
    from pocketbert.boards.root import ensure_root, python_command, qemu_path
    from pocketbert.boards.wheels import ensure_wheels, requirements
    from pocketbert.bundle import open_bundle
    from pocketbert.core.texts import BUILTIN

    started = time.perf_counter()
    device = board(device_id, catalog)
    with open_bundle(bundle) as opened:
        manifest = opened.manifest
    fmt = manifest["format"]
    if fmt not in device.formats:
        raise UserError(
            f"{device_id} does not run {fmt} bundles (devices.yaml formats: "
            f"{', '.join(device.formats)})"
        )
    qemu_path()  # before any download: says what to install
    reqs = requirements(fmt, device.software)
    python = device.software.get("python", "3.11")
    root = ensure_root(python, say)
    wheels = ensure_wheels(reqs, python, say)
    texts = list(texts or BUILTIN[:DEFAULT_TEXTS])
    host = _host_outputs(bundle, texts)
    record = {
        "device": device_id,
        "bundle": str(bundle),
        "format": fmt,
        "precision": manifest["precision"],
        "requirements": reqs,
        "texts": len(texts),
        "emulation": f"qemu-user aarch64 ({device.cpu.get('core') or 'default cpu'}), Debian bookworm python{python}",
    }
    with tempfile.TemporaryDirectory(prefix="pocketbert-qemu-") as scratch:
        work = Path(scratch)
        path = Path(bundle).resolve()
        (work / "texts.json").write_text(json.dumps(texts))
        src = sources(work / "src")
        env = {
            "PYTHONPATH": f"{src}:{wheels}",
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": str(work),
            "LANG": "C.UTF-8",
            "PATH": "/usr/bin:/bin",
            "OMP_NUM_THREADS": "1",
        }
        core = device.cpu.get("core")
        command = [*python_command(root, core), "-m", "pocketbert.boards.child", str(path)]
        command += [str(work / n) for n in ("texts.json", "out.npy", "fault.txt")]
        say(f"running {path.name} on emulated {device_id} software ({', '.join(reqs)})")
        try:
            done = subprocess.run(
                command, env=env, cwd=work, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            return _finish(
                record,
                started,
                status="does not run",
                error=f"no answer within {timeout_s:.0f} s under qemu",
            )
        if done.returncode != 0 or not (work / "out.npy").is_file():
            fault = work / "fault.txt"
            trace = fault.read_text(errors="replace") if fault.is_file() else ""
            return _finish(record, started, status="does not run", error=_failure(done, trace))
        board_out = np.load(work / "out.npy")
        record["software"] = json.loads(done.stdout.strip().splitlines()[-1])
    return _finish(record, started, **_compare(host, board_out, manifest))


def _host_outputs(bundle: str | Path, texts: list[str]) -> np.ndarray:
    from pocketbert.predict import load

    with load(bundle, threads=1) as predictor:
        return predictor.outputs(texts)


def _compare(host: np.ndarray, board_out: np.ndarray, manifest: dict) -> dict:
    """The export gate's figures and rule, the host's run standing in for torch."""
    from pocketbert.converters.quantization import as_config
    from pocketbert.verify import gate, parity

    if board_out.shape != host.shape:
        return {
            "status": "failed",
            "error": f"the board's outputs have shape {list(board_out.shape)}, the host's {list(host.shape)}",
        }
    config = as_config(manifest["precision"])
    task = manifest["task"]
    figures = parity(host, board_out, task, near_tie_margin=config.near_tie_margin)
    passed, rule = gate(figures, config, task)
    if "mean_cosine" not in rule:
        passed = passed and figures["mean_cosine"] >= MIN_COSINE
        rule = f"{rule}, and mean_cosine >= {MIN_COSINE}"
    return {"status": "passed" if passed else "failed", "parity": {**figures, "gate": rule}}


def _failure(done: subprocess.CompletedProcess, trace: str = "") -> str:
    """The runtime's own complaint: the last exception line of the child's traceback, or
    where it crashed (``trace``: faulthandler's dump)."""
    lines = [ln.strip() for ln in (done.stderr or "").splitlines() if ln.strip()]
    errors = [
        ln for ln in lines if ":" in ln and ln.split(":", 1)[0].endswith(("Error", "Exception"))
    ]
    if errors:
        return errors[-1][:400]
    dumped = [ln.strip() for ln in trace.splitlines()]
    frames = [ln for ln in dumped if ln.startswith("File ")]
    if frames:  # faulthandler's dump, innermost frame first
        where = frames[0].split('"')[1] if '"' in frames[0] else frames[0]
        inside = "/".join(Path(where).parts[-2:])
        fault = next((ln for ln in dumped if ln.startswith("Fatal Python error")), "a crash")
        what = fault.removeprefix("Fatal Python error: ")
        return f"{what} in {inside} ({frames[0].rsplit(' in ', 1)[-1]}) under qemu"
    if done.returncode < 0:
        return f"the emulated Python died (signal {-done.returncode})"
    return first_line(Exception(lines[-1] if lines else f"exit code {done.returncode}"))[:400]


def _finish(record: dict, started: float, **fields) -> dict:
    return {
        **record,
        **fields,
        "check_s": round(time.perf_counter() - started, 1),
        "check_s_is": NOT_BOARD_TIME,
    }
