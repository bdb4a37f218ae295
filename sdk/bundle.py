"""The bundle: model file + tokenizer + labels + manifest.json, written atomically.

A bundle is a directory (or a .zip of one). Its manifest records what the model takes,
where it came from, which tools wrote it, the sha256 of every file and the parity check.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pocketbert.core.errors import UserError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): sha256(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def write_manifest(directory: Path, manifest: dict) -> dict:
    """Hash every file in ``directory`` and write manifest.json beside them."""
    manifest = {"manifest_version": MANIFEST_VERSION, **manifest, "files": file_hashes(directory)}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


@contextmanager
def staging(out: Path):
    """A scratch directory beside ``out`` that becomes ``out`` only if the block succeeds."""
    out = Path(out)
    if out.exists() and not (out / MANIFEST).is_file() and (out.is_file() or any(out.iterdir())):
        raise UserError(
            f"'{out}' exists and is not a bundle; give a new directory or an earlier bundle to replace"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{os.getpid()}-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is an ordinary directory
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


@dataclass
class Bundle:
    root: Path
    manifest: dict

    @property
    def model_path(self) -> Path:
        return self.root / self.manifest["model_file"]

    @property
    def tokenizer_path(self) -> Path:
        return self.root / "tokenizer.json"

    @property
    def labels(self) -> list[str]:
        return json.loads((self.root / "labels.json").read_text())


def _unzip(path: Path) -> Path:
    try:
        with zipfile.ZipFile(path) as zf:
            dest = Path(tempfile.mkdtemp(prefix="pocketbert-bundle-"))
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise UserError(
            f"'{path}' is not a valid zip file; give a bundle directory or its .zip"
        ) from exc
    inner = [p.parent for p in dest.rglob(MANIFEST)]
    return inner[0] if inner else dest


def open_bundle(path: str | Path, *, check_hashes: bool = True) -> Bundle:
    """Open a bundle directory or .zip and check its files against the manifest."""
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"bundle '{path}' does not exist; give a directory written by pocketbert export"
        )
    root = _unzip(path) if path.is_file() and path.suffix == ".zip" else path
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise UserError(
            f"'{path}' is not a bundle (no {MANIFEST}); give a directory written by pocketbert export"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"'{manifest_path}' is not valid JSON; re-export the bundle") from exc
    for key in ("model_file", "format", "files", "max_seq_len"):
        if key not in manifest:
            raise UserError(f"'{manifest_path}' lacks '{key}'; re-export the bundle")
    if check_hashes:
        actual = file_hashes(root)
        for name, digest in manifest["files"].items():
            if name not in actual:
                raise UserError(
                    f"bundle '{path}' is missing {name}, listed in its manifest; re-export it"
                )
            if actual[name] != digest:
                raise UserError(
                    f"bundle '{path}': {name} does not match its manifest sha256 "
                    "(modified or corrupt); re-export the bundle"
                )
    return Bundle(root, manifest)


def zip_bundle(directory: Path, out: Path) -> Path:
    """Write ``directory`` as a .zip (atomically)."""
    tmp = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(directory.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(directory).as_posix())
    tmp.replace(out)
    return out
