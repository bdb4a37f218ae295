"""The adb transport drives the Android app: against a stand-in adb that records the exact
command sequence and plays the app's part (the app's page in headless Chromium with its Java
Bridge), a phone that drops off mid-run, and every refusal in one line before the phone is used."""

from __future__ import annotations

import shutil

import pytest
from android_bundles import bpe, tampered, tflite
from android_phone import SERIAL, stand_in_phone
from test_devices import run_cli
from test_lab import catalog

from pocketbert.bundle import remote_name
from pocketbert.lab.adb import ACTIVITY, RECORD
from pocketbert.profiler.run import profile
from pocketbert.profiler.stats import summarize

NEEDS_PAGE = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("javac")),
    reason="needs chromium and a JDK: apt-get install chromium default-jdk-headless",
)


def phone_entry(phone, device_id: str = "phone", **connect) -> dict:
    return {
        "id": device_id,
        "kind": "phone",
        "transport": "adb",
        "formats": ["onnx", "tflite"],
        "runtimes": ["onnxruntime", "litert"],
        "connect": {"adb": str(phone.adb), **connect},
    }


def measure(bundle, phone, tmp_path, runs=5, warmup=1, **connect) -> dict:
    path = catalog(tmp_path, phone_entry(phone, **connect))
    (record,) = profile(
        [bundle], ["phone"], runs=runs, warmup=warmup, catalog=path, store=None, quiet=True
    )
    return record


@NEEDS_PAGE
def test_adb_transport_runs_the_app_benchmark_and_pulls_its_record(onnx_bundle, tmp_path):
    phone = stand_in_phone(tmp_path)
    record = measure(onnx_bundle, phone, tmp_path)
    assert record["status"] == "ok", record.get("error")
    assert (record["method"], record["transport"], record["runtime"]) == (
        "measured",
        "adb",
        "onnxruntime-web",
    )
    assert len(record["samples_ms"]) == 5 and record["latency_ms"] == summarize(
        record["samples_ms"]
    )
    assert record["tokenize_ms"]["p50"] > 0 and record["memory"]["file_mb"] > 0
    home = f"/data/local/tmp/pocketbert/{remote_name(onnx_bundle)}"
    remote = f"{home}/bundle"
    files = sorted(p.name for p in onnx_bundle.iterdir())
    calls = phone.calls()
    pulled = calls[-1][-1]
    assert calls == [
        ["devices"],
        ["-s", SERIAL, "shell", "dumpsys package org.pocketbert.demo"],
        ["-s", SERIAL, "shell", f"rm -rf {home} && mkdir -p {remote}"],
        *[["-s", SERIAL, "push", str(onnx_bundle / f), f"{remote}/{f}"] for f in files],
        ["-s", SERIAL, "shell", f"rm -f {RECORD}"],
        ["-s", SERIAL, "shell"]
        + [f"am start -S -n {ACTIVITY} --es bundle {remote} --ei runs 5 --ei warmup 1"],
        ["-s", SERIAL, "shell", calls[-2][-1]],
        ["-s", SERIAL, "pull", RECORD, pulled],
    ]
    assert calls[-2][-1].startswith(f"i=0; while [ ! -f {RECORD} ]")
    assert (phone.path(remote) / "manifest.json").is_file()


@NEEDS_PAGE
def test_phone_that_drops_off_mid_run_is_reported_failed(onnx_bundle, tmp_path):
    phone = stand_in_phone(tmp_path, drop_after=1.0)
    record = measure(onnx_bundle, phone, tmp_path, runs=5000)
    assert record["status"] == "failed"
    assert record["error"] == (
        f"device phone dropped out during the measurement (exit 1: error: device '{SERIAL}' "
        "not found)"
    )


def test_adb_transport_installs_the_app_when_missing_or_refuses_without_an_apk(
    onnx_bundle, tmp_path
):
    phone = stand_in_phone(tmp_path, installed=None)
    record = measure(onnx_bundle, phone, tmp_path)
    assert record["status"] == "failed"
    assert record["error"] == (
        f"device phone: phone {SERIAL} has no pocketbert demo app; this pocketbert needs version "
        "1 or later: build it with android_demo/build.sh BUNDLE app.apk and set connect.apk to it"
    )
    old = stand_in_phone(tmp_path, installed=0, name="adb-old")
    record = measure(onnx_bundle, old, tmp_path, apk=str(tmp_path / "missing.apk"))
    assert record["error"].startswith(f"device phone: phone {SERIAL} has the demo app version 0;")
    assert record["error"].endswith(f"({tmp_path / 'missing.apk'} does not exist)")
    assert not any(c[2:3] == ["push"] for c in phone.calls() + old.calls())


@pytest.mark.parametrize(
    ("serials", "connect", "said"),
    [
        (
            (),
            {},
            "device phone: no phone attached (adb devices lists none); connect one with USB "
            "debugging on",
        ),
        (
            ("A1", "B2"),
            {},
            "device phone: 2 phones attached (A1, B2) and no serial; set "
            "connect.serial in devices.yaml to one of them",
        ),
        (
            ("A1",),
            {"serial": "Z9"},
            "device phone: phone Z9 is not attached (adb devices lists: A1 (device))",
        ),
    ],
    ids=["no-phone", "two-phones-no-serial", "serial-not-attached"],
)
def test_phone_selection_fails_in_one_line_with_exit_2(
    onnx_bundle, tmp_path, capsys, serials, connect, said
):
    phone = stand_in_phone(tmp_path, serials=serials)
    path = catalog(tmp_path, phone_entry(phone, **connect))
    argv = ["profile", str(onnx_bundle), "--device", "phone", "--devices", str(path), "--quiet"]
    code, _, err = run_cli(argv + ["--results", str(tmp_path / "r.jsonl")], capsys)
    assert code == 2 and err.count("\n") == 1 and said in err, err
    assert phone.calls() == [["devices"]]


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (
            tflite,
            "the Android app runs onnx bundles only (onnxruntime-web); this bundle is tflite: "
            "export one with --format onnx",
        ),
        (
            bpe,
            "the Android app tokenizes WordPiece (BertNormalizer + BertPreTokenizer) only; this "
            "bundle's tokenizer is BPE (normalizer BertNormalizer, pre-tokenizer ByteLevel)",
        ),
        (tampered, "model.onnx"),
    ],
    ids=["format", "tokenizer", "hashes"],
)
def test_bundle_the_app_cannot_run_is_refused_before_the_phone_is_used(
    onnx_bundle, tmp_path, capsys, make, said
):
    bundle = make(onnx_bundle, tmp_path / "bad")
    phone = stand_in_phone(tmp_path)
    path = catalog(tmp_path, phone_entry(phone))
    argv = ["profile", str(bundle), "--device", "phone", "--devices", str(path), "--quiet"]
    code, _, err = run_cli(argv + ["--results", str(tmp_path / "r.jsonl")], capsys)
    assert code == 2 and err.count("\n") == 1 and said in err, err
    assert phone.calls() == []
