"""``pocketbert build``: the flow from a recipe to a chosen, measured bundle per device.

The build is an explicit ordered list of plain steps (:func:`plan`):

    finetune -> distill (each student) -> export (each model x format x precision)
    -> evaluate (each bundle, through its own runtime) -> profile (each device)
    -> select -> report

Each step's output lives in ``WORK/steps/<name>-<key>/``, ``key`` being the hash of what
the step reads (its recipe fields and its upstream steps' keys); ``result.json`` is written
last, atomically, and marks the step done. A second run with nothing changed does no work;
a changed knob re-runs only the steps that depend on it; after ``kill -9`` the same command
finishes the missing steps (training resumes from its checkpoint). Steps run one at a time:
two trainings on two cores would only slow each other down.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketbert.core.errors import UserError
from pocketbert.core.files import write_text_atomic
from pocketbert.core.progress import Progress
from pocketbert.recipe import VERSION, Recipe

RESULT = "result.json"
STATE = "build.json"  # the work directory's own record: recipe version and the last plan


@dataclass
class Step:
    name: str  # unique in the plan: "distill squeezebert-small"
    kind: str  # finetune | distill | export | evaluate | profile
    reads: dict[str, Any]  # what the step reads of the recipe (hashed into its key)
    after: tuple[str, ...]  # upstream steps (their keys are hashed into this one's)
    run: Callable[[StepRun], dict]
    key: str = ""

    @property
    def folder(self) -> str:
        return f"{re.sub(r'[^A-Za-z0-9.-]+', '-', self.name)}-{self.key[:12]}"


@dataclass
class StepRun:
    """What a running step sees: its folder, the finished upstream results, the build."""

    step: Step
    out: Path
    build: Build

    def result(self, name: str) -> dict:
        return self.build.results[name]

    def folder(self, name: str) -> Path:
        return self.build.folder(self.build.steps[name])


@dataclass
class Build:
    recipe: Recipe
    work: Path
    progress: Progress
    steps: dict[str, Step] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)
    timing: list[dict] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)  # the resolved teacher and data

    def folder(self, step: Step) -> Path:
        return self.work / "steps" / step.folder

    def add(self, step: Step) -> Step:
        missing = [a for a in step.after if a not in self.steps]
        if missing or step.name in self.steps:
            raise AssertionError(f"plan order: {step.name} after {missing}")
        upstream = [self.steps[a].key for a in step.after]
        text = json.dumps([step.kind, step.reads, upstream], sort_keys=True, default=str)
        step.key = hashlib.sha256(text.encode()).hexdigest()
        self.steps[step.name] = step
        return step

    def done(self, step: Step) -> dict | None:
        path = self.folder(step) / RESULT
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def run(self, dry_run: bool = False) -> list[dict]:
        """Run every step not done; returns one line per step (name, ran/cached, seconds)."""
        total = len(self.steps)
        for i, step in enumerate(self.steps.values(), 1):
            cached = self.done(step)
            label = f"[{i}/{total}] {step.name}"
            if cached is not None:
                self.results[step.name] = cached
                self.timing.append({"step": step.name, "status": "cached", "seconds": 0.0})
                if not dry_run:
                    self.progress.say(f"{label}: done earlier")
                continue
            if dry_run:
                self.timing.append({"step": step.name, "status": "to do", "seconds": 0.0})
                continue
            out = self.folder(step)
            out.mkdir(parents=True, exist_ok=True)
            self.progress.say(f"{label} …")
            start = time.perf_counter()
            result = step.run(StepRun(step, out, self))
            seconds = time.perf_counter() - start
            _write_json(out / RESULT, result)
            self.results[step.name] = result
            self.timing.append({"step": step.name, "status": "ran", "seconds": round(seconds, 2)})
            self.progress.say(f"{label} done in {seconds:.1f}s")
        return self.timing


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def open_work(work: Path, recipe: Recipe) -> None:
    """Refuse a work directory written by another recipe version, or not a build's at all."""
    state = work / STATE
    if work.exists() and not work.is_dir():
        raise UserError(f"--work '{work}' is a file; give a directory for the build")
    if state.is_file():
        try:
            version = json.loads(state.read_text()).get("version")
        except (OSError, ValueError, AttributeError):
            version = None
        if version != VERSION:
            raise UserError(
                f"--work '{work}' holds a build of recipe version {version!r}; this pocketbert "
                f"builds version {VERSION}: give a new --work directory (or delete '{work}')"
            )
    elif work.is_dir() and any(work.iterdir()):
        raise UserError(
            f"--work '{work}' exists and is not a pocketbert build directory; "
            "give a new or empty directory"
        )
    try:
        work.mkdir(parents=True, exist_ok=True)
        _write_json(state, {"version": VERSION, "recipe": recipe.source, "sha256": recipe.sha256()})
    except OSError as exc:
        raise UserError(
            f"cannot write the build directory '{work}' ({exc.strerror}); give a writable --work"
        ) from exc


def build(
    recipe: str | Path | Recipe | None = None,
    *,
    work: str | Path = "pocketbert-build",
    dry_run: bool = False,
    quiet: bool = False,
) -> dict:
    """Run the recipe's build in ``work``; returns the report (``report.json``'s content)
    with ``report_html`` and ``report_json`` paths, or, with ``dry_run``, the plan."""
    from pocketbert.build_plan import plan
    from pocketbert.recipe import load_recipe
    from pocketbert.report import write_report
    from pocketbert.selection import select_all

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    work = Path(work)
    started = time.perf_counter()
    if dry_run and not (work / STATE).is_file():
        if work.exists() and (not work.is_dir() or any(work.iterdir())):
            open_work(work, recipe)  # the same refusals as a real run
    elif not dry_run:
        open_work(work, recipe)
    progress = Progress(quiet)
    b = Build(recipe, work, progress)
    if dry_run:  # plans without writing: the data is read into a folder removed at once
        import tempfile

        with tempfile.TemporaryDirectory(prefix="pocketbert-plan-") as scratch:
            plan(b, data_root=Path(scratch))
            return {"plan": b.run(dry_run=True), "work": str(work)}
    plan(b, data_root=work / "data")
    timing = b.run()
    selections = select_all(b)
    wall = time.perf_counter() - started
    report = write_report(b, selections, timing, wall)
    return report
