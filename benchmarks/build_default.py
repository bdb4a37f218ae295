"""The default build (``pocketbert build``, no recipe): wall time per step, the pipeline's own
overhead, and a cached re-run.

    python benchmarks/build_default.py [--work DIR] [--recipe RECIPE]

Runs the build in a fresh process (as a user would), then runs it again (nothing to do).
Prints, from the first run's report.json: each step's seconds, the total, the time outside
the steps (planning, hashing, selection, report: the pipeline's overhead against the same
verbs called one after another), the cached re-run's wall time, each device's pick and the
machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path


def _build(work: Path, recipe: str | None) -> tuple[float, int]:
    argv = [sys.executable, "-m", "pocketbert.cli", "build", "--work", str(work), "--quiet"]
    argv += [recipe] if recipe else []
    start = time.perf_counter()
    proc = subprocess.run(argv)
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", default="bench-build")
    parser.add_argument("--recipe", default=None, help="default: the packaged default build")
    parser.add_argument(
        "--keep", action="store_true", help="reuse an earlier --work (default: start afresh)"
    )
    args = parser.parse_args()
    from pocketbert.profiler.hygiene import cpu_model, isa

    work = Path(args.work)
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    wall, rc = _build(work, args.recipe)
    report = json.loads((work / "report.json").read_text())
    cached_wall, cached_rc = _build(work, args.recipe)
    kinds: dict[str, float] = defaultdict(float)
    print(f"{'step':<58}{'status':>8}{'seconds':>10}")
    for s in report["timing"]["steps"]:
        kinds[s["step"].split()[0]] += s["seconds"]
        print(f"{s['step']:<58}{s['status']:>8}{s['seconds']:>10.1f}")
    print()
    for kind, seconds in kinds.items():
        print(f"{kind:<12}{seconds:>8.1f} s")
    t = report["timing"]
    inside = t["total_s"]
    print(
        f"\nbuild: {wall:.1f} s wall (exit {rc}); inside build(): {inside:.1f} s, of which steps "
        f"{t['steps_s']:.1f} s and the pipeline {t['pipeline_overhead_s']:.2f} s "
        f"({100 * t['pipeline_overhead_s'] / max(inside, 1e-9):.2f}%); process start and imports "
        f"{wall - inside:.1f} s"
    )
    print(f"cached re-run: {cached_wall:.1f} s wall (exit {cached_rc})")
    teacher = report["teacher"]["test_accuracy"]
    print(f"teacher test accuracy: {teacher:.2%}" if teacher else "teacher test accuracy: n/a")
    for b in report["bundles"]:
        acc = f"{b['test_accuracy']:.2%}" if b["status"] == "ok" else b["status"]
        print(f"  {b['bundle']:<42} {acc:>8}  {b.get('file_mb') or 0:>6.2f} MB")
    for device, sel in report["devices"].items():
        print(
            f"pick {device:<8} {sel['pick'] or 'none: ' + sel.get('reason', '')} ({sel['method']})"
        )
    print(f"machine: {cpu_model()}; {isa()}")


if __name__ == "__main__":
    main()
