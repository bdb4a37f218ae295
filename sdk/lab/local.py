"""The local transport: the agent in a fresh Python process on this machine."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbert.core.errors import UserError
from pocketbert.lab.registry import Job, last_line, parse_record, register_transport

if TYPE_CHECKING:  # devices imports the lab (its transports), never the other way
    from pocketbert.devices import Device


def run_process(
    device: Device, argv: list[str], job: Job, what: str, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``argv`` under the job's timeout; a timeout or a kill is the device's failure."""
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=job.timeout, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise UserError(
            f"device {device.id} timed out after {job.timeout:g}s during {what}"
        ) from exc
    except FileNotFoundError as exc:
        raise UserError(
            f"device {device.id}: '{argv[0]}' is not installed here; {what} needs it"
        ) from exc
    proc.stdout = proc.stdout.decode(errors="replace")
    proc.stderr = proc.stderr.decode(errors="replace")
    return proc


def describe_exit(proc: subprocess.CompletedProcess) -> str:
    if proc.returncode < 0:
        return f"killed by {signal.Signals(-proc.returncode).name}"
    return f"exit {proc.returncode}: {last_line(proc.stderr)}"


@register_transport("local")
def run(device: Device, job: Job) -> dict:
    with tempfile.TemporaryDirectory(prefix="pocketbert-agent-") as tmp:
        out = Path(tmp) / "record.json"
        argv = [
            sys.executable,
            "-m",
            "pocketbert.profiler.agent",
            job.target(str(job.bundle)),
            *job.agent_args(),
            "--out",
            str(out),
        ]
        proc = run_process(device, argv, job, "the measurement")
        return parse_record(device, proc.stdout, f"the agent process ended ({describe_exit(proc)})")
