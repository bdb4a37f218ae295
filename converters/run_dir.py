"""Where a training run keeps its work, and how its result replaces an earlier one.

A run works in ``<out parent>/.<out name>.partial/`` (its fingerprint, checkpoints and the
staged result). Only a finished run replaces ``out``, by renames, so a failed or killed
run never overwrites an earlier good output.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from pocketbert.core.errors import UserError

SUMMARY = "summary.json"


def is_main() -> bool:
    """True in the process that writes files (always, unless under ``accelerate launch``)."""
    from accelerate import PartialState

    return PartialState().is_main_process


def work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def check_output(out: Path) -> None:
    """Refuse to replace something that is not an earlier pocketbert result."""
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
        saved = json.loads(run_file.read_text())
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


def publish(staged: Path, out: Path, work: Path) -> Path:
    """Move the staged result to ``out`` (replacing an earlier result), then drop the work."""
    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(staged, out)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return out
