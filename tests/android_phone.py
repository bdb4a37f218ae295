"""A stand-in `adb` and phone for the adb transport's tests: it records every call's argv, keeps
the phone's files under a folder here, and plays the app's part: `am start` runs the app's page
in headless Chromium with the app's Java Bridge (pocketbert.android.page), which writes the record
where the app would. Options: the phones attached, the app version installed, and a phone that
drops off the bus after some seconds of the measurement."""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

SERIAL = "emulator-5554"


@dataclass
class Phone:
    adb: Path  # the stand-in adb
    root: Path  # the phone's "/" on this machine
    log: Path  # one JSON argv a line

    def calls(self) -> list[list[str]]:
        if not self.log.is_file():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def path(self, remote: str) -> Path:
        return self.root / remote.lstrip("/")


SCRIPT = r"""
import json, os, re, shlex, shutil, signal, subprocess, sys, time
CFG = json.load(open(CONFIG))
ROOT, STATE = CFG["root"], os.path.join(CFG["root"], ".state.json")
state = json.load(open(STATE)) if os.path.exists(STATE) else {"installed": CFG["installed"]}
def save():
    json.dump(state, open(STATE, "w"))
def local(p):
    return os.path.join(ROOT, p.lstrip("/"))
args = sys.argv[1:]
with open(CFG["log"], "a") as fh:
    fh.write(json.dumps(args) + "\n")
serials = [] if state.get("gone") else CFG["serials"]
if args == ["devices"]:
    print("List of devices attached")
    for s in serials:
        print(s + "\tdevice")
    print()
    sys.exit(0)
serial = None
if args[:1] == ["-s"]:
    serial, args = args[1], args[2:]
if serial is None and len(serials) > 1:
    sys.exit("adb: more than one device/emulator")
if (serial and serial not in serials) or not serials:
    sys.exit(f"error: device '{serial or ''}' not found")
cmd = args[0]
if cmd == "push":
    os.makedirs(os.path.dirname(local(args[2])), exist_ok=True)
    shutil.copy(args[1], local(args[2]))
    sys.exit(0)
if cmd == "pull":
    if not os.path.isfile(local(args[1])):
        sys.exit(f"adb: error: failed to stat remote object '{args[1]}': No such file or directory")
    shutil.copy(local(args[1]), args[2])
    sys.exit(0)
if cmd == "install":
    out = subprocess.run(["aapt2", "dump", "badging", args[-1]], capture_output=True, text=True).stdout
    found = re.search(r"versionCode='(\d+)'", out)
    if not found:
        print("Failure [INSTALL_FAILED_INVALID_APK]")
        sys.exit(1)
    state["installed"] = int(found.group(1))
    save()
    print("Success")
    sys.exit(0)
line = " ".join(args[1:])  # as the real adb: the words go to the phone's `sh -c`
if line.startswith("dumpsys package "):
    if state["installed"] is not None:
        print(f"    versionCode={state['installed']} minSdk=21 targetSdk=23")
    sys.exit(0)
if line.startswith("am start"):
    words = shlex.split(line)
    extras = {words[i + 1]: words[i + 2] for i, w in enumerate(words) if w in ("--es", "--ei")}
    if state["installed"] is None:
        print("Error: Activity class {org.pocketbert.demo/org.pocketbert.demo.MainActivity} does not exist.")
        sys.exit(0)
    record = local("/sdcard/Android/data/org.pocketbert.demo/files/record.json")
    os.makedirs(os.path.dirname(record), exist_ok=True)
    app = (
        "import sys; from pocketbert.android.page import run_page; "
        "run_page(sys.argv[1], mode='bench', runs=int(sys.argv[2]), warmup=int(sys.argv[3]), "
        "seq_len=int(sys.argv[4]), record_out=sys.argv[5])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", app, local(extras["bundle"]), extras["runs"], extras.get("warmup", "5"),
         extras.get("seq", "0"), record],
        start_new_session=True, stdout=open(local("/app.log"), "a"), stderr=subprocess.STDOUT,
    )
    state["app"] = proc.pid
    save()
    print("Starting: Intent { cmp=org.pocketbert.demo/.MainActivity (has extras) }")
    sys.exit(0)
line = re.sub(r"(?<![\w/.])/(data|sdcard)/", ROOT.replace("\\", "/") + r"/\1/", line)
proc = subprocess.Popen(["sh", "-c", line], start_new_session=True)
try:
    sys.exit(proc.wait(timeout=CFG["drop_after"]))
except subprocess.TimeoutExpired:  # the phone falls off the bus: the app and adb's link go
    os.killpg(proc.pid, signal.SIGKILL)
    if state.get("app"):
        try:
            os.killpg(state["app"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    state["gone"] = True
    save()
    sys.exit(f"error: device '{serial}' not found")
"""


def stand_in_phone(
    tmp_path: Path,
    *,
    serials: tuple[str, ...] = (SERIAL,),
    installed: int | None = 1,
    drop_after: float | None = None,
    name: str = "adb",
) -> Phone:
    """A stand-in `adb` at ``tmp_path/name`` over a phone under ``tmp_path/name-phone``."""
    root = tmp_path / f"{name}-phone"
    root.mkdir(parents=True)
    log = tmp_path / f"{name}.jsonl"
    config = tmp_path / f"{name}.json"
    config.write_text(
        json.dumps(
            {
                "root": str(root),
                "log": str(log),
                "serials": list(serials),
                "installed": installed,
                "drop_after": drop_after,
            }
        )
    )
    script = tmp_path / name
    script.write_text(f"#!{sys.executable}\nCONFIG = {str(config)!r}\n" + textwrap.dedent(SCRIPT))
    script.chmod(0o755)
    return Phone(script, root, log)
