"""The transport registry (one dict, one decorator) and the contract every transport keeps.

A transport is ``run(device, job) -> record``: it gets ``job.bundle`` onto the device, runs
the agent there in a fresh process and returns the agent's JSON record. It raises
``UserError`` when the device cannot be reached, lacks what the bundle needs, or drops out.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbert.core.errors import UserError

if TYPE_CHECKING:
    from pocketbert.devices import Device

DEFAULT_AGENT = "{python} -m pocketbert.profiler.agent {bundle} {args} --out {out}"


@dataclass(frozen=True)
class Job:
    bundle: Path  # the bundle directory on this machine
    runs: int = 50
    warmup: int = 5
    threads: int | None = None
    seq_len: int | None = None
    timeout: float = 600.0  # seconds for this device to finish the measurement

    def agent_args(self) -> list[str]:
        args = ["--runs", str(self.runs), "--warmup", str(self.warmup)]
        if self.threads:
            args += ["--threads", str(self.threads)]
        if self.seq_len:
            args += ["--seq-len", str(self.seq_len)]
        return args


Transport = Callable[["Device", Job], dict]
TRANSPORTS: dict[str, Transport] = {}


def register_transport(name: str) -> Callable[[Transport], Transport]:
    """Register ``run(device, job) -> record`` as the transport called ``name``."""

    def decorator(fn: Transport) -> Transport:
        TRANSPORTS[name] = fn
        return fn

    return decorator


def agent_command(device: Device, job: Job, bundle: str, out: str) -> str:
    """The shell command that runs the agent on ``device`` (its ``connect.agent`` may override)."""
    template = device.connect.get("agent") or DEFAULT_AGENT
    return template.format(
        python=device.connect.get("python", "python3"),
        bundle=shlex.quote(bundle),
        out=shlex.quote(out),
        args=" ".join(job.agent_args()),
    )


def parse_record(device: Device, text: str, how: str) -> dict:
    """The agent's JSON record from its output; a failed record becomes a UserError."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("status") == "failed":
                raise UserError(f"device {device.id}: {record.get('error', 'the agent failed')}")
            return record
    raise UserError(f"device {device.id} dropped out mid-run: {how}; no result came back")


def last_line(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
