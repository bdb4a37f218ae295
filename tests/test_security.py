"""A bundle cannot be turned against its user: no shell injection through the names it
carries, no writes through links, no files outside it, no manifest edited behind its back."""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from test_lab import catalog, entry, stand_in_adb

from pocketbert.bundle import open_bundle, remote_name, write_manifest, zip_bundle
from pocketbert.bundle_checks import manifest_digest
from pocketbert.cli import main
from pocketbert.core.errors import UserError
from pocketbert.devices import Device
from pocketbert.lab import TRANSPORTS
from pocketbert.lab.registry import Job
from pocketbert.lab.ssh import tar_bundle
from pocketbert.profiler.run import profile

HOSTILE = "it's a b;touch PWNED;'x"


def copy_bundle(src: Path, tmp_path: Path, name: str = "bundle") -> Path:
    dest = tmp_path / name
    shutil.copytree(src, dest)
    return dest


def edit_manifest(bundle: Path, *, rehash: bool, **changes) -> None:
    """Change manifest fields; ``rehash`` recomputes files and the digest, as a careful
    forger (or a buggy writer) would, so only the field checks stand in the way."""
    m = json.loads((bundle / "manifest.json").read_text())
    m.update(changes)
    if rehash == "files":  # keep 'files' as given, recompute only the digest
        m["manifest_sha256"] = manifest_digest(m)
    elif rehash:
        write_manifest(bundle, m)
        return
    (bundle / "manifest.json").write_text(json.dumps(m, indent=2))


def cli_error(capsys, *argv) -> str:
    """Run the CLI; it must exit 2 with one line on stderr and no traceback. The line."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("pocketbert: error:"), err
    return err


def adb_phone(tmp_path: Path, workdir: Path, log: Path, sandbox: Path) -> Path:
    adb = stand_in_adb(tmp_path, log=log, cwd=sandbox)
    return catalog(
        tmp_path,
        entry("phone", "adb-python", adb=str(adb), workdir=str(workdir), python=sys.executable),
    )


# -- 1. adb shell injection ----------------------------------------------------------------


def test_adb_transport_runs_no_injected_command_when_bundle_and_workdir_names_are_hostile(
    onnx_bundle, tmp_path
):
    bundle = copy_bundle(onnx_bundle, tmp_path, HOSTILE)
    sandbox, log = tmp_path / "sandbox", tmp_path / "adb.jsonl"
    sandbox.mkdir()
    phone = tmp_path / "phone it's;touch PWNED2;'"
    path = adb_phone(tmp_path, phone, log, sandbox)
    (record,) = profile([bundle], ["phone"], runs=2, warmup=0, catalog=path, store=None, quiet=True)
    created = [p.name for p in tmp_path.rglob("PWNED*")] + [p.name for p in Path().glob("PWNED*")]
    assert created == []
    assert record["status"] == "ok", record.get("error")
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    shell = [argv[argv.index("shell") + 1 :] for argv in calls if "shell" in argv]
    assert len(shell) == 2 and all(HOSTILE not in " ".join(words) for words in shell)
    assert (phone / remote_name(bundle) / "bundle" / "model.onnx").is_file()
    assert (phone / remote_name(bundle) / "record.json").is_file()


def stand_in_ssh(bin_dir: Path, sandbox: Path) -> Path:
    """An `ssh` that runs the remote command with this machine's `sh -c` (in ``sandbox``), as
    sshd would hand it to the login shell: its words joined by spaces."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "ssh"
    script.write_text(
        f"#!{sys.executable}\n"
        "import subprocess, sys\n"
        "args = sys.argv[1:]\n"
        "while args[0] in ('-o', '-i', '-p'):\n"
        "    args = args[2:]\n"
        f"sys.exit(subprocess.call(['sh', '-c', ' '.join(args[1:])], cwd={str(sandbox)!r}))\n"
    )
    script.chmod(0o755)
    return script


def test_ssh_transport_runs_no_injected_command_when_bundle_and_workdir_names_are_hostile(
    onnx_bundle, tmp_path, monkeypatch
):
    bundle = copy_bundle(onnx_bundle, tmp_path, HOSTILE)
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    ssh = stand_in_ssh(tmp_path / "bin", sandbox)
    monkeypatch.setenv("PATH", f"{ssh.parent}{os.pathsep}{os.environ['PATH']}")
    board = tmp_path / "board it's;touch PWNED2;'"
    path = catalog(
        tmp_path, entry("pi", "ssh", host="pi", workdir=str(board), python=sys.executable)
    )
    (record,) = profile([bundle], ["pi"], runs=2, warmup=0, catalog=path, store=None, quiet=True)
    assert [p.name for p in tmp_path.rglob("PWNED*")] == []
    assert record["status"] == "ok", record.get("error")
    assert (board / remote_name(bundle) / "bundle" / "model.onnx").is_file()
    assert (board / remote_name(bundle) / "record.json").is_file()


# -- 2. links --------------------------------------------------------------------------------


@pytest.fixture
def linked_bundle(onnx_bundle, tmp_path) -> Path:
    bundle = copy_bundle(onnx_bundle, tmp_path / "lab" / "work")
    (bundle / "record.json").symlink_to("../../VICTIM")
    return bundle


def test_ssh_packing_refuses_a_link_and_names_it(linked_bundle):
    with pytest.raises(UserError, match=r"symbolic link, record\.json -> \.\./\.\./VICTIM"):
        tar_bundle(linked_bundle)


