"""android_demo/build.sh makes a signed debug APK with the bundle inside, with Debian's tools
only (no Gradle, no Maven); apksigner verifies it and aapt2 reads its badging. The adb transport
installs it on a phone that lacks the app."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from android_bundles import tflite
from android_phone import SERIAL, stand_in_phone
from test_android_adb import NEEDS_PAGE, measure

from pocketbert.android.toolchain import DEMO

ANDROID_JAR = Path("/usr/lib/android-sdk/platforms/android-23/android.jar")
TOOLS = ("aapt2", "javac", "zipalign", "apksigner", "keytool", "zip", "npm")
MISSING = [t for t in TOOLS if not shutil.which(t)]
if not (shutil.which("dalvik-exchange") or shutil.which("dx")):
    MISSING.append("dx (dalvik-exchange)")
if not ANDROID_JAR.is_file():
    MISSING.append(f"android.jar API 23 ({ANDROID_JAR})")
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"missing {', '.join(MISSING)}: run android_demo/install_tools.sh (apt, with bullseye's "
    "android-sdk-platform-23 and dalvik-exchange) and have npm",
)


def build(bundle: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(DEMO / "build.sh"), str(bundle), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def apk(onnx_bundle, tmp_path_factory) -> Path:
    from pocketbert.cli.main import main

    out = tmp_path_factory.mktemp("apk") / "pocketbert-demo.apk"
    assert main(["android", str(onnx_bundle), "-o", str(out)]) == 0  # build.sh, through the verb
    return out


def test_build_sh_makes_a_signed_apk_that_verifies(apk, onnx_bundle):
    verify = subprocess.run(
        ["apksigner", "verify", "--verbose", str(apk)], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stderr
    assert "Verified using v2 scheme (APK Signature Scheme v2): true" in verify.stdout
    badging = subprocess.run(
        ["aapt2", "dump", "badging", str(apk)], capture_output=True, text=True
    ).stdout
    assert "package: name='org.pocketbert.demo' versionCode='1'" in badging
    assert "launchable-activity: name='org.pocketbert.demo.MainActivity'" in badging
    assert "sdkVersion:'21'" in badging and "targetSdkVersion:'23'" in badging
    assert "application-debuggable" in badging  # a debug APK: run-as works on the phone
    with zipfile.ZipFile(apk) as zf:
        names = set(zf.namelist())
        assert zf.read("assets/bundle/model.onnx") == (onnx_bundle / "model.onnx").read_bytes()
        dex = zf.read("classes.dex")
    assert {f"assets/bundle/{p.name}" for p in onnx_bundle.iterdir()} <= names
    assert {
        "assets/web/index.html",
        "assets/web/pocketbert.js",
        "assets/web/ort/ort-wasm-simd-threaded.wasm",
    } <= names
    assert dex[:4] == b"dex\n"
    for cls in ("MainActivity", "WordPiece", "Bridge", "DemoBundle"):
        assert f"Lorg/pocketbert/demo/{cls};".encode() in dex


def test_build_sh_refuses_a_bundle_the_app_cannot_run(onnx_bundle, tmp_path):
    out = tmp_path / "x.apk"
    proc = build(tflite(onnx_bundle, tmp_path / "tfl"), out)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "is a tflite bundle; the app runs onnx bundles only" in proc.stderr
    assert not out.exists()


def test_android_verb_refuses_what_the_app_cannot_run_in_one_line(onnx_bundle, tmp_path, capsys):
    from test_devices import run_cli

    bad = tflite(onnx_bundle, tmp_path / "tfl")
    code, _, err = run_cli(["android", str(bad), "-o", str(tmp_path / "a.apk")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "the Android app runs onnx bundles only (onnxruntime-web); this bundle is tflite" in err
    assert not (tmp_path / "a.apk").exists()


@NEEDS_PAGE
def test_adb_transport_installs_the_apk_on_a_phone_without_the_app(apk, onnx_bundle, tmp_path):
    phone = stand_in_phone(tmp_path, installed=None)
    record = measure(onnx_bundle, phone, tmp_path, runs=3, apk=str(apk))
    assert record["status"] == "ok", record.get("error")
    calls = phone.calls()
    assert calls[1:4] == [
        ["-s", SERIAL, "shell", "dumpsys package org.pocketbert.demo"],
        ["-s", SERIAL, "install", "-r", str(apk)],
        ["-s", SERIAL, "shell", "dumpsys package org.pocketbert.demo"],
    ]
