"""The build's report: ``report.json`` for scripts and a self-contained ``report.html``.

Both carry the same data: every bundle (model, family, format, precision, params, its own
test accuracy, % kept, p50/p90, peak memory, MB, measured or estimated), the pick per
device with its budget margins, each bundle's lineage, every warning, and the build's
timing. The HTML draws one Pareto plot per device as static SVG (no script, works offline).
Both are written whole or not at all.
"""

from __future__ import annotations

import json
import os

from pocketbert.core.files import write_text_atomic
from pocketbert.pipeline import Build
from pocketbert.report_html import render
from pocketbert.selection import teacher_accuracy

REPORT_JSON, REPORT_HTML = "report.json", "report.html"
ESTIMATE_CAVEAT = (
    "{device}: figures are estimated ({models}), not measured; peak memory is not estimated"
)
ESTIMATE_MODELS = {  # by the bundle's format; any other format is the per-op roofline
    "fpga": "a cycle and resource model of a systolic array of the board's resources, for "
    "fpga bundles",
}
ROOFLINE = "a roofline model of the exported graph, calibrated per runtime"


def bundle_rows(b: Build) -> list[dict]:
    """One row per export: the bundle's figures and the model it came from."""
    teacher = teacher_accuracy(b)
    teacher_params = next(
        (
            r["summary"].get("teacher_params")
            for n, r in b.results.items()
            if n.startswith("distill ")
        ),
        None,
    )
    rows = []
    for name, step in b.steps.items():
        if step.kind != "export":
            continue
        bundle = name.removeprefix("export ")
        model = step.reads["model"]
        made = b.results.get("finetune" if model == "teacher" else f"distill {model}", {})
        summary = made.get("summary", {})
        evaluated = b.results[f"evaluate {bundle}"]
        family = made.get("student", {}).get("family", "teacher")
        row = {
            "bundle": bundle,
            "model": model,
            "family": family,
            "format": step.reads["format"],
            "precision": evaluated.get("precision", step.reads["precision"]),
            "requested": step.reads["precision"],
            "params": summary.get("student_params", summary.get("params"))
            or (teacher_params if model == "teacher" else None),
            "status": evaluated["status"],
            "error": evaluated.get("error"),
        }
        if evaluated["status"] == "ok":
            acc = evaluated["test_accuracy"]
            row.update(
                test_accuracy=acc,
                test_macro_f1=evaluated["test_macro_f1"],
                kept=round(100 * acc / teacher, 2) if teacher else None,
                file_mb=evaluated["file_mb"],
                path=str(b.folder(b.steps[f"evaluate {bundle}"]) / evaluated["bundle"]),
                lineage=evaluated["lineage"],
            )
        rows.append(row)
    return rows


def collect_warnings(b: Build, bundles: list[dict]) -> list[str]:
    out: list[str] = []
    for name, result in b.results.items():
        for w in result.get("summary", {}).get("warnings", []):
            out.append(f"{name}: {w}")
    for row in bundles:
        if row["status"] != "ok":
            out.append(f"{row['bundle']}: not made ({row['error']})")
        elif row["precision"] != row["requested"]:
            out.append(
                f"{row['bundle']}: {row['requested']} missed the parity gate; "
                f"{row['precision']} shipped instead"
            )
    out += b.context.get("notes", [])
    estimated: dict[str, list[str]] = {}  # device -> the estimators its figures came from
    for step in b.steps.values():
        if step.kind == "emulate":  # the board's own software under qemu (a check, not a timing)
            out += b.results[step.name]["warnings"]
        if step.kind != "profile":
            continue
        device, result = step.reads["device"], b.results[step.name]
        bundle = step.after[0].removeprefix("evaluate ")
        out += result["warnings"]
        row = result["row"]
        if row["status"] != "ok":
            out.append(f"{device} {bundle}: failed ({row['error']})")
            continue
        out += [f"{device} {bundle}: {w}" for w in row.get("warnings", [])]
        if row["method"] == "estimated":
            fmt = b.steps[f"export {bundle}"].reads["format"]
            estimated.setdefault(device, []).append(ESTIMATE_MODELS.get(fmt, ROOFLINE))
    for device, models in estimated.items():
        models = "; ".join(sorted(set(models), key=lambda m: m != ROOFLINE))
        out.append(ESTIMATE_CAVEAT.format(device=device, models=models))
    return list(dict.fromkeys(out))


def build_report(b: Build, selections: dict, timing: list[dict], wall_s: float) -> dict:
    from pocketbert.profiler.hygiene import cpu_model, isa

    bundles = bundle_rows(b)
    ran = sum(t["seconds"] for t in timing)
    data = b.context["data"]
    return {
        "version": 1,
        "recipe": {"source": b.recipe.source, "sha256": b.recipe.sha256()},
        "work": str(b.work),
        "machine": {"cpu": cpu_model(), "isa": isa(), "cores": os.cpu_count()},
        "teacher": {**b.context["teacher_id"], "test_accuracy": teacher_accuracy(b)},
        "data": {**data.identity, "labels": data.labels, "rows": data.describe},
        "bundles": bundles,
        "devices": selections,
        "picks": {d: s["pick"] for d, s in selections.items()},
        "warnings": collect_warnings(b, bundles),
        "timing": {
            "steps": timing,
            "total_s": round(wall_s, 2),
            "steps_s": round(ran, 2),
            "pipeline_overhead_s": round(max(wall_s - ran, 0.0), 2),
        },
    }


def write_report(b: Build, selections: dict, timing: list[dict], wall_s: float) -> dict:
    report = build_report(b, selections, timing, wall_s)
    paths = {"report_json": str(b.work / REPORT_JSON), "report_html": str(b.work / REPORT_HTML)}
    report.update(paths)
    write_text_atomic(b.work / REPORT_HTML, render(report))
    write_text_atomic(b.work / REPORT_JSON, json.dumps(report, indent=2) + "\n")
    return report
