"""``pocketbert build [RECIPE] [--work DIR] [--dry-run]``: the whole flow from one recipe.

Wired into the command line with ``add_parsers(sub, common)``. Exit 0 when every device has
a pick; 2 (one line, after the report is written) when a device has none.
"""

from __future__ import annotations

import argparse
import json
import sys

from pocketbert.cli.common import EXIT_USER_ERROR, quiet_libraries


def cmd_build(args: argparse.Namespace) -> int:
    from pocketbert.pipeline import build

    quiet_libraries()
    report = build(args.recipe, work=args.work, dry_run=args.dry_run, quiet=args.quiet or args.json)
    if args.dry_run:
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            for step in report["plan"]:
                print(f"{step['status']:<7} {step['step']}")
            todo = sum(s["status"] == "to do" for s in report["plan"])
            print(f"{todo} of {len(report['plan'])} steps to do in {report['work']}")
        return 0
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for device, sel in report["devices"].items():
            if sel["pick"]:
                row = next(c for c in sel["candidates"] if c["bundle"] == sel["pick"])
                print(
                    f"{device:<8} {sel['pick']:<40} acc {row['test_accuracy']:.2%}  "
                    f"p50 {row['p50_ms']:.2f} ms ({row['method']})  {row['file_mb']:.1f} MB"
                )
            else:
                print(f"{device:<8} no pick: {sel['reason']}")
        print(f"report: {report['report_html']}")
    missing = [d for d, s in report["devices"].items() if not s["pick"]]
    if missing:
        first = report["devices"][missing[0]]["reason"]
        print(
            f"pocketbert: error: no bundle meets the budgets of {', '.join(missing)} "
            f"({missing[0]}: {first}); loosen them or add students (report: {report['report_html']})",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    return 0


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "build",
        parents=[common],
        help="one recipe: fine-tune, distill, export, evaluate, profile, select and report",
    )
    p.add_argument(
        "recipe", nargs="?", default=None, help="recipe.yaml (default: the packaged default build)"
    )
    p.add_argument(
        "--work",
        default="pocketbert-build",
        help="build directory: every step's output, report.html and report.json (default: pocketbert-build)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and which steps are already done"
    )
    p.set_defaults(func=cmd_build)
