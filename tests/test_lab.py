"""The device lab: ssh against a real loopback sshd, adb against a stand-in, the roofline estimate."""

from __future__ import annotations

import functools
import getpass
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from test_devices import run_cli

from pocketbert.bundle import remote_name
from pocketbert.devices import Device
from pocketbert.lab import TRANSPORTS
from pocketbert.lab.emulated import Cost, bert_cost, roofline
from pocketbert.profiler.results import ResultsStore
from pocketbert.profiler.run import profile

SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/usr/bin/sshd") if Path(p).exists()), None
)
TRANSPORT_TESTS: dict[str, list[str]] = {}  # filled by @covers on the tests below


def covers(transport: str):
    """Mark a test as the one that exercises ``transport``, and check that it really calls it."""

    def mark(test):
        TRANSPORT_TESTS.setdefault(transport, []).append(test.__name__)

        @functools.wraps(test)
        def checked(*args, **kwargs):
            calls, real = [], TRANSPORTS[transport]

            def counted(device, job):
                calls.append(device.id)
                return real(device, job)

            TRANSPORTS[transport] = counted
            try:
                result = test(*args, **kwargs)
            finally:
                TRANSPORTS[transport] = real
            assert calls, f"{test.__name__} is marked @covers({transport!r}) but never ran it"
            return result

        return checked

    return mark


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def catalog(tmp_path: Path, *entries: dict) -> Path:
    path = tmp_path / "devices.yaml"
    path.write_text(yaml.safe_dump({"devices": list(entries)}))
    return path


