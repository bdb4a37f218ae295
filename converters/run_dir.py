"""Where a training run keeps its work, and how its result replaces an earlier one.

A run works in ``<out parent>/.<out name>.partial/`` (its fingerprint, checkpoints and the
staged result). Only a finished run replaces ``out``, by renames, so a failed or killed
run never overwrites an earlier good output.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from pocketbert.core.errors import UserError, first_line

SUMMARY = "summary.json"


def is_main() -> bool:
    """True in the process that writes files (always, unless under ``accelerate launch``)."""
    from accelerate import PartialState

    return PartialState().is_main_process


def work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def _overlap(out: Path, given: Path) -> str | None:
    """How ``out`` and an input path overlap ("is", "is inside", "contains"), or None."""
    a, b = out.resolve(), given.resolve()
    if a == b:
        return "is"
    if a.is_relative_to(b):
        return "is inside"
    if b.is_relative_to(a):
        return "contains"
    return None


def check_output(
    out: Path,
    inputs: dict[str, str | Path | None] | None = None,
    kept: dict[str, str | Path | None] | None = None,
) -> None:
    """Refuse an output that overlaps an input, or that is not an earlier pocketbert result.

    ``inputs``: what each input is called (``teacher``, ``data``, ...) -> its path; one that
    is not a path on this machine (a hub id) cannot overlap and is skipped. ``kept``: places
    the run writes and keeps (a cache directory), checked whether or not they exist yet.
    """
    places = [(w, p, False) for w, p in (inputs or {}).items()]
    places += [(w, p, True) for w, p in (kept or {}).items()]
    for what, given, always in places:
        if not isinstance(given, str | Path) or not (always or Path(given).exists()):
            continue
        how = _overlap(out, Path(given))
        if how is not None:
            raise UserError(
                f"output '{out}' {how} the {what} '{given}'; the run would replace its own "
                "input: give an output directory outside every input"
            )
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / SUMMARY).is_file())
    ):
        raise UserError(
            f"output '{out}' exists and is not an earlier pocketbert result; give a new or empty directory"
        )


def start(out: Path, fingerprint: dict, resume: bool) -> Path:
    """The work directory of this run: fresh, or the unfinished one when resuming."""
    work = work_dir(out)
    run_file = work / "run.json"
    if resume:
        if not run_file.is_file():
            raise UserError(
                f"nothing to resume for '{out}' (no unfinished run in '{work}'); run without --resume"
            )
        try:
            saved = json.loads(run_file.read_text())
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise UserError(
                f"the unfinished run in '{work}' is damaged ({first_line(exc)}); "
                f"run without --resume to start over (or delete '{work}')"
            ) from exc
        differ = sorted(
            k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k)
        )
        if differ:
            raise UserError(
                f"the checkpoint in '{work}' is from another run (different {', '.join(differ)}); "
                "resume with the same arguments, or run without --resume to start over"
            )
        return work
    from accelerate import PartialState

    state = PartialState()  # under `accelerate launch`, one process prepares the directory
    if state.is_main_process:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        (work / "run.json").write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
    state.wait_for_everyone()
    return work


def readable_by_all(staged: Path) -> None:
    """Give the staged files the modes of any new file (0644 under umask 022).

    Some writers (safetensors among them) create private 0600 files; a model directory
    is an ordinary output that other users and services read.
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in [staged, *staged.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def publish(staged: Path, out: Path, work: Path) -> Path:
    """Move the staged result to ``out`` (replacing an earlier result), then drop the work."""
    readable_by_all(staged)
    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(staged, out)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return out


def run_fingerprint(**parts) -> dict:
    """What must match for ``--resume`` to continue a run (JSON-able)."""
    return json.loads(
        json.dumps(
            parts, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)
        )
    )
