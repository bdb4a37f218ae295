"""Per device, the most accurate bundle within its budgets (ties: faster, then smaller).

A candidate is a bundle the device's profile step ran; its figures are the bundle's own test
accuracy (through its runtime), % kept of the teacher's, p50 latency, file size and, where
measured, peak memory. A budget whose figure a device cannot give (memory, when estimated)
is not judged and the selection says so. When nothing fits, every candidate says which
budgets it misses and by how much.
"""

from __future__ import annotations

from pocketbert.pipeline import Build
from pocketbert.recipe import Budgets

# budget -> (the candidate's figure, unit, "max" or "min")
CHECKS = {
    "max_latency_ms": ("p50_ms", "ms", "max"),
    "max_size_mb": ("file_mb", "MB", "max"),
    "max_memory_mb": ("memory_mb", "MB", "max"),
    "min_kept": ("kept", "%", "min"),
}


def teacher_accuracy(b: Build) -> float | None:
    """The teacher's test accuracy (torch, on the build's test split), from its training."""
    if "finetune" in b.results:
        return b.results["finetune"]["summary"].get("test_accuracy")
    for name, result in b.results.items():
        if name.startswith("distill "):
            return result["summary"].get("teacher_test_accuracy")
    for name, result in b.results.items():  # a given classifier, no training: its own bundle
        if name.startswith("evaluate teacher-") and result["status"] == "ok":
            return result["test_accuracy"]
    return None


def candidates(b: Build, device: str) -> list[dict]:
    """One row per bundle profiled on ``device``, with every figure selection reads."""
    teacher = teacher_accuracy(b)
    rows = []
    for step in b.steps.values():
        if step.kind != "profile" or step.reads["device"] != device:
            continue
        (evaluate_step,) = step.after
        name = evaluate_step.removeprefix("evaluate ")
        evaluated, prof = b.results[evaluate_step], b.results[step.name]["row"]
        row = {"bundle": name, "status": prof["status"], "error": prof.get("error")}
        emulated = b.results.get(f"emulate {device} {name}", {})
        if emulated.get("status") in ("does not run", "failed") and prof["status"] == "ok":
            row.update(status="failed", error=emulated["warnings"][0])  # not on this board
            prof = {"status": "failed"}
        if prof["status"] == "ok":
            acc = evaluated["test_accuracy"]
            row.update(
                method=prof["method"],
                p50_ms=prof["p50_ms"],
                p90_ms=prof["p90_ms"],
                memory_mb=prof["memory_mb"],
                file_mb=evaluated["file_mb"],
                test_accuracy=acc,
                kept=round(100 * acc / teacher, 2) if teacher else None,
            )
        rows.append(row)
    return rows


def judge(row: dict, budgets: Budgets) -> tuple[list[dict], list[dict], list[str]]:
    """(margins of the budgets met, misses of those not met, budgets not judged)."""
    met, missed, unjudged = [], [], []
    for budget, (figure, unit, kind) in CHECKS.items():
        limit = getattr(budgets, budget)
        if limit is None:
            continue
        value = row.get(figure)
        if value is None:
            unjudged.append(budget)
            continue
        margin = limit - value if kind == "max" else value - limit
        entry = {"budget": budget, "limit": limit, "value": value, "unit": unit}
        if margin >= 0:
            met.append({**entry, "margin": round(margin, 3)})
        else:
            missed.append({**entry, "by": round(-margin, 3)})
    return met, missed, unjudged


def select(b: Build, device: str, budgets: Budgets) -> dict:
    rows = candidates(b, device)
    fitting = []
    for row in rows:
        if row["status"] != "ok":
            row["fits"] = False
            continue
        met, missed, unjudged = judge(row, budgets)
        row.update(fits=not missed, margins=met, misses=missed, not_judged=unjudged)
        if not missed:
            fitting.append(row)
    methods = sorted({r["method"] for r in rows if r["status"] == "ok"})
    pick = max(
        fitting, key=lambda r: (r["test_accuracy"], -r["p50_ms"], -r["file_mb"]), default=None
    )
    out = {
        "device": device,
        "method": methods[0] if len(methods) == 1 else ("+".join(methods) or None),
        "budgets": {k: v for k, v in vars(budgets).items() if v is not None},
        "pick": pick["bundle"] if pick else None,
        "margins": pick["margins"] if pick else [],
        "not_judged": pick["not_judged"] if pick else [],
        "candidates": rows,
    }
    if pick is None:
        out["reason"] = why_none(rows)
    return out


def why_none(rows: list[dict]) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    if not rows:
        return "no bundle in a format this device runs was made"
    if not ok:
        return f"every bundle failed here ({rows[0].get('error')})"
    closest = min(ok, key=lambda r: sum(m["by"] / max(abs(m["limit"]), 1e-9) for m in r["misses"]))
    misses = ", ".join(f"{m['budget']} by {m['by']:g} {m['unit']}" for m in closest["misses"])
    return f"nothing fits the budgets; the closest, {closest['bundle']}, misses {misses}"


def select_all(b: Build) -> dict[str, dict]:
    return {t.id: select(b, t.id, t.budgets) for t in b.recipe.devices}
