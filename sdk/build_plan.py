"""The build's steps, in order, as :func:`plan` adds them to a :class:`~pocketbert.pipeline.Build`.

What each step reads of the recipe is named in its ``reads`` (hashed into its key), so a
changed field re-runs the steps that read it and those after them, and nothing else.
The step functions themselves are in :mod:`pocketbert.build_steps`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from pocketbert import build_steps as steps
from pocketbert.build_data import prepare_data, teacher_labels
from pocketbert.core.errors import UserError
from pocketbert.lab.emulated import COUNTERS  # the formats an estimate counts
from pocketbert.pipeline import Build, Step
from pocketbert.recipe import EXAMPLES

TEACHER = "teacher"
ESTIMATORS = ("emulated", "fpga-model")  # transports whose figures are estimates


def model_step(model: str) -> str:
    return "finetune" if model == TEACHER else f"distill {model}"


def bundle_name(model: str, fmt: str, precision: str) -> str:
    return f"{model}-{fmt}-{precision}"


def plan(b: Build, data_root: Path) -> None:
    """Add every step of ``b.recipe``'s build to ``b``, in the order they run (the data's
    split files are written under ``data_root``)."""
    r = b.recipe
    teacher = resolve_teacher(r.teacher)
    teacher_id = {"source": r.teacher, "sha256": _dir_hash(teacher)}
    data = prepare_data(r, data_root)  # the split every step reads, written once
    labels = teacher_labels(teacher)
    if r.finetune is None and isinstance(teacher, Path):  # a hub id is checked when it loads
        if labels is None:
            raise UserError(
                f"{r.source}: teacher.model '{r.teacher}' is an encoder without a classifier "
                "head; add a teacher.finetune block (e.g. finetune: {epochs: 2})"
            )
        unknown = sorted(set(data.labels) - set(labels))
        if unknown:
            raise UserError(
                f"{r.source}: data labels {', '.join(unknown)} are not the teacher's "
                f"({', '.join(labels)}); give data with the teacher's labels, or a finetune block"
            )
    b.context.update(teacher=teacher, teacher_id=teacher_id, data=data)
    common = {"teacher": teacher_id, "data": data.identity}
    models: dict[str, tuple[str, ...]] = {}
    if r.finetune is not None:
        b.add(Step("finetune", "finetune", {**common, "options": r.finetune}, (), steps.finetune))
        models[TEACHER] = ("finetune",)
    elif r.export_teacher:
        models[TEACHER] = ()
    for s in r.students:
        reads = {**common, "student": dataclasses.asdict(s), "options": r.distill}
        after = ("finetune",) if r.finetune is not None else ()
        b.add(Step(model_step(s.name), "distill", reads, after, steps.distill))
        models[s.name] = (model_step(s.name),)
    exported: list[str] = []
    for model, after in models.items():
        if model == TEACHER and not r.export_teacher:
            continue
        for fmt in r.formats:
            for precision in r.precisions_for(fmt):
                name = bundle_name(model, fmt, precision)
                reads = {
                    **common,
                    "model": model,
                    "format": fmt,
                    "precision": precision,
                    "max_seq_len": r.export_max_seq_len,
                }
                b.add(Step(f"export {name}", "export", reads, after, steps.export))
                b.add(
                    Step(
                        f"evaluate {name}", "evaluate", common, (f"export {name}",), steps.evaluate
                    )
                )
                exported.append(name)
    from pocketbert.devices import catalog_path, load_devices

    catalog = b.context["catalog"] = load_devices(catalog_path(None))
    for target in r.devices:
        device = catalog[target.id]
        reads = {
            "device": target.id,
            "entry": json.loads(json.dumps(dataclasses.asdict(device), default=str)),
            "measure": target.measure,
            "profile": r.profile,
        }
        only_estimated = target.measure == "estimated" or device.transport in ESTIMATORS
        # an fpga device is estimated by the fpga model, which reads fpga programs
        estimable = ("fpga",) if device.kind == "fpga" else tuple(COUNTERS)
        for n in exported:
            fmt = b.steps[f"export {n}"].reads["format"]
            if fmt not in device.formats:
                continue
            if only_estimated and fmt not in estimable:
                _note(
                    b,
                    f"{target.id}: {fmt} bundles are not profiled there: its figures are "
                    f"estimated, and estimates count the work of {' or '.join(sorted(estimable))} graphs",
                )
                continue
            after = (f"evaluate {n}",)
            b.add(Step(profile_step(target.id, n), "profile", reads, after, steps.profile))
        plan_emulated(b, device, exported)


def plan_emulated(b: Build, device, exported: list[str]) -> None:
    """A board's bundles on its own software under qemu-user (``pocketbert verify --on``):
    a step per bundle in a format it runs; a note instead where that cannot be done here."""
    from pocketbert.boards.check import refusal
    from pocketbert.boards.root import INSTALL_QEMU, QEMU
    from pocketbert.boards.wheels import NOT_EMULATED

    if device.kind != "board" or not device.software:
        return
    runs = []
    for n in exported:
        reads = b.steps[f"export {n}"].reads
        if reads["format"] not in device.formats:
            continue
        refused = refusal(device, reads["format"], reads["precision"])
        if refused:
            raise UserError(
                f"{b.recipe.source}: {device.id} runs {refused}; drop {reads['precision']} "
                f"from export.precisions (or {reads['format']} from export.formats), or the device"
            )
        if reads["format"] in NOT_EMULATED:
            _note(b, f"{device.id}: {NOT_EMULATED[reads['format']]}")
            continue
        runs.append(n)
    if runs and not _qemu_installed():
        _note(
            b,
            f"{device.id}: the emulated board check was skipped: {QEMU} is not installed "
            f"(`{INSTALL_QEMU}`)",
        )
        return
    for n in runs:
        reads = {"device": device.id, "software": device.software, "cpu": device.cpu}
        b.add(Step(f"emulate {device.id} {n}", "emulate", reads, (f"evaluate {n}",), steps.emulate))


def _qemu_installed() -> bool:
    import shutil

    from pocketbert.boards.root import QEMU

    return shutil.which(QEMU) is not None


def _note(b: Build, line: str) -> None:
    notes = b.context.setdefault("notes", [])
    if line not in notes:
        notes.append(line)


def profile_step(device: str, bundle: str) -> str:
    return f"profile {device} {bundle}"


def resolve_teacher(source: str) -> Path | str:
    if source.startswith(EXAMPLES):
        from pocketbert.examples import minilm_path

        return minilm_path()
    return Path(source) if Path(source).exists() else source


def _dir_hash(path: Path | str) -> str:
    """sha256 over a model directory's files (names and contents); a hub id hashes its name."""
    if not isinstance(path, Path):
        return hashlib.sha256(path.encode()).hexdigest()
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file() and ".partial" not in q.as_posix()):
        h.update(p.relative_to(path).as_posix().encode())
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
