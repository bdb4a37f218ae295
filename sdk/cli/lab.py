"""The device-lab verbs of the ``pocketbert`` command line: devices, profile, agent.

Wired into sdk/cli.py with ``add_parsers(sub, common)``. Each command returns an exit
code; a UserError raised here is printed on one line by cli.main (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pocketbert.cli.common import EXIT_BUG, bug_line
from pocketbert.core.errors import UserError


def _say_catalog(args: argparse.Namespace, path: Path) -> None:
    """Which catalog was used, in one stderr line unless --quiet or --json (once it loaded:
    an error stays the only line)."""
    from pocketbert.devices import catalog_origin

    if not (args.quiet or args.json):
        print(f"devices: {path} ({catalog_origin(path)})", file=sys.stderr)


def cmd_devices(args: argparse.Namespace) -> int:
    from pocketbert.devices import catalog_path, device_rows, format_table, load_devices

    path = catalog_path(args.devices)
    rows = device_rows(load_devices(path), path)
    _say_catalog(args, path)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def _bug_exit(bugs: list[dict]) -> int:
    """Every bug's short traceback and one line saying it is pocketbert's bug: exit 1."""
    for r in bugs:
        if r.get("traceback"):
            print(r["traceback"], file=sys.stderr)
    first = bugs[0]
    where = (
        f"bundle {first['bundle']}, seq {first.get('seq_len') or '-'}; {len(bugs)} such record(s)"
    )
    print(
        bug_line(f"{first['error']} ({where})", "the command you ran and this output"),
        file=sys.stderr,
    )
    return EXIT_BUG


def cmd_profile(args: argparse.Namespace) -> int:
    from pocketbert.devices import catalog_path
    from pocketbert.profiler.results import ResultsStore
    from pocketbert.profiler.run import Options, format_table, profile, warning_lines

    options = Options(
        runs=args.runs,
        warmup=args.warmup,
        threads=args.threads or None,
        seq_lens=args.seq_len or [None],
        until_stable=args.until_stable,
        max_rounds=args.max_rounds,
        timeout=args.timeout,
        estimate=args.estimate,
        texts=args.texts,
        text_passes=args.texts_passes,
        text_limit=args.texts_limit,
    )
    devices = [d for group in args.device for d in group]
    store = ResultsStore(args.results) if args.results else None
    records = profile(
        args.bundles,
        devices,
        options=options,
        store=store,
        catalog=(path := catalog_path(args.devices)),
        quiet=args.quiet or args.json,
    )
    _say_catalog(args, path)
    where = f"{store.written} record(s) appended to {store.path.resolve()}" if store else ""
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print(format_table(records))
        for line in warning_lines(records):
            print(line)
        if store:
            print(where if store.written else f"no records written to {store.path.resolve()}")
    bugs = [r for r in records if r.get("bug")]
    if bugs:
        return _bug_exit(bugs)
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        kept = len(records) - len(failed)
        raise UserError(
            "; ".join(dict.fromkeys(r["error"] for r in failed))
            + f" ({len(failed)} of {len(records)} failed; {kept} result(s) kept"
            + (f"; {where})" if store else ")")
        )
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    from pocketbert.profiler.agent import run_agent

    return run_agent(args)


CATALOG_HELP = (
    "the device catalog (default: ./devices.yaml in the current directory if there is one, "
    "else the packaged catalog)"
)


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    """Add the devices, profile and agent verbs to ``sub`` (argparse subparsers)."""
    from pocketbert.profiler.agent import add_arguments as add_agent_arguments
    from pocketbert.profiler.real_text import DEFAULT_LIMIT, DEFAULT_PASSES
    from pocketbert.profiler.results import DEFAULT_STORE

    p = sub.add_parser("devices", parents=[common], help="list the devices in devices.yaml")
    p.add_argument("--devices", default=None, help=CATALOG_HELP)
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser(
        "profile", parents=[common], help="measure latency and memory of bundles on devices"
    )
    p.add_argument(
        "bundles", nargs="+", help="bundle directories or .zip files, or bare .onnx/.tflite/.pte"
    )
    p.add_argument(
        "--device", nargs="+", action="append", required=True, help="device ids from devices.yaml"
    )
    p.add_argument("--runs", type=int, default=50, help="timed runs per measurement")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs before them")
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="runtime threads, one count or several (default: the device's)",
    )
    p.add_argument(
        "--seq-len",
        type=int,
        nargs="+",
        default=None,
        help="sequence lengths (default: the bundle's)",
    )
    p.add_argument(
        "--until-stable",
        type=float,
        nargs="?",
        const=0.02,
        default=None,
        metavar="TARGET",
        help="repeat fresh-process rounds until the median's 95%% CI is within ±TARGET (default 0.02)",
    )
    p.add_argument(
        "--max-rounds", type=int, default=10, help="at most this many rounds with --until-stable"
    )
    p.add_argument(
        "--timeout", type=float, default=600.0, help="seconds each device gets per measurement"
    )
    p.add_argument(
        "--estimate", action="store_true", help="roofline estimates instead of measurements"
    )
    p.add_argument(
        "--texts",
        default=None,
        metavar="FILE",
        help="also time predict() end to end (tokenization included) on each sentence of FILE "
        "(.txt one a line, or .csv/.jsonl with a text column) at its own length",
    )
    p.add_argument(
        "--texts-passes", type=int, default=DEFAULT_PASSES, help="timed passes over the sentences"
    )
    p.add_argument(
        "--texts-limit",
        type=int,
        default=DEFAULT_LIMIT,
        help="time at most this many sentences (a seeded sample of a longer file)",
    )
    p.add_argument(
        "--results",
        default=str(DEFAULT_STORE),
        help=f"append-only JSONL results store (default: ./{DEFAULT_STORE} in the current "
        "directory; '' for none)",
    )
    p.add_argument("--devices", default=None, help=CATALOG_HELP)
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser(
        "agent", parents=[common], help="(on a device) measure one bundle here, print a JSON record"
    )
    add_agent_arguments(p)
    p.set_defaults(func=cmd_agent)
