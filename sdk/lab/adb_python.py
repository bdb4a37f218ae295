"""The adb-python transport: for rooted boards and phones that have Python and pocketbert
installed. It pushes the bundle, runs ``pocketbert agent`` on the device through ``adb shell``
and pulls its record. Ordinary Android phones have no Python: use the ``adb`` transport (the
Android demo app's benchmark mode) for them.

``connect:`` settings: serial, adb (the adb binary, default adb), workdir (default
/data/local/tmp/pocketbert), python, and agent (a command template). A device that drops off the
bus mid-run makes ``adb shell`` fail and is reported as failed. On the device the bundle lands
in ``workdir/bundle-<hash of its manifest>/bundle`` and the record beside it, so no name a
user chose reaches the device's shell (and every value that does is quoted).
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
from pocketbert.lab.adb import adb_call, dropped
from pocketbert.lab.registry import Job, agent_command, parse_record, register_transport

if TYPE_CHECKING:  # devices imports the lab (its transports), never the other way
    from pocketbert.devices import Device

DEFAULT_WORKDIR = "/data/local/tmp/pocketbert"


@register_transport("adb-python")
def run(device: Device, job: Job) -> dict:
    files = regular_files(job.bundle)  # a link is refused before anything reaches the device
    serial = device.connect.get("serial")
    workdir = str(device.connect.get("workdir", DEFAULT_WORKDIR))
    home = posixpath.join(workdir, remote_name(job.bundle))  # a hash, never a user's name
    remote, out = posixpath.join(home, "bundle"), posixpath.join(home, "record.json")

    def adb(args: list[str], what: str, ok: tuple[int, ...] = (0,)):
        return adb_call(device, job, serial, args, what, ok)

    # `adb shell` hands its words to the device's shell: every value in it is quoted
    adb(["shell", f"rm -rf {shlex.quote(home)} && mkdir -p {shlex.quote(remote)}"], "setting up")
    for rel, path in files.items():  # push and pull take paths as they are (no shell)
        adb(["push", str(path), posixpath.join(remote, rel)], "pushing the bundle")
    texts = posixpath.join(home, "texts.txt") if job.texts else None
    if texts:
        adb(["push", job.texts, texts], "pushing the sentences")
    # exit 2 is the agent's own failed record (e.g. no runtime there), exit 1 its bug record:
    # pull it and report it. adb itself also exits 1 when the device is gone; then there is
    # no record to pull, and the measurement is what the device dropped out of.
    command = agent_command(device, job, remote, out, texts)
    measured = adb(["shell", command], "the measurement", ok=(0, 1, 2))
    with tempfile.TemporaryDirectory(prefix="pocketbert-adb-") as tmp:
        local = Path(tmp) / "record.json"
        try:
            adb(["pull", out, str(local)], "pulling the result")
        except UserError:
            if measured.returncode == 1:
                raise dropped(device, "the measurement", measured) from None
            raise
        text = local.read_text() if local.is_file() else ""
    return parse_record(device, text, "the record pulled from the device was empty")
