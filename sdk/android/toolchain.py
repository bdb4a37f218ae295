"""Where the Android demo's pieces are on this machine: its sources, the Java it is built with,
onnxruntime-web's wasm files (from npm), and the app's Java classes compiled for the host JVM."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pocketbert.core.errors import UserError

DEMO = Path(__file__).resolve().parents[2] / "android_demo"
APP = DEMO / "app" / "src" / "main"
WEB = APP / "assets" / "web"
JAVA_MAIN = APP / "java"
JAVA_TEST = DEMO / "app" / "src" / "test" / "java"
ORT_WEB_VERSION = "1.31.1"
PACKAGE = "org.pocketbert.demo"
ACTIVITY = f"{PACKAGE}/.MainActivity"
APP_VERSION = 1  # versionCode in AndroidManifest.xml; an installed app below it is too old
RECORD = f"/sdcard/Android/data/{PACKAGE}/files/record.json"  # where the benchmark writes
FORMATS = ("onnx",)
TOKENIZER = ("WordPiece", "BertNormalizer", "BertPreTokenizer")


def check_app_bundle(path: str | Path) -> dict:
    """The bundle's manifest if the app can run it (hashes, format, tokenizer), else UserError."""
    from pocketbert.bundle import open_bundle

    manifest = open_bundle(path).manifest  # hashes, the manifest's digest, file names
    if manifest["format"] not in FORMATS:
        raise UserError(
            f"the Android app runs {', '.join(FORMATS)} bundles only (onnxruntime-web); this "
            f"bundle is {manifest['format']}: export one with --format onnx"
        )
    tok = json.loads((Path(path) / "tokenizer.json").read_text(encoding="utf-8"))
    kinds = tuple(
        str((tok.get(k) or {}).get("type")) for k in ("model", "normalizer", "pre_tokenizer")
    )
    if kinds != TOKENIZER:
        raise UserError(
            "the Android app tokenizes WordPiece (BertNormalizer + BertPreTokenizer) only; this "
            f"bundle's tokenizer is {kinds[0]} (normalizer {kinds[1]}, pre-tokenizer {kinds[2]}): "
            "export a model with a WordPiece vocabulary"
        )
    return manifest


def cache_dir() -> Path:
    return Path(os.environ.get("POCKETBERT_CACHE") or Path.home() / ".cache" / "pocketbert")


def demo_sources() -> Path:
    if not (JAVA_MAIN / "org" / "pocketbert" / "demo" / "Bridge.java").is_file():
        raise UserError(
            f"the Android demo's sources are not at {DEMO}; run this from a pocketbert checkout"
        )
    return DEMO


def ort_web_dir(fetch: bool = True) -> Path:
    """onnxruntime-web's wasm files, fetched from npm by android_demo/fetch_ort.sh if missing."""
    dest = cache_dir() / f"onnxruntime-web-{ORT_WEB_VERSION}"
    if (dest / "ort-wasm-simd-threaded.wasm").is_file():
        return dest
    if fetch and shutil.which("npm"):
        proc = subprocess.run(
            ["bash", str(demo_sources() / "fetch_ort.sh")],
            capture_output=True,
            text=True,
            env={**os.environ, "ORT_WEB_VERSION": ORT_WEB_VERSION},
        )
        if proc.returncode == 0 and (dest / "ort-wasm-simd-threaded.wasm").is_file():
            return dest
    raise UserError(
        f"onnxruntime-web {ORT_WEB_VERSION} is not in {dest}; fetch it with "
        "android_demo/fetch_ort.sh (needs npm: apt-get install npm)"
    )


def java() -> tuple[str, str]:
    """(javac, java), or a UserError saying what to install."""
    javac, run = shutil.which("javac"), shutil.which("java")
    if not javac or not run:
        raise UserError(
            "no JDK here (javac, java); install one: apt-get install default-jdk-headless"
        )
    return javac, run


def _sources() -> list[Path]:
    return sorted(JAVA_MAIN.rglob("*.java"), key=str) + sorted(JAVA_TEST.rglob("*.java"), key=str)


def host_classes() -> Path:
    """The app's platform-free Java (and its JVM tests) compiled for this JVM, cached by source
    hash; the Android activity is left out (it needs android.jar)."""
    demo_sources()
    javac, _ = java()
    sources = [p for p in _sources() if p.name != "MainActivity.java"]
    digest = hashlib.sha256()
    for p in sources:
        digest.update(p.name.encode() + b"\0" + p.read_bytes())
    out = cache_dir() / f"android-host-classes-{digest.hexdigest()[:16]}"
    if (out / "ok").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".classes-", dir=out.parent))
    try:
        proc = subprocess.run(
            [javac, "--release", "8", "-Xlint:-options", "-encoding", "UTF-8", "-d", str(tmp)]
            + [str(p) for p in sources],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"javac failed on the Android demo's sources:\n{proc.stderr}")
        (tmp / "ok").write_text("")
        if out.exists():
            shutil.rmtree(tmp)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
