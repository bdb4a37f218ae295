"""The adb transport (phones): push the bundle, run the agent on the phone, pull its record.

``connect:`` settings: serial (default: the only attached phone), adb (the adb binary,
default adb), workdir (default /data/local/tmp/pocketbert), python, and agent (a command
template, e.g. the Android demo's benchmark mode). A phone that drops off the bus mid-run
makes ``adb shell`` fail and is reported as failed. On the phone the bundle lands in
``workdir/bundle-<hash of its manifest>/bundle`` and the record beside it, so no name a
user chose reaches the phone's shell (and every value that does is quoted).
"""

from __future__ import annotations

import posixpath
import shlex
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbert.bundle import remote_name
from pocketbert.bundle_checks import regular_files
from pocketbert.core.errors import UserError
from pocketbert.lab.local import describe_exit, run_process
from pocketbert.lab.registry import Job, agent_command, parse_record, register_transport

if TYPE_CHECKING:  # devices imports the lab (its transports), never the other way
    from pocketbert.devices import Device


def _adb(device: Device, job: Job, args: list[str], what: str, ok: tuple[int, ...] = (0,)):
    c = device.connect
    argv = [str(c.get("adb", "adb"))] + (["-s", str(c["serial"])] if c.get("serial") else []) + args
    proc = run_process(device, argv, job, what)
    if proc.returncode not in ok:
        raise _dropped(device, what, proc)
    return proc


def _dropped(device: Device, what: str, proc) -> UserError:
    return UserError(f"device {device.id} dropped out during {what} ({describe_exit(proc)})")


@register_transport("adb")
def run(device: Device, job: Job) -> dict:
    files = regular_files(job.bundle)  # a link is refused before anything reaches the phone
    workdir = str(device.connect.get("workdir", "/data/local/tmp/pocketbert"))
    home = posixpath.join(workdir, remote_name(job.bundle))  # a hash, never a user's name
    remote, out = posixpath.join(home, "bundle"), posixpath.join(home, "record.json")
    # `adb shell` hands its words to the phone's shell: every value in it is quoted
    setup = f"rm -rf {shlex.quote(home)} && mkdir -p {shlex.quote(remote)}"
    _adb(device, job, ["shell", setup], "setting up")
    for rel, path in files.items():  # push and pull take paths as they are (no shell)
        _adb(device, job, ["push", str(path), posixpath.join(remote, rel)], "pushing the bundle")
    texts = posixpath.join(home, "texts.txt") if job.texts else None
    if texts:
        _adb(device, job, ["push", job.texts, texts], "pushing the sentences")
    # exit 2 is the agent's own failed record (e.g. no runtime there), exit 1 its bug record:
    # pull it and report it. adb itself also exits 1 when the phone is gone; then there is
    # no record to pull, and the measurement is what the phone dropped out of.
    measured = _adb(
        device,
        job,
        ["shell", agent_command(device, job, remote, out, texts)],
        "the measurement",
        ok=(0, 1, 2),
    )
    with tempfile.TemporaryDirectory(prefix="pocketbert-adb-") as tmp:
        local = Path(tmp) / "record.json"
        try:
            _adb(device, job, ["pull", out, str(local)], "pulling the result")
        except UserError:
            if measured.returncode == 1:
                raise _dropped(device, "the measurement", measured) from None
            raise
        text = local.read_text() if local.is_file() else ""
    return parse_record(device, text, "the record pulled from the phone was empty")
