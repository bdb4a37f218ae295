"""``pocketbert verify BUNDLE --on rpi5 [rpi4 ...]``: the bundle on boards' own software,
emulated (qemu-user, aarch64), compared with the host's run of the same bundle.

Wired into the command line with ``add_parsers(sub, common)``. Exit 0 when the bundle runs
on every board named and passes the export gate's rule there; 2 (one line, after the
per-board lines) when it does not run on one, or misses the rule.
"""

from __future__ import annotations

import argparse
import json
import sys

from pocketbert.cli.common import quiet_libraries
from pocketbert.core.errors import UserError


def cmd_verify(args: argparse.Namespace) -> int:
    from pocketbert.boards.check import check_on_board
    from pocketbert.core.texts import read_texts

    quiet_libraries()
    texts = read_texts(args.input, limit=args.limit) if args.input else None
    quiet = args.quiet or args.json

    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    records = [
        check_on_board(args.bundle, board, texts=texts, catalog=args.devices, say=say)
        for board in args.on
    ]
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for r in records:
            print(board_line(r))
    bad = [r for r in records if r["status"] != "passed"]
    if bad:
        r = bad[0]
        why = r.get("error") or r["parity"]["gate"] + " missed"
        raise UserError(
            f"bundle '{args.bundle}' {r['status'].replace('failed', 'misses the gate')} on "
            f"{r['device']}'s software ({', '.join(r['requirements'])}): {why}"
        )
    return 0


def board_line(r: dict) -> str:
    """One line per board: status, the software it ran on, the figures against the host."""
    head = f"{r['device']:<6} {r['status']:<13}"
    if "parity" not in r:
        return f"{head} {r.get('error', '')}  [check took {r['check_s']:.1f} s here under qemu]"
    p, sw = r["parity"], r["software"]
    runtime = ", ".join(f"{k} {v}" for k, v in sw["installed"].items() if k != "tokenizers")
    figures = f"max|Δ| {p['max_abs_diff']:.2e} cos {p['mean_cosine']:.4f}"
    if p.get("decisive_rows") is not None:
        agree = p["decisive_agreement"]
        figures += (
            f" argmax {'n/a' if agree is None else f'{agree:.0%}'} of {p['decisive_rows']} decisive"
        )
    return (
        f"{head} {runtime}, numpy {sw['numpy']}, python {sw['python']} {sw['machine']} (emulated); "
        f"vs host on {r['texts']} texts: {figures} ({p['gate']})  "
        f"[check took {r['check_s']:.1f} s here under qemu; not a board timing]"
    )


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "verify",
        parents=[common],
        help="run a bundle on a board's own software under emulation and compare with the host",
    )
    p.add_argument("bundle", help="bundle directory or .zip")
    p.add_argument(
        "--on",
        nargs="+",
        required=True,
        metavar="DEVICE",
        help="boards from devices.yaml with a software: entry (e.g. rpi5 rpi4)",
    )
    p.add_argument(
        "--input",
        default=None,
        metavar="FILE",
        help="texts to run (.txt, or .csv/.tsv/.jsonl with a text column); default: 4 built-in sentences",
    )
    p.add_argument("--limit", type=int, default=8, help="at most this many texts from --input")
    p.add_argument("--devices", default=None, help="device catalog (default: devices.yaml)")
    p.set_defaults(func=cmd_verify)
