"""The build's step functions: each takes a :class:`~pocketbert.pipeline.StepRun`, writes
its output into ``run.out`` and returns the JSON-able result the pipeline records.

They call the public verbs (``finetune``, ``distill``, ``export``, ``load``, ``profile``),
so a build does exactly what a script calling those verbs would.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from pocketbert.core.errors import UserError, first_line
from pocketbert.pipeline import StepRun

MODEL = "model"
BUNDLE = "bundle"
SUMMARY_KEYS = (
    "test_accuracy",
    "test_macro_f1",
    "test_f1",
    "teacher_test_accuracy",
    "teacher_test_macro_f1",
    "accuracy_kept",
    "macro_f1_kept",
    "lost_classes",
    "params",
    "student_params",
    "teacher_params",
    "best_epoch",
    "stopped_early",
    "train_seconds",
    "speedup_on_test_sentences",
    "compression",  # each compression method and the bytes it saved (the bundle's lineage)
    "warnings",
)
PREDICT_CHUNK = 64


def _resume(model: Path) -> bool:
    """A killed training left its checkpoint beside ``model``: continue it."""
    from pocketbert.converters.run_dir import work_dir

    return (work_dir(model) / "run.json").is_file()


def _finished(model: Path) -> dict | None:
    """The summary of a training that finished before the build was killed (no result.json)."""
    try:
        return json.loads((model / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def _summary(summary: dict) -> dict:
    return {k: summary[k] for k in SUMMARY_KEYS if k in summary}


def finetune(run: StepRun) -> dict:
    import pocketbert

    ctx, model = run.build.context, run.out / MODEL
    opts = pocketbert.FinetuneOptions(
        **run.build.recipe.finetune, quiet=run.build.progress.quiet, resume=_resume(model)
    )
    summary = _finished(model) or pocketbert.finetune(ctx["teacher"], ctx["data"].path, model, opts)
    return {"model": MODEL, "summary": _summary(summary)}


def distill(run: StepRun) -> dict:
    import pocketbert

    r, ctx, model = run.build.recipe, run.build.context, run.out / MODEL
    student = run.step.reads["student"]
    opts = pocketbert.DistillOptions(
        **r.distill,
        student=student["family"],
        size=student["size"],
        knobs=student["knobs"] or None,
        cache_dir=run.build.work / "cache",  # the teacher labels the transfer set once
        resume=_resume(model),
        quiet=run.build.progress.quiet,
    )
    summary = _finished(model) or pocketbert.distill(
        model_dir(run, "finetune"), ctx["data"].path, model, opts
    )
    return {"model": MODEL, "summary": _summary(summary), "student": student}


def model_dir(run: StepRun, step: str | None) -> Path | str:
    """The model a step made (``step``'s folder), or the recipe's own teacher (no step)."""
    if step is None or step not in run.build.steps:
        return run.build.context["teacher"]
    return run.folder(step) / run.result(step)["model"]


def export(run: StepRun) -> dict:
    import pocketbert
    from pocketbert.build_plan import model_step

    reads = run.step.reads
    source = model_dir(run, model_step(reads["model"]))
    target = run.out / BUNDLE
    shutil.rmtree(target, ignore_errors=True)  # an export killed after it wrote, before result.json
    try:
        (result,) = pocketbert.export(
            source,
            target,
            format=reads["format"],
            precision=reads["precision"],
            max_seq_len=reads["max_seq_len"],
            quiet=run.build.progress.quiet,
        )
    except UserError as exc:  # ExportFailed too: the bundle missed its gate
        return {"status": "failed", "error": first_line(exc)}
    return {
        "status": "ok",
        "bundle": BUNDLE,
        "shipped": result.shipped or result.precision,
        "parity": result.parity,
        "export_seconds": round(result.seconds, 1),
    }


def evaluate(run: StepRun) -> dict:
    """The bundle's own test accuracy (through its runtime), and a copy with its lineage."""
    import numpy as np

    import pocketbert
    from pocketbert.bundle import MANIFEST, write_manifest
    from pocketbert.core.metrics import class_scores

    (export_step,) = run.step.after
    exported = run.result(export_step)
    if exported["status"] != "ok":
        return {"status": "failed", "error": exported["error"]}
    source = run.folder(export_step) / exported["bundle"]
    test = run.build.context["data"].test
    with pocketbert.load(source) as predictor:
        labels = list(predictor.labels)
        unknown = sorted({y for _, y in test} - set(labels))
        if unknown:
            return {
                "status": "failed",
                "error": f"test labels {', '.join(unknown)} are not the bundle's",
            }
        predicted: list[int] = []
        for start in range(0, len(test), PREDICT_CHUNK):
            chunk = [t for t, _ in test[start : start + PREDICT_CHUNK]]
            predicted += [labels.index(p["label"]) for p in predictor.predict(chunk)]
    scores = class_scores(predicted, [labels.index(y) for _, y in test], len(labels))
    manifest = json.loads((source / MANIFEST).read_text())
    figures = {
        "test_accuracy": round(float(scores["accuracy"]), 5),
        "test_macro_f1": round(float(scores["macro_f1"]), 5),
        "test_f1": dict(
            zip(labels, (round(float(f), 5) for f in np.asarray(scores["f1"])), strict=True)
        ),
        "test_rows": len(test),
    }
    lineage = _lineage(run, export_step, exported, figures)
    staged = run.out / f".{BUNDLE}.partial"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(source, staged, copy_function=os.link)  # the files, not copies of them
    (staged / MANIFEST).unlink()  # a new manifest, not the export's own rewritten
    write_manifest(staged, {**manifest, "lineage": lineage})
    final = run.out / BUNDLE
    shutil.rmtree(final, ignore_errors=True)
    staged.replace(final)
    return {
        "status": "ok",
        "bundle": BUNDLE,
        **figures,
        "file_mb": round((source / manifest["model_file"]).stat().st_size / 1e6, 3),
        "format": manifest["format"],
        "precision": exported["shipped"],
        "lineage": lineage,
    }


def _lineage(run: StepRun, export_step: str, exported: dict, figures: dict) -> dict:
    """The chain that made a bundle: teacher, data, recipe, student, distillation, export."""
    from pocketbert.build_plan import model_step

    b, reads = run.build, run.build.steps[export_step].reads
    chain = {
        "recipe": {"source": b.recipe.source, "sha256": b.recipe.sha256()},
        "teacher": b.context["teacher_id"],
        "data": b.context["data"].identity,
        "model": reads["model"],
    }
    made_by = model_step(reads["model"])
    if made_by in b.steps:
        step = b.steps[made_by]
        chain[step.kind] = {
            "step": step.folder,
            "options": step.reads.get("options"),
            **({"student": step.reads["student"]} if "student" in step.reads else {}),
            "summary": b.results[made_by]["summary"],
        }
    chain["export"] = {
        "step": b.steps[export_step].folder,
        "format": reads["format"],
        "requested": reads["precision"],
        "shipped": exported["shipped"],
        "max_seq_len": reads["max_seq_len"],
        "parity": exported["parity"],
    }
    chain["bundle_test"] = figures
    return chain


def profile(run: StepRun) -> dict:
    """One bundle on one device: measured, or estimated where the recipe says so or, with
    ``measure: auto``, where the device cannot be reached (said in the result's warnings)."""
    reads = run.step.reads
    device = run.build.context["catalog"][reads["device"]]
    (evaluate_step,) = run.step.after
    evaluated = run.result(evaluate_step)
    bundle = run.folder(evaluate_step) / evaluated["bundle"]
    measure = reads["measure"]
    unreachable = run.build.context.setdefault("unreachable", {})
    if measure == "auto":
        measure = (
            "estimated"
            if device.transport in ("emulated", "fpga-model") or device.id in unreachable
            else "measured"
        )
    warnings: list[str] = []
    row = _profile_row(bundle, device.id, measure == "estimated", reads["profile"])
    if reads["measure"] == "auto" and measure == "measured" and row["status"] == "failed":
        unreachable[device.id] = row["error"]
        row = _profile_row(bundle, device.id, True, reads["profile"])
    if device.id in unreachable and row.get("method") == "estimated" and reads["measure"] == "auto":
        warnings.append(
            f"{device.id} could not be reached ({unreachable[device.id]}); its figures are estimated"
        )
    return {"device": device.id, "row": row, "warnings": warnings}


def _profile_row(bundle: Path, device: str, estimate: bool, opts: dict) -> dict:
    import pocketbert

    fields = {"runs": opts["runs"], "warmup": opts["warmup"], "seq_lens": [opts["seq_len"]]}
    if opts.get("threads"):
        fields["threads"] = opts["threads"]
    (rec,) = pocketbert.profile(
        [str(bundle)], [device], store=None, quiet=True, estimate=estimate, **fields
    )
    if rec["status"] != "ok":
        return {"status": "failed", "error": first_line(Exception(rec.get("error") or "failed"))}
    lat, mem = rec["latency_ms"], rec.get("memory", {})
    return {
        "status": "ok",
        "method": rec["method"],
        "p50_ms": lat.get("p50", lat.get("estimate")),
        "p90_ms": lat.get("p90", lat.get("estimate")),
        "memory_mb": mem.get("model_peak_delta_mb"),
        "warnings": rec.get("warnings", []),
    }


def emulate(run: StepRun) -> dict:
    """One bundle on a board's own software under qemu-user; a correctness check against the
    host's run (never a timing). A bundle that does not run there is failed on that board."""
    from pocketbert.boards.check import check_on_board

    device = run.step.reads["device"]
    (evaluate_step,) = run.step.after
    evaluated = run.result(evaluate_step)
    name = evaluate_step.removeprefix("evaluate ")
    if evaluated["status"] != "ok":
        return {"device": device, "status": "not checked", "warnings": []}
    bundle = run.folder(evaluate_step) / evaluated["bundle"]
    try:
        record = check_on_board(bundle, device, say=run.build.progress.say)
    except UserError as exc:  # a wheel the board cannot have, no network: said, not fatal
        line = f"{device} {name}: not checked on the emulated board ({first_line(exc)})"
        return {"device": device, "status": "not checked", "warnings": [line]}
    warnings = []
    if record["status"] == "does not run":
        warnings.append(
            f"{device} {name}: does not run on the board's software (emulated): {record['error']}"
        )
    elif record["status"] == "failed":
        why = record.get("error") or record["parity"]["gate"] + " missed"
        warnings.append(f"{device} {name}: emulated board outputs differ from the host's ({why})")
    return {"device": device, "status": record["status"], "record": record, "warnings": warnings}
