"""The aarch64 wheels a board installs, fetched on the host into a cached folder.

A board's set is pocketbert's own core requirements plus its runtime for one format:
pocketbert's extra for that format (``pocketbert[onnx]``: onnxruntime, ``[tflite]``:
ai-edge-litert), unless the board's devices.yaml ``software:`` entry names what it runs
instead (rpi4: ``tflite: [tflite-runtime==2.14.0, numpy<2]``). pip fetches them for
aarch64 CPython 3.11 (``--only-binary=:all: --platform ... --target``) into a temporary
folder renamed when whole; a stamp with a digest of every file marks it done, and a set
whose files no longer match it is fetched again, with a line saying so.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

from pocketbert.boards.root import (
    PYTHON,
    check_tree,
    discard,
    emulation_dir,
    locked,
    staging,
    write_stamp,
)
from pocketbert.core.errors import UserError

# bookworm's glibc is 2.36: manylinux wheels up to that run in the emulated root.
PLATFORMS = ("manylinux2014_aarch64", *(f"manylinux_2_{v}_aarch64" for v in range(17, 37)))
EXTRAS = {"onnx": "onnx", "tflite": "tflite", "executorch": "executorch"}
# Why a format is not checked under emulation, where that is known before any download.
NOT_EMULATED = {
    "executorch": (
        "ExecuTorch bundles are not checked under emulation: executorch 1.5.1's Python runtime "
        "runs .pte files only through torch, and pip on this host cannot resolve executorch's "
        "aarch64 dependencies (its markers are evaluated for the host's x86_64, which asks for "
        "coremltools); check .pte bundles on the board itself"
    ),
}
PIP_TIMEOUT_S = 600


def _requirement_lines(extra: str | None) -> list[str]:
    try:
        lines = requires("pocketbert") or []
    except PackageNotFoundError as exc:
        raise UserError(
            "pocketbert's own requirements are not readable (it is not installed); "
            "install it with pip install -e . first"
        ) from exc
    out = []
    for line in lines:
        spec, _, marker = line.partition(";")
        marker = marker.replace(" ", "")
        if (not marker and extra is None) or (
            extra and marker in (f'extra=="{extra}"', f"extra=='{extra}'")
        ):
            out.append(spec.strip())
    return out


def requirements(fmt: str, software: dict) -> list[str]:
    """What a board installs to run ``fmt`` bundles: pocketbert's core requirements, then the
    board's own runtime list for ``fmt`` (devices.yaml ``software``), else pocketbert's extra."""
    if fmt in NOT_EMULATED:
        raise UserError(NOT_EMULATED[fmt])
    runtime = software.get(fmt)
    if runtime is None:
        runtime = _requirement_lines(EXTRAS[fmt])
    return [*_requirement_lines(None), *runtime]


def set_path(reqs: list[str], python: str = PYTHON) -> Path:
    key = json.dumps({"python": python, "reqs": reqs, "platforms": PLATFORMS})
    return emulation_dir() / f"wheels-py{python}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def ensure_wheels(
    reqs: list[str], python: str = PYTHON, say: Callable[[str], None] = print
) -> Path:
    """The cached aarch64 wheel set for ``reqs`` (fetched, or fetched again when corrupt)."""
    folder = set_path(reqs, python)
    with locked(folder):
        problem = check_tree(folder)
        if problem is None:
            return folder
        if problem != "missing":
            say(f"aarch64 wheel set {folder} is {problem}; fetching it again")
            discard(folder)
        fetch_wheels(reqs, folder, python, say)
    return folder


def pip_command(reqs: list[str], target: Path, python: str = PYTHON) -> list[str]:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-conflicts",
        "--disable-pip-version-check", "--no-compile", "--only-binary=:all:", *platforms,
        "--python-version", python, "--implementation", "cp",
        "--abi", f"cp{python.replace('.', '')}", "--target", str(target), *reqs,
    ]  # fmt: skip


def fetch_wheels(reqs: list[str], folder: Path, python: str, say: Callable[[str], None]) -> None:
    say(f"fetching aarch64 wheels for Python {python} ({', '.join(reqs)}) into {folder}")
    tmp = staging(folder)
    try:
        done = subprocess.run(
            pip_command(reqs, tmp, python), capture_output=True, text=True, timeout=PIP_TIMEOUT_S
        )
        if done.returncode != 0:
            raise UserError(_pip_failure(done.stderr, reqs, python))
        write_stamp(tmp, {"python": python, "requirements": reqs, "platforms": list(PLATFORMS)})
        tmp.replace(folder)
    except subprocess.TimeoutExpired as exc:
        raise UserError(
            f"pip did not fetch the aarch64 wheels ({', '.join(reqs)}) within {PIP_TIMEOUT_S} s; "
            "check the network or the package index"
        ) from exc
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    say(f"aarch64 wheels ready in {folder}")


def _pip_failure(stderr: str, reqs: list[str], python: str) -> str:
    """pip's refusal as one line: which requirement has no aarch64 wheel for ``python``."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip().startswith("ERROR:")]
    for line in lines:
        if "No matching distribution found for" in line:
            what = line.split("No matching distribution found for", 1)[1].strip()
            return (
                f"{what} has no aarch64 wheel for CPython {python} on the package index "
                f"(pip: {line.removeprefix('ERROR:').strip()}); the board cannot install it as "
                "listed: give its devices.yaml software entry a release that has one"
            )
    last = lines[-1] if lines else (stderr.strip().splitlines() or ["no output"])[-1]
    return f"pip could not fetch the aarch64 wheels ({', '.join(reqs)}): {last}"
