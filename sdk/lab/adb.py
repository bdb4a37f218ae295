"""The adb transport (Android phones): the Android demo app's benchmark mode.

It picks the phone (``connect.serial``, else the only one ``adb devices`` lists), installs the
app when it is missing or older than this pocketbert drives (``connect.apk``: an APK made by
``android_demo/build.sh``), pushes the bundle to ``workdir/bundle-<hash>/bundle``, starts
``am start -n org.pocketbert.demo/.MainActivity --es bundle PATH --ei runs N --ei warmup K``,
waits for the app's record (the device's timeout), pulls it and checks it is this bundle's.
The app runs ONNX bundles with onnxruntime-web (wasm, one thread) in a WebView and tokenizes
WordPiece in Java. Phones that have Python (rooted boards) can use ``adb-python`` instead.

``connect:`` settings: serial, adb (the adb binary, default adb), workdir (default
/data/local/tmp/pocketbert), apk. A phone that drops off the bus mid-run makes adb fail
and is reported as failed.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbert.android.toolchain import ACTIVITY, APP_VERSION, PACKAGE, RECORD, check_app_bundle
from pocketbert.bundle import remote_name
from pocketbert.bundle_checks import regular_files
from pocketbert.core.errors import UserError
from pocketbert.lab.local import describe_exit, run_process
from pocketbert.lab.registry import Job, last_line, parse_record, register_transport

if TYPE_CHECKING:  # devices imports the lab (its transports), never the other way
    from pocketbert.devices import Device

DEFAULT_WORKDIR = "/data/local/tmp/pocketbert"
BUILD = "build it with android_demo/build.sh BUNDLE app.apk and set connect.apk to it"


def adb_call(
    device: Device,
    job: Job,
    serial: str | None,
    args: list[str],
    what: str,
    ok: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess:
    argv = [str(device.connect.get("adb", "adb"))] + (["-s", str(serial)] if serial else []) + args
    proc = run_process(device, argv, job, what)
    if proc.returncode not in ok:
        raise dropped(device, what, proc)
    return proc


def dropped(device: Device, what: str, proc) -> UserError:
    return UserError(f"device {device.id} dropped out during {what} ({describe_exit(proc)})")


def pick_phone(device: Device, job: Job) -> str:
    """The serial to talk to: connect.serial if that phone is attached, else the only one."""
    proc = adb_call(device, job, None, ["devices"], "listing phones (adb devices)")
    states = {}
    for line in proc.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0]] = parts[1]
    listed = ", ".join(f"{s} ({st})" for s, st in states.items()) or "none"
    serial = device.connect.get("serial")
    if serial:
        serial = str(serial)
        if serial not in states:
            raise UserError(
                f"device {device.id}: phone {serial} is not attached (adb devices lists: {listed})"
            )
    else:
        if not states:
            raise UserError(
                f"device {device.id}: no phone attached (adb devices lists none); connect one "
                "with USB debugging on"
            )
        if len(states) > 1:
            raise UserError(
                f"device {device.id}: {len(states)} phones attached ({', '.join(states)}) and "
                "no serial; set connect.serial in devices.yaml to one of them"
            )
        serial = next(iter(states))
    if states[serial] != "device":
        raise UserError(
            f"device {device.id}: phone {serial} is {states[serial]}; unlock it and accept the "
            "USB debugging prompt"
        )
    return serial


def check_bundle(device: Device, job: Job) -> dict:
    """The host-side checks, before anything reaches the phone: a bundle (not a bare file),
    hashes that match, a format and a tokenizer the app runs. Returns the manifest."""
    if job.model_file:
        raise UserError(
            f"device {device.id}: the Android app runs bundles (model, tokenizer, labels), not a "
            f"bare {Path(job.model_file).suffix} file; export a bundle with --format onnx"
        )
    if job.texts:
        raise UserError(
            f"device {device.id}: the Android app times the model at one length; it takes no "
            "sentence file (drop --texts for this device)"
        )
    try:
        return check_app_bundle(job.bundle)
    except UserError as exc:
        raise UserError(f"device {device.id}: {exc}") from None


def installed_version(device: Device, job: Job, serial: str) -> int | None:
    proc = adb_call(
        device, job, serial, ["shell", f"dumpsys package {PACKAGE}"], "asking for the app"
    )
    found = re.search(r"versionCode=(\d+)", proc.stdout)
    return int(found.group(1)) if found else None


def ensure_app(device: Device, job: Job, serial: str) -> None:
    """Install the APK (connect.apk) when the app is missing or too old; else say what to do."""
    version = installed_version(device, job, serial)
    if version is not None and version >= APP_VERSION:
        return
    have = "no pocketbert demo app" if version is None else f"the demo app version {version}"
    apk = device.connect.get("apk")
    if not apk or not Path(str(apk)).is_file():
        missing = f" ({apk} does not exist)" if apk else ""
        raise UserError(
            f"device {device.id}: phone {serial} has {have}; this pocketbert needs version "
            f"{APP_VERSION} or later: {BUILD}{missing}"
        )
    proc = adb_call(
        device, job, serial, ["install", "-r", str(apk)], "installing the app", ok=(0, 1)
    )
    if proc.returncode != 0 or "Failure" in proc.stdout:
        raise UserError(
            f"device {device.id}: installing {apk} failed ({last_line(proc.stdout + proc.stderr)})"
        )
    version = installed_version(device, job, serial)
    if version is None or version < APP_VERSION:
        raise UserError(
            f"device {device.id}: {apk} installed version {version}, older than {APP_VERSION}; "
            f"{BUILD}"
        )


@register_transport("adb")
def run(device: Device, job: Job) -> dict:
    files = regular_files(job.bundle)  # a link is refused before anything reaches the phone
    manifest = check_bundle(device, job)
    serial = pick_phone(device, job)

    def adb(args: list[str], what: str, ok: tuple[int, ...] = (0,), within: Job = job):
        return adb_call(device, within, serial, args, what, ok)

    ensure_app(device, job, serial)
    workdir = str(device.connect.get("workdir", DEFAULT_WORKDIR))
    home = posixpath.join(workdir, remote_name(job.bundle))  # a hash, never a user's name
    remote = posixpath.join(home, "bundle")
    # `adb shell` hands its words to the phone's shell: every value in it is quoted
    adb(["shell", f"rm -rf {shlex.quote(home)} && mkdir -p {shlex.quote(remote)}"], "setting up")
    for rel, path in files.items():  # push and pull take paths as they are (no shell)
        adb(["push", str(path), posixpath.join(remote, rel)], "pushing the bundle")
    adb(["shell", f"rm -f {RECORD}"], "setting up")
    extras = [
        "--es",
        "bundle",
        remote,
        "--ei",
        "runs",
        str(job.runs),
        "--ei",
        "warmup",
        str(job.warmup),
    ]
    if job.seq_len:
        extras += ["--ei", "seq", str(job.seq_len)]
    start = " ".join(shlex.quote(a) for a in ["am", "start", "-S", "-n", ACTIVITY, *extras])
    started = adb(["shell", start], "starting the app")
    if "Error" in started.stdout or "Exception" in started.stdout:
        raise UserError(f"device {device.id}: the app did not start ({last_line(started.stdout)})")
    seconds = max(1, int(job.timeout))
    wait = (
        f"i=0; while [ ! -f {RECORD} ] && [ $i -lt {seconds} ]; do sleep 1; i=$((i+1)); done; "
        f"test -f {RECORD}"
    )
    waited = adb(
        ["shell", wait], "the measurement", ok=(0, 1), within=replace(job, timeout=job.timeout + 30)
    )
    if waited.returncode != 0:
        if waited.stderr.strip():  # adb's own words: the phone went away
            raise dropped(device, "the measurement", waited)
        raise UserError(
            f"device {device.id}: the app wrote no record within {seconds}s; see why with "
            f"adb -s {serial} logcat -s pocketbert"
        )
    with tempfile.TemporaryDirectory(prefix="pocketbert-adb-") as tmp:
        local = Path(tmp) / "record.json"
        adb(["pull", RECORD, str(local)], "pulling the result")
        text = local.read_text(encoding="utf-8") if local.is_file() else ""
    record = parse_record(device, text, "the record pulled from the phone was empty")
    want = manifest["files"].get(manifest["model_file"])
    if record.get("model_sha256") != want:
        raise UserError(
            f"device {device.id}: the app's record is for another model file; run again"
        )
    return record