def entry(device_id: str, transport: str, **connect) -> dict:
    return {
        "id": device_id,
        "kind": "board",
        "transport": transport,
        "formats": ["onnx"],
        "runtimes": ["onnxruntime"],
        "connect": connect,
    }


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real OpenSSH server on 127.0.0.1 with a throwaway host key and user key."""
    if SSHD is None:
        pytest.skip("sshd is not installed (apt-get install -y openssh-server openssh-client)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
        )
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    port = free_port()
    (d / "sshd_config").write_text(
        textwrap.dedent(f"""\
        Port {port}
        ListenAddress 127.0.0.1
        HostKey {d / "host_key"}
        AuthorizedKeysFile {d / "authorized_keys"}
        PidFile {d / "sshd.pid"}
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PubkeyAuthentication yes
        PermitRootLogin prohibit-password
        StrictModes no
        UsePAM no
        """)
    )
    if getpass.getuser() == "root" and Path("/run").is_dir():
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail(f"sshd did not start: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    yield {
        "host": "127.0.0.1",
        "port": port,
        "user": getpass.getuser(),
        "identity": str(d / "user_key"),
        "known_hosts": str(d / "known_hosts"),
        "python": sys.executable,
        "workdir": str(d / "remote"),
    }
    proc.terminate()
    proc.wait(timeout=10)


def stand_in_adb(
    tmp_path: Path,
    name: str = "adb",
    kill_after: float | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
) -> Path:
    """An `adb` that executes push/pull/shell on this machine; optionally the phone drops out.

    As the real one does, `shell` joins its words with spaces for the phone's `sh -c` (run in
    ``cwd``); ``log`` gets each call's argv as one JSON line.
    """
    script = tmp_path / name
    dropout = (
        ""
        if kill_after is None
        else f"""
        try:
            proc.wait(timeout={kill_after})
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            sys.exit("error: device 'emulator-5554' not found")"""
    )
    script.write_text(
        f"#!{sys.executable}\n"
        + f"LOG, CWD = {str(log) if log else None!r}, {str(cwd) if cwd else None!r}\n"
        + textwrap.dedent("""\
        import json, os, shutil, signal, subprocess, sys
        args = sys.argv[1:]
        if LOG:
            with open(LOG, "a") as fh:
                fh.write(json.dumps(args) + "\\n")
        if args[:1] == ["-s"]:
            args = args[2:]
        if args[0] in ("push", "pull"):
            os.makedirs(os.path.dirname(os.path.abspath(args[2])), exist_ok=True)
            shutil.copy(args[1], args[2])
            sys.exit(0)
        proc = subprocess.Popen(
            ["sh", "-c", " ".join(args[1:])], start_new_session=True, cwd=CWD
        )""")
        + textwrap.dedent(dropout)
        + "\nsys.exit(proc.wait())\n"
    )
    script.chmod(0o755)
    return script


def test_every_registered_transport_is_tested():
    untested = sorted(set(TRANSPORTS) - set(TRANSPORT_TESTS))
    assert not untested, f"no test exercises transport(s) {untested}; add one marked @covers"
    assert set(TRANSPORT_TESTS) <= set(TRANSPORTS)


@covers("ssh")
def test_ssh_transport_measures_bundle_on_loopback_sshd(sshd, onnx_bundle, tmp_path):
    path = catalog(tmp_path, entry("pi-loop", "ssh", **sshd))
    (record,) = profile(
        [onnx_bundle], ["pi-loop"], runs=5, warmup=1, catalog=path, store=tmp_path / "r", quiet=True
    )
    assert record["status"] == "ok", record.get("error")
    assert (record["method"], record["transport"], record["device"]) == (
        "measured",
        "ssh",
        "pi-loop",
    )
    assert len(record["samples_ms"]) == 5 and record["memory"]["file_mb"] > 0
    assert (Path(sshd["workdir"]) / remote_name(onnx_bundle) / "record.json").is_file()


def test_ssh_unreachable_host_fails_in_one_line_and_keeps_other_results(
    sshd, onnx_bundle, tmp_path, capsys
):
    closed = {**sshd, "port": free_port()}
    path = catalog(tmp_path, entry("pi-off", "ssh", **closed), entry("pi-loop", "ssh", **sshd))
    store = tmp_path / "r.jsonl"
    argv = [
        "profile",
        str(onnx_bundle),
        "--device",
        "pi-off",
        "pi-loop",
        "--runs",
        "3",
        "--devices",
        str(path),
        "--results",
        str(store),
        "--quiet",
    ]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"device pi-off: cannot reach 127.0.0.1:{closed['port']} over ssh" in err
    assert {(r["device"], r["status"]) for r in ResultsStore(store)} == {
        ("pi-off", "failed"),
        ("pi-loop", "ok"),
    }


def test_ssh_session_killed_mid_run_is_reported_failed(sshd, onnx_bundle, tmp_path):
    # the remote command kills its own sshd session, as a board losing power would
    path = catalog(tmp_path, entry("pi-dies", "ssh", **sshd, agent="sleep 0.2; kill -9 $PPID"))
    (record,) = profile([onnx_bundle], ["pi-dies"], runs=3, catalog=path, store=None, quiet=True)
    assert record["status"] == "failed"
    assert record["error"].startswith("device pi-dies dropped out during the measurement: lost ssh")


@covers("adb-python")
def test_adb_transport_pushes_runs_and_pulls_the_record(onnx_bundle, tmp_path):
    adb = stand_in_adb(tmp_path)
    phone = tmp_path / "phone"
    path = catalog(
        tmp_path,
        entry(
            "phone",
            "adb-python",
            adb=str(adb),
            serial="emulator-5554",
            workdir=str(phone),
            python=sys.executable,
        ),
    )
    (record,) = profile(
        [onnx_bundle], ["phone"], runs=4, warmup=1, catalog=path, store=None, quiet=True
    )
    assert record["status"] == "ok", record.get("error")
    assert (record["method"], record["transport"]) == ("measured", "adb-python")
    assert (phone / remote_name(onnx_bundle) / "bundle" / "manifest.json").is_file()


def test_device_killed_mid_run_is_reported_failed_not_missing(onnx_bundle, tmp_path):
    good, dying = (
        stand_in_adb(tmp_path, "adb-good"),
        stand_in_adb(tmp_path, "adb-dying", kill_after=0.3),
    )
    path = catalog(
        tmp_path,
        entry(
            "alive",
            "adb-python",
            adb=str(good),
            workdir=str(tmp_path / "p1"),
            python=sys.executable,
        ),
        entry(
            "unplugged",
            "adb-python",
            adb=str(dying),
            workdir=str(tmp_path / "p2"),
            python=sys.executable,
        ),
    )
    store = tmp_path / "r.jsonl"
    records = profile(
        [onnx_bundle],
        ["alive", "unplugged"],
        runs=2000,
        warmup=1,
        catalog=path,
        store=store,
        quiet=True,
    )
    by_device = {r["device"]: r for r in records}
    assert by_device["alive"]["status"] == "ok"
    assert by_device["unplugged"]["status"] == "failed"
    assert "device unplugged dropped out during the measurement" in by_device["unplugged"]["error"]
    assert "not found" in by_device["unplugged"]["error"]
    assert sorted(r["device"] for r in ResultsStore(store)) == ["alive", "unplugged"]


def test_device_without_the_runtime_says_what_to_install_there(onnx_bundle, tmp_path):
    python = tmp_path / "python-without-ort"
    python.write_text(
        f"#!{sys.executable}\nimport sys\nsys.modules['onnxruntime'] = None\n"
        "from pocketbert.profiler.agent import main\nsys.exit(main(sys.argv[3:]))\n"
    )
    python.chmod(0o755)
    path = catalog(
        tmp_path,
        entry(
            "bare",
            "adb-python",
            adb=str(stand_in_adb(tmp_path)),
            workdir=str(tmp_path / "p"),
            python=str(python),
        ),
    )
    (record,) = profile([onnx_bundle], ["bare"], runs=2, catalog=path, store=None, quiet=True)
    assert record["status"] == "failed"
    assert record["error"] == (
        "device bare: the bundle needs the 'onnxruntime' runtime, which is not installed on this "
        "device; install it there: pip install onnxruntime"
    )


@covers("adb")
def test_adb_transport_asks_adb_for_the_phone_first(onnx_bundle, tmp_path):
    # the Android app's benchmark mode end to end: tests/test_android_adb.py
    from android_phone import stand_in_phone

    phone = stand_in_phone(tmp_path, serials=())
    path = catalog(tmp_path, {**entry("ph", "adb", adb=str(phone.adb)), "kind": "phone"})
    (record,) = profile([onnx_bundle], ["ph"], runs=2, catalog=path, store=None, quiet=True)
    assert record["status"] == "failed" and "no phone attached" in record["error"]
    assert phone.calls() == [["devices"]]


@covers("local")
def test_device_past_its_timeout_is_reported_failed(onnx_bundle, tmp_path):
    path = catalog(tmp_path, entry("slow", "local"))
    (record,) = profile(
        [onnx_bundle], ["slow"], runs=100000, timeout=1.0, catalog=path, store=None, quiet=True
    )
    assert record["status"] == "failed" and "timed out after 1s" in record["error"]


def test_roofline_arithmetic_on_a_hand_computed_case(monkeypatch):
    from pocketbert.lab import emulated

    monkeypatch.setitem(emulated.EFFICIENCY, "litert", 0.5)
    device = Device(
        "d",
        "phone",
        "emulated",
        ("tflite",),
        ("litert",),
        peak_gflops_fp32=100.0,
        peak_gops_int8=400.0,
        mem_bandwidth_gbs=10.0,
    )
    # compute: 1e9 / (100e9 x 0.5) + 2e9 / (400e9 x 0.5) = 20 ms + 10 ms; memory: 1.2e8 / (10e9 x 0.6) = 20 ms
    r = roofline(
        Cost(flops_fp32=1e9, ops_int8=2e9, weight_bytes=1e8, activation_bytes=2e7), device, "litert"
    )
    assert (r["estimate_ms"], r["bound"], r["compute_ms"], r["memory_ms"]) == (
        30.0,
        "compute",
        30.0,
        20.0,
    )
    r = roofline(Cost(flops_fp32=1e8, weight_bytes=3e8), device, "litert")  # 2 ms vs 50 ms
    assert (r["estimate_ms"], r["bound"]) == (50.0, "memory")


def test_published_fit_flags_figures_over_peak_and_estimates_the_mobilebert_paper():
    from pocketbert.lab.fit import leave_one_out, published_points

    assert bert_cost(12, 768, 3072, 12, 128).flops_fp32 == pytest.approx(
        22.4e9, rel=0.01
    )  # paper: 22.5B
    rows = leave_one_out(published_points())
    assert len(rows) >= 8 and all(r["estimated_ms"] for r in rows)
    flagged = [r for r in rows if r["flagged"]]
    # the TFLite page's Pixel 4 MobileBERT at seq 384 is faster than its matmuls at peak
    assert [(r["model"], r["device"], r["seq"]) for r in flagged] == [("mobilebert", "pixel4", 384)]
    (headline,) = [
        r for r in rows if (r["model"], r["device"], r["seq"]) == ("mobilebert", "pixel4", 128)
    ]
    assert abs(headline["error"]) < 0.2, headline  # leave-one-out: fitted without it


def test_graph_counts_match_the_hand_count_of_a_tiny_bert(onnx_bundle):
    from pocketbert.lab.emulated import bundle_cost

    for seq in (16, 64):
        cost, _ = bundle_cost(onnx_bundle, seq)
        assert cost == bert_cost(layers=2, hidden=32, intermediate=64, heads=2, seq=seq)


@covers("fpga-model")
def test_fpga_devices_are_estimated_by_the_fpga_model_with_or_without_estimate(fp32_bundle):
    bundle = fp32_bundle("fpga", "int8-static")
    for estimate in (False, True):
        (r,) = profile([bundle], ["zcu104"], estimate=estimate, store=None, quiet=True)
        assert r["status"] == "ok" and r["method"] == "estimated", r.get("error")
        assert r["transport"] == "fpga-model" and r["latency_ms"]["estimate"] > 0
        assert r["fpga_model"]["layers"] and "samples_ms" not in r


@covers("emulated")
def test_estimate_is_labelled_and_never_mixed_with_measurements(onnx_bundle, tmp_path):
    records = profile(
        [onnx_bundle],
        ["zcu104-ps", "rpi4"],
        estimate=True,
        seq_lens=[32],
        store=tmp_path / "r",
        quiet=True,
    )
    for r in records:
        assert r["status"] == "ok" and r["method"] == "estimated" and r["transport"] == "emulated"
        assert set(r["latency_ms"]) == {"estimate"} and "samples_ms" not in r and "load_ms" not in r
        assert r["roofline"]["cost"]["flops_fp32"] == bert_cost(2, 32, 64, 2, 32).flops_fp32
    assert (
        records[0]["latency_ms"]["estimate"] > records[1]["latency_ms"]["estimate"] > 0
    )  # 19 vs 48 GFLOP/s
