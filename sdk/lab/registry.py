"""The transport registry (one dict, one decorator) and the contract every transport keeps.

A transport is ``run(device, job) -> record``: it gets ``job.bundle`` (a directory) onto the
device, runs the agent there in a fresh process on ``job.target(copied_dir)`` and returns the
agent's JSON record. It raises ``UserError`` when the device cannot be reached, lacks what
the bundle needs, or drops out, and :class:`AgentBug` when the agent hit a bug there.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbert.core.errors import UserError

if TYPE_CHECKING:
    from pocketbert.devices import Device

DEFAULT_AGENT = "{python} -m pocketbert.profiler.agent {bundle} {args} --out {out}"


class AgentBug(Exception):
    """The agent on a device hit a bug (its record says ``bug: true``): not the device's fault."""

    def __init__(self, record: dict) -> None:
        super().__init__(record.get("error") or "the agent hit a bug")
        self.record = record


@dataclass(frozen=True)
class Job:
    bundle: Path  # the directory to copy to the device: a bundle, or one bare model file
    runs: int = 50
    warmup: int = 5
    threads: int | None = None
    seq_len: int | None = None
    timeout: float = 600.0  # seconds for this device to finish the measurement
    model_file: str | None = None  # set when ``bundle`` holds only this bare model file
    texts: str | None = None  # sentences to time predict() on (a file on this machine)
    text_passes: int = 3

    def target(self, copied: str) -> str:
        """What the agent opens, given where ``bundle`` was copied to (a POSIX path)."""
        return posixpath.join(copied, self.model_file) if self.model_file else copied

    def agent_args(self, texts_at: str | None = None) -> list[str]:
        """The agent's flags; ``texts_at``: where the sentence file was copied to, if it was."""
        args = ["--runs", str(self.runs), "--warmup", str(self.warmup)]
        if self.threads:
            args += ["--threads", str(self.threads)]
        if self.seq_len:
            args += ["--seq-len", str(self.seq_len)]
        if self.texts:
            args += ["--texts", texts_at or self.texts, "--texts-passes", str(self.text_passes)]
        return args


Transport = Callable[["Device", Job], dict]
TRANSPORTS: dict[str, Transport] = {}


def register_transport(name: str) -> Callable[[Transport], Transport]:
    """Register ``run(device, job) -> record`` as the transport called ``name``."""

    def decorator(fn: Transport) -> Transport:
        TRANSPORTS[name] = fn
        return fn

    return decorator


def agent_command(device: Device, job: Job, bundle: str, out: str, texts: str | None = None) -> str:
    """The shell command that runs the agent on ``device`` (its ``connect.agent`` may override);
    ``texts``: where the job's sentence file was copied to there."""
    template = device.connect.get("agent") or DEFAULT_AGENT
    return template.format(
        python=device.connect.get("python", "python3"),
        bundle=shlex.quote(job.target(bundle)),
        out=shlex.quote(out),
        args=" ".join(shlex.quote(a) for a in job.agent_args(texts)),
    )


def parse_record(device: Device, text: str, how: str) -> dict:
    """The agent's JSON record from its output; a failed record is a UserError, a bug AgentBug."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("bug"):
                raise AgentBug(record)
            if record.get("status") == "failed":
                raise UserError(f"device {device.id}: {record.get('error', 'the agent failed')}")
            return record
    raise UserError(f"device {device.id} dropped out mid-run: {how}; no result came back")


def last_line(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
