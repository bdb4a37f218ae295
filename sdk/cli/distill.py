"""The ``distill`` and ``finetune`` verbs; sdk/cli/main.py adds them with ``add_parsers``.

Each builds its options object (``pocketbert.training.DistillOptions`` / ``FinetuneOptions``)
from the flags, which are named as its fields, and calls the same verb as the Python API.

    pocketbert finetune MODEL --data reviews.csv -o out/teacher
    pocketbert distill --teacher out/teacher --student squeezebert --size small --data reviews.csv -o out/student
    pocketbert distill --teacher out/teacher --student mobilebert --dry-run     # params and FLOPs only

Both run unchanged under ``accelerate launch -m pocketbert.cli ...`` (GPUs, many nodes).
"""

from __future__ import annotations

import argparse
import json
import sys


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        help="labelled .csv/.tsv/.jsonl, a directory of split files, or a datasets directory",
    )
    p.add_argument("--text-column", default=None, help="default: text, sentence, review or content")
    p.add_argument(
        "--label-column", default=None, help="default: label, labels, sentiment, class or target"
    )
    p.add_argument(
        "--drop-unlabelled",
        action="store_true",
        help="leave out rows whose label is empty, nan or null (default: refuse the data)",
    )
    p.add_argument(
        "-o", "--output", help="model directory to write (replaced only when the run finishes)"
    )
    p.add_argument(
        "--epochs", type=int, default=None, help="default: chosen from the data size and classes"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--lr", type=float, default=None, help="default: 2e-4 to distill, 5e-5 to fine-tune"
    )
    p.add_argument(
        "--patience",
        type=int,
        default=2,
        help="stop after N epochs without a better validation score (0: run every epoch); "
        "the best epoch is kept",
    )
    p.add_argument("--max-seq-len", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--checkpoint-every", type=int, default=200, help="optimizer steps between checkpoints"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the unfinished run writing to --output"
    )


def _need(args: argparse.Namespace, *names: str) -> None:
    from pocketbert.core.errors import UserError

    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is None]
    if missing:
        raise UserError(f"{args.command} needs {' and '.join(missing)}")


def options_from_args(cls, args: argparse.Namespace, **more):
    """The options dataclass ``cls`` from the parsed flags (a flag per field, same name)."""
    from dataclasses import fields

    given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return cls(**{**given, "quiet": args.quiet or args.json, **more})


def _report(args: argparse.Namespace, summary: dict, what: str) -> None:
    """The run's result on stdout (epoch lines were already shown as progress on stderr)."""
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    if args.quiet:  # otherwise already said with the progress
        for warning in summary.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    line = (
        f"{what}: test accuracy {summary['test_accuracy']:.2%}, "
        f"macro-F1 {summary['test_macro_f1']:.3f}"
    )
    if "teacher_test_accuracy" in summary:
        acc, f1 = summary["accuracy_kept"], summary["macro_f1_kept"]
        line += (
            f" (teacher {summary['teacher_test_accuracy']:.2%}"
            + (f", kept {acc:.1%} accuracy" if acc is not None else "")
            + (f", {f1:.1%} macro-F1" if f1 is not None else "")
            + ")"
        )
    if summary.get("speedup_on_test_sentences"):
        line += f", {summary['speedup_on_test_sentences']:.1f}x faster on the test sentences"
    if summary.get("best_epoch"):
        line += f"; kept epoch {summary['best_epoch']}"
    print(
        f"{line}; {summary['train_seconds']:.0f}s, {summary['examples_per_s']:.0f} examples/s -> {args.output}"
    )


