"""The bundle: model file + tokenizer + labels + manifest.json, written atomically.

A bundle is a directory (or a .zip of one) of regular files. Its manifest records what the
model takes, where it came from, which tools wrote it, the sha256 of every file, the parity
check and a digest of the manifest itself. ``open_bundle`` checks all of it before anything
is loaded (the rules are in ``pocketbert.bundle_checks``); a .zip is extracted, verified
member by member, into a private directory that goes away with its ``Bundle``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pocketbert.bundle_checks import (
    DIGEST_KEY,
    MANIFEST,
    MANIFEST_VERSION,
    REEXPORT,
    check_labels,
    check_manifest,
    manifest_digest,
    regular_files,
    zip_member_error,
)
from pocketbert.core.errors import UserError, first_line

__all__ = [
    "MANIFEST",
    "MANIFEST_VERSION",
    "Bundle",
    "file_hashes",
    "open_bundle",
    "remote_name",
    "sha256",
    "staging",
    "write_manifest",
    "write_tokenizer",
    "zip_bundle",
]

# what zipfile raises for a damaged member: bad CRC, bad deflate stream, cut short, encrypted
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every regular file under ``directory`` but the manifest; refuses links."""
    return {rel: sha256(p) for rel, p in regular_files(Path(directory)).items() if rel != MANIFEST}


def write_manifest(directory: Path, manifest: dict) -> dict:
    """Hash every file in ``directory``; write manifest.json (with its own digest) beside them."""
    body = {k: v for k, v in manifest.items() if k not in ("manifest_version", "files", DIGEST_KEY)}
    manifest = {"manifest_version": MANIFEST_VERSION, **body, "files": file_hashes(directory)}
    manifest[DIGEST_KEY] = manifest_digest(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


def write_tokenizer(
    tokenizer_json_src: Path, dest: Path, max_seq_len: int, *, pad_to: int | None = None
) -> Path:
    """Copy a tokenizer.json with the bundle's own settings: truncation at ``max_seq_len``,
    and no fixed padding (or padding to exactly ``pad_to`` for a static-shape model file).

    A source tokenizer saved for another length (e.g. truncation and padding at 128) would
    otherwise cut or pad text differently on a device that uses the file directly.
    """
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(tokenizer_json_src))
    except Exception as exc:  # tokenizers raises a bare Exception for bad files
        raise UserError(
            f"'{tokenizer_json_src}' is not a readable tokenizer.json ({first_line(exc)})"
        ) from exc
    old_padding = tok.padding
    tok.no_padding()
    tok.enable_truncation(max_seq_len)
    if pad_to is not None:
        token = (old_padding or {}).get("pad_token") or "[PAD]"
        pad_id = tok.token_to_id(token)
        tok.enable_padding(length=pad_to, pad_id=pad_id or 0, pad_token=token)
    tok.save(str(dest))
    return Path(dest)


def remote_name(root: Path) -> str:
    """The bundle's name on a device: from its manifest's hash, never a user-chosen name.

    A directory without a manifest (a bare model file staged for a device) is named from
    the hashes of its files instead.
    """
    root = Path(root)
    if (root / MANIFEST).is_file():
        return f"bundle-{sha256(root / MANIFEST)[:16]}"
    listing = json.dumps(file_hashes(root), sort_keys=True).encode()
    return f"bundle-{hashlib.sha256(listing).hexdigest()[:16]}"


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