def test_transports_send_nothing_when_the_bundle_holds_a_link(linked_bundle, tmp_path, monkeypatch):
    log = tmp_path / "calls.jsonl"
    fake_ssh = tmp_path / "bin" / "ssh"
    fake_ssh.parent.mkdir()
    fake_ssh.write_text(f"#!/bin/sh\necho \"$@\" >> '{log}'\n")
    fake_ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_ssh.parent}{os.pathsep}{os.environ['PATH']}")
    adb = stand_in_adb(tmp_path, log=log)
    job = Job(linked_bundle, runs=1, warmup=0)
    board = Device("pi", "board", "ssh", ("onnx",), ("onnxruntime",), connect={"host": "pi"})
    phone = Device("ph", "phone", "adb", ("onnx",), ("onnxruntime",), connect={"adb": str(adb)})
    rooted = Device("pr", "phone", "adb-python", ("onnx",), ("onnxruntime",), {"adb": str(adb)})
    for device in (board, phone, rooted):
        with pytest.raises(UserError, match="bundles carry regular files only"):
            TRANSPORTS[device.transport](device, job)
    assert not log.exists()


def test_open_bundle_and_profile_refuse_a_bundle_holding_a_link(linked_bundle, tmp_path):
    with pytest.raises(UserError, match=r"record\.json -> \.\./\.\./VICTIM"):
        open_bundle(linked_bundle)
    with pytest.raises(UserError, match="symbolic link"):
        profile([linked_bundle], ["host"], runs=1, store=None, quiet=True)
    with pytest.raises(UserError, match="symbolic link"):
        zip_bundle(linked_bundle, tmp_path / "b.zip")
    assert not (tmp_path / "b.zip").exists() and not (tmp_path / ".b.zip.partial").exists()


def test_open_bundle_refuses_a_listed_file_that_is_a_link(onnx_bundle, tmp_path):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    real = tmp_path / "labels-elsewhere.json"
    (bundle / "labels.json").rename(real)
    (bundle / "labels.json").symlink_to(real)  # same bytes, same hash: still refused
    with pytest.raises(UserError, match="symbolic link, labels.json ->"):
        open_bundle(bundle)


def test_open_bundle_refuses_a_special_file(onnx_bundle, tmp_path):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    os.mkfifo(bundle / "pipe")
    with pytest.raises(UserError, match="pipe, which is not a regular file"):
        open_bundle(bundle)


# -- traversal -------------------------------------------------------------------------------


def test_zip_member_outside_the_bundle_is_refused_and_nothing_is_extracted(
    onnx_bundle, tmp_path, monkeypatch
):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    for bad in ("../x", "/abs/x", "inner/../../x"):
        z = tmp_path / "evil.zip"
        with zipfile.ZipFile(z, "w") as zf:
            for p in sorted(onnx_bundle.iterdir()):
                zf.write(p, p.name)
            zf.writestr(zipfile.ZipInfo(bad), b"overwritten")
        with pytest.raises(UserError, match="points outside the bundle"):
            open_bundle(z)
        assert list(temp.iterdir()) == [] and not (tmp_path / "x").exists()


def test_zip_member_that_is_a_link_is_refused(onnx_bundle, tmp_path):
    z = zip_bundle(onnx_bundle, tmp_path / "b.zip")
    link = zipfile.ZipInfo("record.json")
    link.create_system = 3
    link.external_attr = (0o120777) << 16  # S_IFLNK | 0777
    with zipfile.ZipFile(z, "a") as zf:
        zf.writestr(link, "../../VICTIM")
    with pytest.raises(UserError, match="symbolic link 'record.json'"):
        open_bundle(z)


# -- 3. the manifest -------------------------------------------------------------------------


@pytest.mark.parametrize("model_file", ["/etc/hostname", "../model.onnx", "sub/model.onnx"])
def test_run_refuses_a_model_file_outside_the_bundle(onnx_bundle, tmp_path, capsys, model_file):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    shutil.copy(bundle / "model.onnx", tmp_path / "model.onnx")
    edit_manifest(bundle, rehash=True, model_file=model_file)
    err = cli_error(capsys, "run", bundle, "hello")
    assert "must be a plain file name inside the bundle" in err


def test_run_refuses_a_model_whose_hash_was_removed_from_files(onnx_bundle, tmp_path, capsys):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    m = json.loads((bundle / "manifest.json").read_text())
    files = {k: v for k, v in m["files"].items() if k != "model.onnx"}
    edit_manifest(bundle, rehash="files", files=files)
    err = cli_error(capsys, "run", bundle, "hello")
    assert "model.onnx is not listed with its sha256" in err


def test_run_refuses_a_manifest_edited_after_export(onnx_bundle, tmp_path, capsys):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    output = {"name": "output", "dtype": "float32", "kind": "embedding"}
    edit_manifest(bundle, rehash=False, task="embedding", output=output)
    err = cli_error(capsys, "run", bundle, "hello")
    assert "manifest.json does not match its manifest_sha256" in err


def test_run_refuses_a_task_that_contradicts_the_output_kind(onnx_bundle, tmp_path, capsys):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    edit_manifest(bundle, rehash=True, task="embedding")
    err = cli_error(capsys, "run", bundle, "hello")
    assert "the manifest's task is 'embedding' but its output is" in err


def test_open_bundle_refuses_a_manifest_without_its_digest(onnx_bundle, tmp_path):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    m = json.loads((bundle / "manifest.json").read_text())
    del m["manifest_sha256"]
    (bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="does not match its manifest_sha256"):
        open_bundle(bundle)
    m["manifest_version"] = 1
    (bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="written by an older pocketbert"):
        open_bundle(bundle)


def test_open_bundle_refuses_a_files_entry_outside_the_bundle(onnx_bundle, tmp_path):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    m = json.loads((bundle / "manifest.json").read_text())
    edit_manifest(bundle, rehash="files", files={**m["files"], "../VICTIM": "0" * 64})
    with pytest.raises(UserError, match="'../VICTIM' points outside the bundle"):
        open_bundle(bundle)