def cmd_distill(args: argparse.Namespace) -> int:
    from pocketbert.cli.common import quiet_libraries
    from pocketbert.training import KNOBS, DistillOptions, distill, propose_student

    knobs = {k: getattr(args, k) for k in KNOBS}
    options = options_from_args(
        DistillOptions, args, knobs=knobs, init_from_teacher=not args.random_init
    )
    quiet_libraries()
    if args.dry_run:
        _need(args, "teacher")
        proposal = propose_student(args.teacher, args.student, args.size, knobs)
        if args.json:
            print(json.dumps(proposal, indent=2))
        else:
            for who in ("teacher", "student"):
                d = proposal[who]
                print(
                    f"{who:<8} {d['params'] / 1e6:8.2f}M params  {d['transformer_layer_params'] / 1e6:7.2f}M in "
                    f"transformer layers  {d['flops_seq128'] / 1e9:7.3f} GFLOPs at seq 128"
                )
        return 0
    _need(args, "teacher", "data", "output")
    summary = distill(args.teacher, args.data, args.output, options)
    _report(args, summary, f"{summary['student_family']} student")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from pocketbert.cli.common import quiet_libraries
    from pocketbert.training import FinetuneOptions, finetune

    options = options_from_args(FinetuneOptions, args)
    quiet_libraries()
    _need(args, "data", "output")
    summary = finetune(args.model, args.data, args.output, options)
    _report(args, summary, "teacher")
    return 0


