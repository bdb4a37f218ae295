"""The ``pocketbert`` command line. Bad input: one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings

from pocketbert.cli.common import EXIT_BUG, EXIT_USER_ERROR, bug_line, quiet_libraries
from pocketbert.converters.quantization import PRECISIONS
from pocketbert.core.errors import UserError


def _export_row(r) -> dict:
    """One job as --json prints it: the bundle written, or the error (and a bug's log)."""
    row = {"format": r.format, "precision": r.precision, "status": r.status}
    if r.path:
        shipped = {"shipped": r.shipped or r.precision}
        return {**row, **shipped, "bundle": str(r.path), "parity": r.parity, "checks": r.checks}
    return {**row, "bundle": None, "error": r.error, "log": str(r.log) if r.log else None}


def _precisions(names: list[str], embedding_bits: int) -> list:
    """--precision names, with int8-dynamic's embedding tables at ``embedding_bits``."""
    if embedding_bits == 8:
        return names
    if "int8-dynamic" not in names:
        raise UserError(
            f"--embedding-bits {embedding_bits} applies to int8-dynamic bundles; "
            "add --precision int8-dynamic"
        )
    from pocketbert.converters.quantization import Int8Dynamic

    return [Int8Dynamic(embedding_bits=embedding_bits) if n == "int8-dynamic" else n for n in names]


def cmd_export(args: argparse.Namespace) -> int:
    from pocketbert.exporter import ExportBug, ExportFailed, export

    quiet_libraries()
    try:
        results = export(
            args.model,
            args.output,
            format=args.format,
            precision=_precisions(args.precision, args.embedding_bits),
            task=args.task,
            calibration=args.calibration,
            eval=args.eval,
            max_seq_len=args.max_seq_len,
            allow_parity_failure=args.allow_parity_failure,
            quiet=args.quiet or args.json,
        )
    except (ExportFailed, ExportBug) as exc:
        if args.json:  # every job, written or not; the error line and exit code follow
            print(json.dumps([_export_row(r) for r in exc.results], indent=2), flush=True)
        raise
    rows = [_export_row(r) for r in results]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        p = row["parity"]
        shipped = f"  (shipped {row['shipped']})" if row["shipped"] != row["precision"] else ""
        print(
            f"{row['format']:<10} {row['precision']:<13} max|Δ| {p['max_abs_diff']:.2e}  "
            f"{_agreement(p)}  -> {row['bundle']}{shipped}"
        )
        if p.get("note"):
            print(f"{'':<25}note: {p['note']}")
        outside = row["checks"].get("undelegated_ops")
        if outside:
            names = ", ".join(f"{op} {n}" for op, n in list(outside.items())[:6])
            print(
                f"{'':<25}outside XNNPACK: {sum(outside.values())} ops ({names}{', …' if len(outside) > 6 else ''})"
            )
    return 0


def _agreement(p: dict) -> str:
    """The figure the gate judged: accuracy (labelled), decisive agreement, or cosine."""
    if "accuracy_file" in p:
        return f"accuracy {p['accuracy_file']:.1%} (torch {p['accuracy_torch']:.1%})"
    if "decisive_rows" in p:
        agree = p["decisive_agreement"]
        shown = "n/a" if agree is None else f"{agree:.1%}"
        return f"argmax {shown} of {p['decisive_rows']} decisive"
    return f"cosine {p['mean_cosine']:.4f}"


RUN_CHUNK = 64  # texts per predict() call: results are written as each chunk finishes
RUN_PROGRESS_EVERY_S = 2.0  # a plain progress line on stderr at most this often


def cmd_run(args: argparse.Namespace) -> int:
    from pocketbert.core.texts import read_texts

    if args.explain:
        return _explain(args)
    from pocketbert.core.threads import check_threads

    texts = list(args.texts) + (read_texts(args.input) if args.input else [])
    if not texts:
        raise UserError(
            "give the texts to run, or --input FILE (.txt one text per line, or a .csv, "
            ".tsv or .jsonl with a 'text' column)"
        )
    check_threads(args.threads)
    from pocketbert.predict import ParityWarning, load

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ParityWarning)
        predictor = load(args.bundle, threads=args.threads)
    for w in caught:  # the bundle's failed gate as one line; anything else as it came
        if issubclass(w.category, ParityWarning):
            print(f"pocketbert: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    progress = None if args.quiet or args.json else _RunProgress(len(texts))
    for start in range(0, len(texts), RUN_CHUNK):
        chunk = texts[start : start + RUN_CHUNK]
        result = predictor.predict(chunk)
        for text, r in zip(chunk, result, strict=True):
            print(_run_line(text, r, predictor.task == "embedding", args.json))
        sys.stdout.flush()
        if progress:
            progress.done(start + len(chunk))
    return 0


def _explain(args: argparse.Namespace) -> int:
    """The chain that made a bundle (its manifest's lineage), without running it."""
    from pocketbert.bundle import open_bundle

    with open_bundle(args.bundle) as bundle:
        manifest = bundle.manifest
    lineage = manifest.get("lineage")
    if lineage is None:
        raise UserError(
            f"bundle '{args.bundle}' records no lineage (it was exported alone, not by "
            "pocketbert build); its manifest.json says how it was exported"
        )
    if args.json:
        print(json.dumps(lineage, indent=2))
        return 0
    made = lineage.get("distill") or lineage.get("finetune") or {}
    test = lineage["bundle_test"]
    export = lineage["export"]
    lines = [
        f"recipe   {lineage['recipe']['source']} (sha256 {lineage['recipe']['sha256'][:12]})",
        f"teacher  {lineage['teacher']['source']} (sha256 {lineage['teacher']['sha256'][:12]})",
        f"data     {lineage['data']['source']} (sha256 {lineage['data']['sha256'][:12]})",
        f"model    {lineage['model']}"
        + (
            f" ({made['student']['family']} {made['student']['size']})" if "student" in made else ""
        ),
    ]
    if made.get("summary"):
        s = made["summary"]
        lines.append(
            f"trained  test accuracy {s.get('test_accuracy', 0):.2%}"
            + (f", {s['accuracy_kept']:.1%} of the teacher's" if s.get("accuracy_kept") else "")
        )
    lines.append(
        f"export   {export['format']} {export['shipped']}"
        + (f" (asked {export['requested']})" if export["shipped"] != export["requested"] else "")
        + f", {export['max_seq_len']} tokens"
    )
    lines.append(
        f"bundle   test accuracy {test['test_accuracy']:.2%} on {test['test_rows']} rows, macro-F1 {test['test_macro_f1']:.3f}"
    )
    print("\n".join(lines))
    return 0


def _run_line(text: str, result, embedding: bool, as_json: bool) -> str:
    """One output line per text: JSON Lines with --json, else a short human line."""
    if embedding:
        vector = [round(float(x), 6) for x in result]
        if as_json:
            return json.dumps({"text": text, "embedding": vector})
        head = ", ".join(f"{x:+.4f}" for x in vector[:4])
        return f"[{head}, …] ({len(vector)} dims)  {text}"
    if as_json:
        return json.dumps({"text": text, **result})
    return f"{result['label']:<12} {result['score']:.3f}  {text}"


class _RunProgress:
    """Plain lines on stderr ("[640/10000] texts, 12.3/s"), once the run takes a while."""

    def __init__(self, total: int) -> None:
        import time

        self._clock = time.perf_counter
        self.total = total
        self.start = self.last = self._clock()

    def done(self, n: int) -> None:
        now = self._clock()
        if n < self.total and now - self.last < RUN_PROGRESS_EVERY_S:
            return
        if n == self.total and self.last == self.start:
            return  # a short run: no progress lines at all
        self.last = now
        rate = n / max(now - self.start, 1e-9)
        print(f"[{n}/{self.total}] texts, {rate:.1f}/s", file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from pocketbert.demo import demo

    quiet_libraries()
    rows = demo(args.output, quiet=args.quiet or args.json)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'format':<11}{'precision':<14}{'MB':>7}{'max|Δ|':>10}{'cosine':>9}{'ms/sent':>9}  sim(+,+) sim(+,-)"
    )
    for r in rows:
        p = r["parity"]
        print(
            f"{r['format']:<11}{r['precision']:<14}{r['size_mb']:>7}{p['max_abs_diff']:>10.2e}"
            f"{p['mean_cosine']:>9.4f}{r['ms_per_sentence']:>9}  {r['similarity_pos_pos']:>8} {r['similarity_pos_neg']:>8}"
        )
    print(f"bundles in {args.output}/")
    return 0