@dataclass(eq=False)
class Bundle:
    """An opened, checked bundle. From a .zip, ``root`` is a private extraction that is
    removed by ``close()``, when the Bundle is garbage-collected, or at interpreter exit."""

    root: Path
    manifest: dict
    labels: list[str] = field(default_factory=list)
    source: Path | None = None  # what was opened: the directory, or the .zip
    _cleanup: weakref.finalize | None = field(default=None, repr=False)

    @property
    def model_path(self) -> Path:
        return self.root / self.manifest["model_file"]

    @property
    def tokenizer_path(self) -> Path:
        return self.root / "tokenizer.json"

    def close(self) -> None:
        """Remove the extraction of a zipped bundle (nothing to do for a directory)."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _parse_manifest(data: bytes, where: str) -> dict:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"{where}: manifest.json is not valid JSON ({first_line(exc)}); {REEXPORT}"
        ) from exc
    return check_manifest(manifest, where)


def _zip_members(zf: zipfile.ZipFile, path: Path) -> tuple[str, dict[str, zipfile.ZipInfo]]:
    """The folder prefix of the zip's bundle and its members; refuses unsafe members."""
    where = f"bundle '{path}'"
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        mode = info.external_attr >> 16 if info.create_system == 3 else 0  # 3: unix
        error = zip_member_error(info.filename, mode, where)
        if error:
            raise error
        if info.filename in members:
            raise UserError(f"{where} holds {info.filename!r} twice; re-create the zip")
        members[info.filename] = info
    found = [n for n in members if n == MANIFEST or n.endswith("/" + MANIFEST)]
    found.sort(key=lambda n: n.count("/"))
    if not found:
        raise UserError(
            f"'{path}' is not a bundle (no {MANIFEST} in the zip); "
            "give a .zip of a directory written by pocketbert export"
        )
    if len(found) > 1 and found[0].count("/") == found[1].count("/"):
        raise UserError(f"{where} holds more than one bundle ({found[0]}, {found[1]})")
    return found[0][: -len(MANIFEST)], members


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, dest: Path | None):
    """A member's bytes (``dest`` None) or its sha256 after streaming it into ``dest``."""
    h = hashlib.sha256()
    try:
        with zf.open(info) as src:
            if dest is None:
                return src.read()
            dest.parent.mkdir(parents=True, exist_ok=True)
            with dest.open("xb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    h.update(chunk)
                    out.write(chunk)
    except _CORRUPT as exc:
        raise UserError(
            f"{where}: the member {info.filename} is corrupt ({first_line(exc)}); "
            "re-create the zip from the bundle directory"
        ) from exc
    return h.hexdigest()


def _unzip(path: Path, where: str) -> tuple[Path, Path, dict]:
    """Extract the manifest's files into a fresh temp dir, checking each one's sha256."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(
            f"'{path}' is not a valid zip file ({first_line(exc)}); give a bundle directory or its .zip"
        ) from exc
    with zf:
        prefix, members = _zip_members(zf, path)
        data = _read_member(zf, members[prefix + MANIFEST], where, None)
        manifest = _parse_manifest(data, where)
        tmp = Path(tempfile.mkdtemp(prefix="pocketbert-bundle-"))
        try:
            root = tmp / "bundle"
            for name, digest in manifest["files"].items():
                info = members.get(prefix + name)
                if info is None or info.is_dir():
                    raise UserError(
                        f"{where} is missing {name}, listed in its manifest; {REEXPORT}"
                    )
                if _read_member(zf, info, where, root / name) != digest:
                    raise UserError(
                        f"{where}: {name} does not match its manifest sha256 (modified or "
                        f"corrupt); {REEXPORT}"
                    )
            (root / MANIFEST).write_bytes(data)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return tmp, root, manifest


def _open_directory(path: Path, where: str, check_hashes: bool) -> dict:
    if not path.is_dir():
        raise UserError(
            f"'{path}' is not a bundle; give a directory written by pocketbert export, or its .zip"
        )
    files = regular_files(path, where)
    if MANIFEST not in files:
        raise UserError(
            f"'{path}' is not a bundle (no {MANIFEST}); give a directory written by pocketbert export"
        )
    manifest = _parse_manifest(files[MANIFEST].read_bytes(), where)
    for name, digest in manifest["files"].items():
        if name not in files:
            raise UserError(f"{where} is missing {name}, listed in its manifest; re-export it")
        if check_hashes and sha256(files[name]) != digest:
            raise UserError(
                f"{where}: {name} does not match its manifest sha256 (modified or corrupt); "
                f"{REEXPORT}"
            )
    return manifest


def open_bundle(path: str | Path, *, check_hashes: bool = True) -> Bundle:
    """Open a bundle directory or .zip and check it: regular files only, a well-formed
    manifest whose digest matches, and every listed file against its sha256."""
    path = Path(path)
    where = f"bundle '{path}'"
    if not path.exists():
        raise UserError(
            f"bundle '{path}' does not exist; give a directory written by pocketbert export"
        )
    if path.is_file() and path.suffix == ".zip":
        tmp, root, manifest = _unzip(path, where)  # hashes checked while extracting
        bundle = Bundle(root, manifest, source=path)
        bundle._cleanup = weakref.finalize(bundle, shutil.rmtree, tmp, True)
    else:
        bundle = Bundle(path, _open_directory(path, where, check_hashes), source=path)
    try:
        text = (bundle.root / "labels.json").read_text(encoding="utf-8", errors="replace")
        bundle.labels = check_labels(text, bundle.manifest["task"], where)
    except BaseException:
        bundle.close()
        raise
    return bundle


def zip_bundle(directory: Path, out: Path) -> Path:
    """Write ``directory`` as a .zip (atomically); refuses a bundle that holds links."""
    files = regular_files(Path(directory))
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, p in files.items():
                zf.write(p, rel)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return out
