"""Bundles the Android app must refuse, made from a good one: each is a consistent bundle
(files and manifest rehashed) that differs from the good one in the one thing under test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pocketbert.bundle import write_manifest


def variant(src: Path, dest: Path, *, manifest: dict | None = None, tokenizer=None) -> Path:
    shutil.copytree(src, dest)
    if tokenizer is not None:
        path = dest / "tokenizer.json"
        path.write_text(json.dumps(tokenizer(json.loads(path.read_text()))))
    m = json.loads((dest / "manifest.json").read_text())
    m.update(manifest or {})
    if m["model_file"] != json.loads((src / "manifest.json").read_text())["model_file"]:
        (dest / "model.onnx").rename(dest / m["model_file"])
    write_manifest(dest, m)
    return dest


def tflite(src: Path, dest: Path) -> Path:
    return variant(
        src, dest, manifest={"format": "tflite", "runtime": "litert", "model_file": "model.tflite"}
    )


def bpe(src: Path, dest: Path) -> Path:
    def to_bpe(t: dict) -> dict:
        t["model"] = {"type": "BPE", "vocab": t["model"]["vocab"], "merges": []}
        t["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False}
        return t

    return variant(src, dest, tokenizer=to_bpe)


def tampered(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    model = dest / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    return dest
