"""Does each bundle run on a Raspberry Pi's own software? The emulated board check per bundle.

Exports the real all-MiniLM-L6-v2 (an embedding model: mean pooling, unit length) in every
format x precision, then runs each bundle through ``pocketbert verify --on`` for rpi4
(tflite-runtime 2.14 + numpy<2 for TFLite, onnxruntime 1.32 for ONNX) and rpi5 (pocketbert's
own extras: ai-edge-litert 2.3, onnxruntime 1.32): qemu-user, Debian bookworm arm64
python3.11, the aarch64 wheels each board installs. Prints, per bundle and board: whether it
runs (and why not), its parity against the host's run of the same bundle (the export gate's
figures and rule), and the time the check took on this host. That time is qemu's, on this
machine: never a figure for the board.

    python benchmarks/emulated_boards.py [--out DIR] [--formats onnx tflite executorch]
        [--precisions fp32 int8-dynamic int8-static] [--boards rpi4 rpi5] [--texts 4]
        [--max-seq-len 64] [--students DIR ...]   # bundle sets of students, when you have them

Needs: pip install -e '.[convert,examples]' and apt-get install qemu-user-static; network
once (the Debian mirror, the package index) for the cached root and wheels.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

FORMATS = ("onnx", "tflite", "executorch")
PRECISIONS = ("fp32", "int8-dynamic", "int8-static")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def export_set(
    out: Path, formats: list[str], precisions: list[str], max_seq_len: int, export: bool
) -> Path:
    """The MiniLM bundles ``out/<format>-<precision>/``: those missing exported one by one
    (each written whole), unless ``export`` is False (then the rows say so)."""
    import pocketbert
    from pocketbert.examples import minilm_path

    missing = [
        (f, p)
        for f in formats
        for p in precisions
        if not (out / f"{f}-{p}" / "manifest.json").is_file()
    ]
    if not missing or not export:
        return out
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    for fmt, precision in missing:
        start = time.perf_counter()
        pocketbert.export(
            minilm_path(), out / f"{fmt}-{precision}", format=fmt, precision=precision,
            max_seq_len=max_seq_len, quiet=True,
        )  # fmt: skip
        print(f"# exported MiniLM {fmt} {precision} in {time.perf_counter() - start:.0f} s")
    return out


def row(model: str, bundle: Path, board: str, texts: list[str]) -> dict:
    import json

    from pocketbert.boards.check import check_on_board
    from pocketbert.core.errors import UserError

    manifest = json.loads((bundle / "manifest.json").read_text())
    base = {
        "model": model,
        "format": manifest["format"],
        "precision": manifest["precision"],
        "requested": (manifest.get("requested") or {}).get("precision", manifest["precision"]),
        "board": board,
    }
    start = time.perf_counter()
    try:
        r = check_on_board(bundle, board, texts=texts, say=lambda line: None)
    except UserError as exc:
        return {
            **base,
            "runs": "no",
            "why": str(exc),
            "check_s": time.perf_counter() - start,
        }
    out = {**base, "check_s": r["check_s"]}
    if r["status"] == "does not run":
        return {**out, "runs": "no", "why": r["error"]}
    p = r["parity"]
    sw = r["software"]["installed"]
    runtime = next((f"{k} {v}" for k, v in sw.items() if k != "tokenizers"), "?")
    return {
        **out,
        "runs": "yes",
        "why": f"{runtime}, numpy {r['software']['numpy']}",
        "parity": f"max|Δ| {p['max_abs_diff']:.1e} cos {p['mean_cosine']:.5f}",
        "gate": ("passed " if r["status"] == "passed" else "FAILED ") + p["gate"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/pocketbert-emulated-boards")
    ap.add_argument("--formats", nargs="+", default=list(FORMATS))
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    ap.add_argument("--boards", nargs="+", default=["rpi4", "rpi5"])
    ap.add_argument("--texts", type=int, default=4)
    ap.add_argument("--max-seq-len", type=int, default=64)
    ap.add_argument(
        "--students",
        nargs="*",
        default=[],
        help="bundle sets (DIR/<format>-<precision>/) of distilled students to check too",
    )
    ap.add_argument(
        "--no-export", action="store_true", help="check only the bundles already in --out"
    )
    args = ap.parse_args()
    from pocketbert.core.texts import BUILTIN

    texts = BUILTIN[: args.texts]
    qemu = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True)
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cores, load {[round(x, 2) for x in os.getloadavg()]}"
    )
    print(
        f"host python {platform.python_version()}; {qemu.stdout.splitlines()[0] if qemu.stdout else 'qemu missing'}; "
        f"{len(texts)} built-in sentences per check, max length {args.max_seq_len}"
    )
    print(
        "check s = the whole check on this host (host run + qemu run + compare), never a board timing"
    )
    sets = {
        "minilm": export_set(
            Path(args.out) / "minilm",
            args.formats,
            args.precisions,
            args.max_seq_len,
            not args.no_export,
        )
    }
    for s in args.students:
        sets[Path(s).name] = Path(s)
    if not args.students:
        print(
            "# students: not checked in this run (no distilled student bundles given; --students DIR)"
        )
    rows = []
    print(
        "| model | format | precision | board | runs | runtime, or why not | parity vs host | gate | check s |"
    )
    print("|---|---|---|---|---|---|---|---|---:|")
    for model, folder in sets.items():
        for fmt in args.formats:
            for precision in args.precisions:
                bundle = folder / f"{fmt}-{precision}"
                if not (bundle / "manifest.json").is_file():
                    from pocketbert.boards.wheels import NOT_EMULATED

                    why = NOT_EMULATED.get(fmt, "")
                    for board in args.boards:
                        print(
                            f"| {model} | {fmt} | {precision} | {board} | - | no bundle exported in "
                            f"this run{'; ' + why if why else ''} | - | - | - |"
                        )
                    continue
                for board in args.boards:
                    r = row(model, bundle, board, texts)
                    rows.append(r)
                    shipped = r["precision"] + (
                        f" (asked {r['requested']})" if r["requested"] != r["precision"] else ""
                    )
                    print(
                        f"| {model} | {r['format']} | {shipped} | {board} | {r['runs']} | {r['why']} | "
                        f"{r.get('parity', '-')} | {r.get('gate', '-')} | {r['check_s']:.1f} |",
                        flush=True,
                    )
    ran = sum(r["runs"] == "yes" for r in rows)
    print(
        f"{ran} of {len(rows)} bundle x board checks ran; {sum(r['check_s'] for r in rows):.0f} s in all"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