def _version() -> str:
    """The installed distribution's version (the package's own when run from a checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pocketbert")
    except PackageNotFoundError:
        from pocketbert import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pocketbert",
        description="Distill, quantize, export, verify and profile BERT-family models for devices.",
    )
    parser.add_argument("--version", action="version", version=f"pocketbert {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress output")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", parents=[common], help="export a model to verified bundles")
    p.add_argument("model", help="transformers model directory or hub id")
    p.add_argument(
        "--format",
        nargs="+",
        default=["onnx"],
        help="onnx | executorch | tflite | all (several: a set)",
    )
    p.add_argument(
        "--precision",
        nargs="+",
        default=["fp32"],
        help=f"{' | '.join(PRECISIONS)} | all (several: a set)",
    )
    p.add_argument(
        "--embedding-bits",
        type=int,
        choices=(8, 4),
        default=8,
        help="int8-dynamic's embedding tables: 8 (every format) or 4 (int4 blocks, ONNX)",
    )
    p.add_argument("--task", default=None, help="classification | embedding (default: from config)")
    p.add_argument(
        "--calibration",
        default=None,
        help="text file (.txt/.csv/.jsonl) int8-static calibrates on "
        "(default: the model's task_text.json, else built-in sentences)",
    )
    p.add_argument(
        "--eval",
        default=None,
        metavar="FILE",
        help="text the parity gate verifies on: .txt, or .csv/.tsv/.jsonl with a text and an "
        "optional label column (default: the model's task_text.json, else built-in sentences)",
    )
    p.add_argument("--max-seq-len", type=int, default=128)
    p.add_argument(
        "--allow-parity-failure",
        action="store_true",
        help="write bundles that fail the parity gate",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="bundle directory (one export) or set of bundles (several) to write; .zip: a zipped bundle",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("run", parents=[common], help="run a bundle on text")
    p.add_argument("bundle", help="bundle directory or .zip")
    p.add_argument("texts", nargs="*", help="sentences to classify or embed")
    p.add_argument(
        "--input",
        default=None,
        metavar="FILE",
        help="texts from a file: .txt (one per line), or .csv/.tsv/.jsonl with a 'text' column",
    )
    p.add_argument("--threads", type=int, default=None, help="runtime threads (default: its own)")
    p.add_argument(
        "--explain",
        action="store_true",
        help="print the chain that made the bundle (teacher, data, recipe, student, export, test accuracy)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="export the real all-MiniLM-L6-v2 everywhere and run reviews through it",
    )
    p.add_argument("-o", "--output", default="pocketbert-demo", help="where to write the bundles")
    p.set_defaults(func=cmd_demo)

    from pocketbert.cli.android import add_parsers as add_android_parsers
    from pocketbert.cli.build import add_parsers as add_build_parsers
    from pocketbert.cli.distill import add_parsers as add_distill_parsers
    from pocketbert.cli.examples import add_parsers as add_examples_parsers
    from pocketbert.cli.fpga import add_parsers as add_fpga_parsers
    from pocketbert.cli.lab import add_parsers as add_lab_parsers
    from pocketbert.cli.verify import add_parsers as add_verify_parsers

    add_distill_parsers(sub, common)
    add_lab_parsers(sub, common)
    add_examples_parsers(sub, common)
    add_build_parsers(sub, common)
    add_verify_parsers(sub, common)
    add_fpga_parsers(sub, common)
    add_android_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"pocketbert: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("pocketbert: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    except Exception as exc:  # not the user's input: a bug, said as one
        _report_bug(exc, argv)
        return EXIT_BUG


def _report_bug(exc: BaseException, argv: list[str] | None) -> None:
    """A short traceback (the last frames) and how to report it."""
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4)
    command = " ".join(["pocketbert", *(sys.argv[1:] if argv is None else argv)])
    print("".join(frames).rstrip(), file=sys.stderr)
    print(
        bug_line(f"internal error: {type(exc).__name__}", f"the command: {command}"),
        file=sys.stderr,
    )


if __name__ == "__main__":
    sys.exit(main())
