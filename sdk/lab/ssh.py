"""The ssh transport (boards): stream the bundle over ssh, run the agent there, read its record.

``connect:`` settings: host (required), user, port, identity (a private key file),
known_hosts (a known_hosts file), python (default python3), workdir (default
pocketbert-lab, relative to the login directory), agent (a command template).
Keys only (BatchMode): a device that would ask for a password is reported, not waited on.
The bundle (regular files only) lands in ``workdir/bundle-<hash of its manifest>/bundle``
and the record beside it; every value in a remote command is quoted.
"""

from __future__ import annotations

import io
import shlex
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbert.bundle import remote_name
from pocketbert.bundle_checks import regular_files
from pocketbert.core.errors import UserError
from pocketbert.lab.local import describe_exit, run_process
from pocketbert.lab.registry import Job, agent_command, last_line, parse_record, register_transport

if TYPE_CHECKING:  # devices imports the lab (its transports), never the other way
    from pocketbert.devices import Device

CONNECT_TIMEOUT_S = 10
TEXTS = "texts.txt"  # where a job's sentence file lands, beside bundle/
UNREACHABLE = 255  # ssh's own exit status for connection and authentication failures


def ssh_argv(device: Device) -> list[str]:
    c = device.connect
    argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
    argv += ["-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR"]
    if c.get("known_hosts"):
        argv += ["-o", f"UserKnownHostsFile={c['known_hosts']}"]
    if c.get("identity"):
        argv += ["-i", str(c["identity"]), "-o", "IdentitiesOnly=yes"]
    if c.get("port"):
        argv += ["-p", str(c["port"])]
    target = f"{c['user']}@{c['host']}" if c.get("user") else str(c["host"])
    return [*argv, target]


def tar_bundle(bundle: Path, texts: str | None = None) -> bytes:
    """The bundle's regular files as a tar under ``bundle/`` (and a sentence file as
    ``texts.txt`` beside it); a link is refused, not packed."""
    buf = io.BytesIO()
    members = {f"bundle/{rel}": path for rel, path in regular_files(bundle).items()}
    if texts:
        members[TEXTS] = Path(texts)  # the profiler's own copy of the user's sentences
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for arcname, path in members.items():
            rel = arcname.removeprefix("bundle/")
            info = tf.gettarinfo(str(path), arcname=arcname)
            if not info.isreg():  # replaced since it was checked
                raise UserError(f"bundle '{bundle}': {rel} is no longer a regular file")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with path.open("rb") as fh:
                tf.addfile(info, fh)
    return buf.getvalue()


def _ssh(device: Device, job: Job, command: str, what: str, stdin: bytes | None = None) -> str:
    proc = run_process(device, [*ssh_argv(device), command], job, what, input=stdin)
    if proc.returncode == UNREACHABLE:
        c = device.connect
        where, why = f"{c['host']}:{c.get('port', 22)}", last_line(proc.stderr)
        if stdin is None:  # the connection worked a moment ago, for the copy
            raise UserError(
                f"device {device.id} dropped out during {what}: lost ssh to {where} ({why})"
            )
        raise UserError(
            f"device {device.id}: cannot reach {where} over ssh ({why}); "
            "check that it is on and that its key is authorised"
        )
    if proc.returncode != 0 and stdin is not None:
        raise UserError(f"device {device.id}: copying the bundle failed ({describe_exit(proc)})")
    return (
        proc.stdout if proc.returncode == 0 or proc.stdout.strip() else f"\n{describe_exit(proc)}"
    )


@register_transport("ssh")
def run(device: Device, job: Job) -> dict:
    payload = tar_bundle(job.bundle, job.texts)  # before any connection: a bad bundle sends nothing
    workdir = str(device.connect.get("workdir", "pocketbert-lab"))
    home = f"{workdir}/{remote_name(job.bundle)}"  # a hash, never a user-chosen name
    q = shlex.quote(home)
    setup = f"rm -rf {q} && mkdir -p {q} && tar -xf - -C {q}"
    _ssh(device, job, setup, "copying the bundle", stdin=payload)
    texts = f"{home}/{TEXTS}" if job.texts else None
    command = agent_command(device, job, f"{home}/bundle", f"{home}/record.json", texts)
    output = _ssh(device, job, command, "the measurement")
    return parse_record(device, output, f"the ssh session ended ({last_line(output)})")