def _compress_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("compression (applied to the student, then distilled to recover)")
    g.add_argument(
        "--factorize-embeddings",
        type=int,
        default=None,
        metavar="E",
        help="word embeddings as a vocab x E table + an E -> width projection (SVD init)",
    )
    g.add_argument(
        "--prune-vocabulary",
        type=int,
        nargs="?",
        const=1,
        default=None,
        metavar="MIN_COUNT",
        help="keep only tokens seen (at least MIN_COUNT times, default 1) in the training "
        "and unlabelled text; the tokenizer is rewritten to match",
    )
    g.add_argument(
        "--prune-heads",
        type=float,
        default=0.0,
        metavar="RATIO",
        help="remove this fraction of each layer's attention heads (bert, mobilebert)",
    )
    g.add_argument(
        "--prune-neurons",
        type=float,
        default=0.0,
        metavar="RATIO",
        help="remove this fraction of each layer's FFN neurons (bert, mobilebert)",
    )
    g.add_argument(
        "--low-rank",
        type=float,
        default=None,
        metavar="R",
        help="Linears as two: a rank (R >= 1) or the rank keeping R (0-1) of the energy",
    )
    g.add_argument("--low-rank-targets", default="ffn", help="ffn, attention, or ffn,attention")
    g.add_argument(
        "--share-layers",
        type=int,
        default=None,
        metavar="N",
        help="each run of N consecutive layers shares one set of weights (N divides the layers)",
    )
    p.add_argument(
        "--dedup",
        type=float,
        nargs="?",
        const=0.8,
        default=None,
        metavar="SIMILARITY",
        help="drop training rows near a test row and repeated or test-like unlabelled lines "
        "(MinHash of word 3-grams, estimated Jaccard >= SIMILARITY, default 0.8)",
    )


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    """Add ``distill`` and ``finetune`` to the ``pocketbert`` subcommands."""
    p = sub.add_parser(
        "distill", parents=[common], help="distill a fine-tuned teacher into a small student"
    )
    p.add_argument("--teacher", help="fine-tuned classifier directory (see: pocketbert finetune)")
    p.add_argument(
        "--student",
        default="squeezebert",
        help="squeezebert | mobilebert | bert | a model directory",
    )
    p.add_argument(
        "--size",
        default="small",
        help="tiny | small | medium (relative to the teacher) | auto (the largest student "
        "meeting --speedup / --max-latency-ms, timed against the teacher in this run)",
    )
    budget = p.add_argument_group("--size auto: the budget")
    budget.add_argument(
        "--speedup",
        type=float,
        default=None,
        metavar="X",
        help="at least X times faster than the teacher (default 4 when no target is given)",
    )
    budget.add_argument(
        "--max-latency-ms", type=float, default=None, metavar="MS", help="at most MS per sentence"
    )
    budget.add_argument(
        "--device",
        default=None,
        metavar="ID",
        help="the devices.yaml device the targets are for (default: host, measured here)",
    )
    knobs = p.add_argument_group("student knobs (override the size preset)")
    for name, text in (
        ("layers", "transformer layers"),
        ("hidden", "hidden (inter-block) width"),
        ("heads", "attention heads"),
        ("intermediate", "FFN width"),
        ("groups", "SqueezeBERT: groups of Q/K/V (and FFN) layers"),
        ("ffn-groups", "SqueezeBERT: groups of the FFN layers (default: --groups)"),
        ("bottleneck", "MobileBERT: intra-block width"),
        ("embedding", "MobileBERT: factorized embedding size"),
        ("ffns", "MobileBERT: stacked FFNs per block"),
    ):
        knobs.add_argument(f"--{name}", type=int, default=None, help=text)
    norm = knobs.add_mutually_exclusive_group()
    norm.add_argument(
        "--no-norm",
        dest="no_norm",
        action="store_const",
        const=True,
        default=None,
        help="MobileBERT: NoNorm + ReLU (fast on devices)",
    )
    norm.add_argument(
        "--layer-norm",
        dest="no_norm",
        action="store_const",
        const=False,
        help="MobileBERT: LayerNorm + GELU",
    )
    p.add_argument(
        "--loss",
        default=None,
        help="weights, e.g. ce=1,kd=1,hidden=1,attention=1,temperature=2 (the default; unnamed terms: 0)",
    )
    stages = p.add_mutually_exclusive_group()
    stages.add_argument(
        "--two-stage",
        dest="two_stage",
        action="store_const",
        const=True,
        default=None,
        help="TinyBERT: intermediate layers (hidden, attention) first, then predictions "
        "(ce, kd); the default when the loss has terms of both kinds",
    )
    stages.add_argument(
        "--one-stage",
        dest="two_stage",
        action="store_const",
        const=False,
        help="train every loss term together in every epoch",
    )
    p.add_argument(
        "--stage1-epochs",
        type=int,
        default=None,
        help="two stages: epochs of the first (default: 1)",
    )
    p.add_argument(
        "--unlabelled",
        default=None,
        help="extra text (.txt/.csv/.jsonl) for the distillation terms",
    )
    p.add_argument(
        "--augment",
        type=int,
        default=None,
        metavar="N",
        help="add N variants of each training sentence, words swapped for their neighbours "
        "in the teacher's embeddings and labelled by the teacher (TinyBERT-style); default: "
        "up to 20, to at most 30,000 sentences in all, when no --unlabelled text is given "
        "(see pocketbert.core.defaults)",
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help="keep the teacher's logits here, for other students distilled on the same text",
    )
    p.add_argument(
        "--random-init", action="store_true", help="do not initialize the student from the teacher"
    )
    p.add_argument(
        "--freeze-embeddings",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the student's word-embedding table as initialized (default: when it is "
        "the teacher's own, as a SqueezeBERT-style student's is; its training step ~1.4x faster)",
    )
    _compress_args(p)
    p.add_argument(
        "--dry-run", action="store_true", help="print the student's params and FLOPs, do not train"
    )
    _train_args(p)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser(
        "finetune",
        parents=[common],
        help="fine-tune a pretrained encoder into a teacher classifier",
    )
    p.add_argument("model", help="transformers encoder or classifier directory, or hub id")
    _train_args(p)
    p.add_argument(
        "--label-names",
        default=None,
        help="names for the data's labels in their order, e.g. negative,positive for 0/1 data",
    )
    p.add_argument(
        "--lora",
        type=int,
        default=None,
        metavar="R",
        help="train rank-R LoRA adapters and the head only (merged back before saving)",
    )
    p.add_argument(
        "--lora-targets",
        default="all-linear",
        help="the Linears LoRA adapts, by name (e.g. query,value), or all-linear (default)",
    )
    p.set_defaults(func=cmd_finetune)
