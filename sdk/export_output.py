"""Where an export's bundles land: the output path's rules, stale leftovers, the staged set.

- ``-o out/sst2`` is a bundle directory (one job) or a set of bundle directories
  ``out/sst2/<format>-<precision>`` (several); ``-o out/sst2.zip`` a zipped bundle (one
  job). A model-file suffix (``.onnx``/``.pte``/``.tflite``) is refused with the right form.
- Several jobs write the whole set into a staging directory beside ``out`` that replaces
  ``out`` at the end, so a directory never mixes the bundles of two runs.
- Staging names carry the writer's pid (``.NAME.partial-<pid>-*``); a later export removes
  those whose process is gone (kill -9 leaves them).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from pocketbert.bundle import MANIFEST
from pocketbert.core.errors import UserError


def check_target(out: Path, jobs: int, suffixes: dict[str, str], formats: Iterable[str]) -> None:
    """Refuse an ``out`` that cannot mean what it says, before any work is done.

    ``suffixes``: format name -> model-file suffix (".onnx"); ``formats``: those requested.
    """
    named = {sfx: fmt for fmt, sfx in suffixes.items()}
    if out.suffix in named:
        fmt, bundle = named[out.suffix], out.with_suffix("")
        wanted = ", ".join(sorted(set(formats)))
        clash = f" and --format is {wanted}" if wanted != fmt else ""
        raise UserError(
            f"-o {out} names a model file ({fmt}){clash}; a bundle is a directory or a .zip: "
            f"give -o {bundle} (writes {bundle / ('model' + out.suffix)}) or -o {bundle}.zip"
        )
    check_writable(out)
    if out.suffix == ".zip":
        if jobs > 1:
            raise UserError(
                f"-o {out}: a .zip holds one bundle and {jobs} exports were asked for; "
                "give a directory for the set, or one format and one precision"
            )
        if out.exists() and not is_zip_bundle(out):
            raise UserError(
                f"'{out}' exists and is not a zipped bundle; "
                "give a new path or an earlier .zip bundle"
            )
    elif jobs > 1 and out.exists() and not is_bundle_set(out):
        raise UserError(
            f"'{out}' exists and is not a set of pocketbert bundles; give a new directory "
            "or an earlier export's directory to replace"
        )


def check_writable(out: Path) -> None:
    """Refuse an ``out`` whose directory cannot be written, before the model loads.

    The nearest existing folder above ``out`` is probed by making (and removing) a
    directory in it: permissions, read-only mounts and immutable folders all show there.
    """
    place = out.absolute().parent
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        Path(tempfile.mkdtemp(prefix=".pocketbert-probe-", dir=place)).rmdir()
    except OSError as exc:
        raise UserError(
            f"cannot write the output '{out}': '{place}' is not writable ({exc.strerror}); "
            "give an -o in a writable place"
        ) from exc


def is_zip_bundle(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(Path(n).name == MANIFEST for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def is_bundle_set(path: Path) -> bool:
    """An empty directory, one bundle, or a directory of bundles (and their logs)."""
    if not path.is_dir():
        return False
    if (path / MANIFEST).is_file():
        return True
    entries = list(path.iterdir())
    return all((p / MANIFEST).is_file() or p.suffix == ".log" for p in entries)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale(out: Path) -> list[Path]:
    """Remove ``.NAME.partial-<pid>-*`` / ``.NAME.old[-<pid>]`` siblings of ``out`` whose
    process is gone; returns what was removed."""
    if not out.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(partial|old)(?:-(\d+))?(?:-.*)?$")
    removed = []
    for p in out.parent.iterdir():
        m = pattern.match(p.name)
        if not m:
            continue
        kind, pid = m.group(1), m.group(2)
        # no pid: bundle.staging's own .old (it discards one before each swap), or an
        # unowned partial from an older pocketbert; a pid: only if that process is gone
        if (pid is None and kind == "partial") or (pid is not None and _alive(int(pid))):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


class StagedSet:
    """A directory beside ``out`` that the jobs write into; ``commit`` swaps it in."""

    def __init__(self, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{out.name}.partial-{os.getpid()}-"
        self.dir = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))

    def commit(self) -> None:
        """Replace ``out`` with the staged set (out's old contents are dropped)."""
        self.dir.chmod(0o755)  # mkdtemp makes it private; a set is an ordinary directory
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            self.out.rename(old)
            self.dir.rename(self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.dir.rename(self.out)

    def discard(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
