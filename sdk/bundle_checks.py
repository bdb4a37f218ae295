"""What a bundle must be before pocketbert opens it: regular files inside its root, a
manifest whose fields have the right types and whose own digest matches, and labels that
fit its task. ``open_bundle`` (``pocketbert.bundle``) applies these; every refusal is a
one-line ``UserError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path, PurePosixPath

from pocketbert.core.errors import UserError, choices

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2  # 2: manifest_sha256 (a digest of the manifest itself) is mandatory
DIGEST_KEY = "manifest_sha256"
TASKS = ("classification", "embedding")
MAX_SEQ_LEN_LIMIT = 65536
LOADED_FILES = ("tokenizer.json", "labels.json")  # opened by the loader beside the model
_HEX64 = re.compile(r"[0-9a-f]{64}")
REEXPORT = "re-export the bundle with pocketbert export"


def manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, no spaces), less its own digest."""
    body = {k: v for k, v in manifest.items() if k != DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_relative_name(name: object, where: str, what: str) -> str:
    """``name`` as a relative POSIX path that stays inside the bundle, or a UserError."""
    bad = (
        not isinstance(name, str)
        or not name
        or "\\" in name
        or "\0" in name
        or name.startswith("/")
        or any(part in ("", ".", "..") for part in name.split("/"))
    )
    if bad:
        raise UserError(
            f"{where}: {what} {name!r} points outside the bundle; names in a bundle are "
            f"relative paths inside it, such as model.onnx; {REEXPORT}"
        )
    return name


def _link_error(where: str, rel: str, target: str) -> UserError:
    return UserError(
        f"{where} holds a symbolic link, {rel} -> {target}; bundles carry regular files "
        f"only: replace the link with the file itself or {REEXPORT}"
    )


def regular_files(root: Path, where: str | None = None) -> dict[str, Path]:
    """Every file under ``root`` by its relative POSIX name; refuses links and special files."""
    where = where or f"bundle '{root}'"
    found: dict[str, Path] = {}
    for top, dirs, names in os.walk(root, followlinks=False):
        base = Path(top)
        for name in sorted(dirs) + sorted(names):
            path = base / name
            rel = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise _link_error(where, rel, os.readlink(path))
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise UserError(
                    f"{where} holds {rel}, which is not a regular file (a device, pipe or "
                    f"socket); bundles carry regular files only; {REEXPORT}"
                )
            found[rel] = path
    return dict(sorted(found.items()))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_version(manifest: dict, where: str) -> None:
    version = manifest.get("manifest_version")
    if not _is_int(version) or version < 1:
        raise UserError(f"{where}: manifest_version {version!r} is not a version; {REEXPORT}")
    if version > MANIFEST_VERSION:
        raise UserError(
            f"{where} was written by a newer pocketbert (manifest version {version}; this one "
            f"reads {MANIFEST_VERSION}); upgrade pocketbert: pip install -U pocketbert"
        )
    if version < MANIFEST_VERSION:
        raise UserError(
            f"{where} was written by an older pocketbert (manifest version {version}, without "
            f"a manifest digest); {REEXPORT}"
        )


def _check_files(files: object, where: str) -> dict[str, str]:
    if not isinstance(files, dict) or not files:
        raise UserError(
            f"{where}: 'files' in manifest.json must map each file name to its sha256 "
            f"(got {type(files).__name__}); {REEXPORT}"
        )
    for name, digest in files.items():
        check_relative_name(name, where, "the manifest's file")
        if name == MANIFEST:
            raise UserError(f"{where}: the manifest lists its own hash in 'files'; {REEXPORT}")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise UserError(
                f"{where}: the manifest's sha256 of {name} is {digest!r}, not 64 hex digits; "
                f"{REEXPORT}"
            )
    return files


def _check_model_file(manifest: dict, files: dict, where: str) -> None:
    model = manifest["model_file"]
    if not isinstance(model, str) or "/" in model or "\\" in model:
        raise UserError(
            f"{where}: model_file {model!r} must be a plain file name inside the bundle, "
            f"such as model.onnx; {REEXPORT}"
        )
    check_relative_name(model, where, "model_file")
    for name in (model, *LOADED_FILES):
        if name not in files:
            raise UserError(
                f"{where}: {name} is not listed with its sha256 in the manifest's 'files', so "
                f"it cannot be checked; {REEXPORT}"
            )


def _check_fields(manifest: dict, where: str) -> None:
    n = manifest["max_seq_len"]
    if not _is_int(n) or not 1 <= n <= MAX_SEQ_LEN_LIMIT:
        raise UserError(
            f"{where}: max_seq_len {n!r} in manifest.json is not an integer in "
            f"1..{MAX_SEQ_LEN_LIMIT}; {REEXPORT}"
        )
    task = manifest["task"]
    if task not in TASKS:
        raise UserError(
            f"{where}: task {task!r} in manifest.json is not one of: {choices(TASKS)}; {REEXPORT}"
        )
    if not isinstance(manifest["format"], str) or not manifest["format"]:
        raise UserError(f"{where}: format {manifest['format']!r} is not a format name; {REEXPORT}")
    if "dynamic_seq" in manifest and not isinstance(manifest["dynamic_seq"], bool):
        raise UserError(
            f"{where}: dynamic_seq {manifest['dynamic_seq']!r} must be true or false; {REEXPORT}"
        )
    output = manifest.get("output", {})
    if not isinstance(output, dict) or output.get("kind", task) != task:
        raise UserError(
            f"{where}: the manifest's task is {task!r} but its output is {output!r}; {REEXPORT}"
        )
    inputs = manifest.get("inputs", [])
    if not isinstance(inputs, list) or not all(
        isinstance(i, dict) and isinstance(i.get("name"), str) for i in inputs
    ):
        raise UserError(
            f"{where}: 'inputs' in manifest.json must list objects with a 'name'; {REEXPORT}"
        )
    if "parity" in manifest and not isinstance(manifest["parity"], dict):
        raise UserError(f"{where}: 'parity' in manifest.json is not an object; {REEXPORT}")


def check_manifest(manifest: object, where: str) -> dict:
    """The manifest if its fields are well-formed and its digest matches; else a UserError."""
    if not isinstance(manifest, dict):
        raise UserError(f"{where}: manifest.json is not a JSON object; {REEXPORT}")
    for key in ("model_file", "format", "task", "files", "max_seq_len"):
        if key not in manifest:
            raise UserError(f"{where}: manifest.json lacks '{key}'; {REEXPORT}")
    _check_version(manifest, where)
    files = _check_files(manifest["files"], where)
    _check_model_file(manifest, files, where)
    _check_fields(manifest, where)
    if manifest.get(DIGEST_KEY) != manifest_digest(manifest):
        raise UserError(
            f"{where}: manifest.json does not match its {DIGEST_KEY} (edited after export, "
            f"or corrupt); {REEXPORT}"
        )
    return manifest


def check_labels(text: str, task: str, where: str) -> list[str]:
    """labels.json's list: strings, unique, and at least two for a classifier."""
    try:
        labels = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: labels.json is not valid JSON ({exc}); {REEXPORT}") from exc
    ok = isinstance(labels, list) and all(isinstance(x, str) for x in labels)
    if not ok or len(set(labels)) != len(labels):
        raise UserError(
            f"{where}: labels.json must be a list of distinct label names, such as "
            f'["negative", "positive"]; {REEXPORT}'
        )
    if task == "classification" and len(labels) < 2:
        raise UserError(
            f"{where}: labels.json lists {len(labels)} label(s); a classifier needs at least "
            f"two; {REEXPORT}"
        )
    return labels


def zip_member_error(name: str, mode: int, where: str) -> UserError | None:
    """Why a zip member may not be extracted (a path outside the bundle, a link), or None."""
    path = PurePosixPath(name)
    if name.startswith("/") or "\\" in name or "\0" in name or ".." in path.parts:
        return UserError(
            f"{where} holds the member {name!r}, which points outside the bundle; "
            "re-create the zip from a bundle directory"
        )
    if re.match(r"[A-Za-z]:", name):
        return UserError(f"{where} holds the member {name!r}, an absolute Windows path")
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return UserError(
            f"{where} holds the symbolic link {name!r}; bundles carry regular files only"
        )
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return UserError(f"{where} holds {name!r}, which is not a regular file")
    return None
