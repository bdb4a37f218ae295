"""Compression beyond distillation on Rotten Tomatoes: each method alone and combined.

    python benchmarks/compress_sentiment.py [-o bench-compress] [--teacher DIR] [--short]
        [--second-teacher DIR [--second-row NAME]]   # a row's recipe on TREC (a second task)

1. the teacher: all-MiniLM-L6-v2 fine-tuned on the Rotten Tomatoes sentences (fixed seeded
   80/10/10 stratified split, seed 0), or ``--teacher DIR``, a classifier fine-tuned on
   that same split (e.g. the default build's finetune step);
2. a plain BERT student (the teacher's width, 2 of its 6 layers, copied from it) distilled
   with no compression, then with each method alone (``--rows``) and the combination:
   vocabulary pruning to the tokens of the training (+ unlabelled) text, factorized
   embeddings (E=128, SVD init), structured pruning of half the heads and half the FFN
   neurons (Michel et al. / Taylor importance on the training sentences), low-rank FFN
   Linears (rank 96), both layers sharing one set of weights; ``lean``: the combination
   with 3/4 of the FFN neurons removed and only the tokens seen 3+ times kept; ``slim``: lean with a third of the heads kept (4 of 12); every
   compressed student is distilled to recover;
3. the teacher and every student exported to int8-dynamic ONNX bundles (the combined
   students also with int4 embedding tables) and timed at batch 1 on the test sentences,
   in this process, one after the other.

Prints one table (test accuracy of torch and of the int8 bundle, % of the teacher's kept,
params, int8 MB, p50 ms and the teacher's p50 over it, the test OOV rate) and the machine.
``--short``: one epoch on labels + logits over the first 2,000 training sentences, no
unlabelled text, 100 timed sentences (a
check that fits ~10 minutes on 2 cores; its figures are the short mode's, not the full
recipe's). The full mode: TinyBERT's two stages (1 + 2 epochs) over the labelled and
30,000 IMDB sentences labelled by the teacher.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from distill_sentiment import _data, _measure  # noqa: E402 (the same split and timing)

SHORT_LIMIT = 2000  # training sentences in the short mode
ROWS = {  # name -> DistillOptions fields of the compression
    "bert-2L": {},
    "+vocab": {"prune_vocabulary": 1},
    "+factorize128": {"factorize_embeddings": 128},
    "+prune50": {"prune_heads": 0.5, "prune_neurons": 0.5},
    "+lowrank96": {"low_rank": 96},
    "+share2": {"share_layers": 2},  # both layers share one set of weights
    "combined": {
        "prune_heads": 0.5,
        "prune_neurons": 0.5,
        "factorize_embeddings": 128,
        "prune_vocabulary": 1,
    },
    "lean": {  # combined, with 3/4 of the FFN neurons gone and tokens seen 3+ times kept
        "prune_heads": 0.5,
        "prune_neurons": 0.75,
        "factorize_embeddings": 128,
        "prune_vocabulary": 3,
    },
    "slim": {  # lean with a third of the heads kept (4 of the teacher's 12)
        "prune_heads": 0.67,
        "prune_neurons": 0.75,
        "factorize_embeddings": 128,
        "prune_vocabulary": 3,
    },
}


def _options(args, unlabelled: Path | None, cache: Path, compress: dict):
    import pocketbert

    loss = "ce=1,kd=1" if args.short else None  # full: ce, kd, hidden, attention in 2 stages
    return pocketbert.DistillOptions(
        student="bert",
        size="small",
        loss=loss,
        epochs=1 if args.short else 3,
        stage1_epochs=None if args.short else 1,
        two_stage=False if args.short else None,
        augment=0,
        unlabelled=unlabelled,
        batch_size=32,
        lr=2e-4,
        max_seq_len=args.max_seq_len,
        checkpoint_every=0,
        patience=0,
        cache_dir=cache,
        quiet=args.quiet,
        **compress,
    )


def _bundle(
    model_dir: Path, out: Path, data, seq: int, calib: Path, embedding_bits: int = 8
) -> tuple[dict, float]:
    import pocketbert
    from pocketbert.converters.quantization import Int8Dynamic

    [result] = pocketbert.export(
        model_dir,
        out,
        format="onnx",
        precision=Int8Dynamic(embedding_bits=embedding_bits),
        max_seq_len=seq,
        calibration=str(calib),
        allow_parity_failure=True,  # the agreement is reported in the table
        quiet=True,
    )
    return result.parity, next(out.glob("model.*")).stat().st_size / 1e6


def _second_task(args, root: Path, best: dict, unlabelled) -> dict:
    """The best row's recipe on TREC (6 classes), against that task's own teacher."""
    from task_data import write_split

    import pocketbert

    folder = root / "trec-data"
    write_split("trec", folder)
    out = root / "trec-student"
    # TREC has no unlabelled text: its transfer set is distill's default (word-swap variants
    # of the training sentences, as many as the data-size rule gives), as a user would get
    if args.reuse and (out / "summary.json").is_file():  # the student of an earlier run
        s = json.loads((out / "summary.json").read_text())
    else:
        opts = _options(args, None, root / "cache-trec", best)
        s = pocketbert.distill(args.second_teacher, folder, out, replace(opts, augment=None))
    keys = (
        "test_accuracy",
        "teacher_test_accuracy",
        "accuracy_kept",
        "macro_f1_kept",
        "lost_classes",
    )
    return {k: s.get(k) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="bench-compress")
    parser.add_argument("--teacher", default=None, help="a classifier fine-tuned on this split")
    parser.add_argument("--short", action="store_true", help="the ~10-minute check (see above)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"of: {', '.join(ROWS)}")
    parser.add_argument("--limit", type=int, default=None, help="N training rows (a quick check)")
    parser.add_argument("--max-seq-len", type=int, default=64)
    parser.add_argument("--unlabelled", type=int, default=30000, help="IMDB sentences (full)")
    parser.add_argument("--latency-sentences", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    parser.add_argument("--train-threads", type=int, default=1)
    parser.add_argument("--second-teacher", default=None, help="a TREC teacher (task_data split)")
    parser.add_argument("--second-row", default="combined", help="the row whose recipe TREC gets")
    parser.add_argument(
        "--reuse", action="store_true", help="keep students an earlier run of -o finished"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    import torch

    torch.set_num_threads(args.train_threads)
    start = time.perf_counter()
    root = Path(args.output)
    root.mkdir(parents=True, exist_ok=True)
    data = _data(root, args.limit or (SHORT_LIMIT if args.short else None))
    seq = args.max_seq_len
    n_latency = args.latency_sentences or (100 if args.short else 200)
    teacher = Path(args.teacher) if args.teacher else root / "teacher"
    if not args.teacher:
        from pocketbert.converters.finetune import run_finetune
        from pocketbert.converters.train_loop import TrainConfig
        from pocketbert.examples import minilm_path

        cfg = TrainConfig(epochs=2, lr=1e-4, max_seq_len=seq, checkpoint_every=0)
        run_finetune(minilm_path(), data, teacher, cfg, quiet=args.quiet)
    unlabelled = None
    if args.unlabelled and not args.short:
        from pocketbert.examples import review_sentences

        unlabelled = root / "imdb_sentences.txt"
        unlabelled.write_text("\n".join(review_sentences(args.unlabelled, seed=0)) + "\n")
    import pocketbert

    rows: list[dict] = []
    for name in args.rows.split(","):
        t0 = time.perf_counter()
        opts = _options(args, unlabelled, root / "cache", ROWS[name])
        done = root / name / "summary.json"
        if args.reuse and done.is_file():  # a finished row of an earlier run of this mode
            s = json.loads(done.read_text())
        else:
            s = pocketbert.distill(teacher, data, root / name, opts)
        vocab = next((r for r in s.get("compression", []) if r["method"] == "prune_vocabulary"), {})
        rows.append(
            {
                "model": name,
                "dir": root / name,
                "torch_acc": s["test_accuracy"],
                "teacher_torch_acc": s["teacher_test_accuracy"],
                "params": s["student_params"],
                "oov": vocab.get("test_oov_rate"),
                "compression": s.get("compression", []),
                "wall_s": time.perf_counter() - t0,
            }
        )
    teacher_row = {"model": "teacher MiniLM-L6", "dir": teacher, "oov": None, "wall_s": 0.0}
    teacher_row["torch_acc"] = rows[0]["teacher_torch_acc"] if rows else None
    from pocketbert.converters.model import load_model

    teacher_row["params"] = sum(p.numel() for p in load_model(teacher).module.parameters())
    rows.insert(0, teacher_row)
    for name in ("combined", "lean", "slim"):  # the same student, its embedding tables int4
        if name in args.rows.split(","):
            row = next(r for r in rows if r["model"] == name)
            rows.append({**row, "model": f"{name}, int4 tables", "embedding_bits": 4})
    calib = root / "calibration.txt"
    calib.write_text("\n".join(t for t, _ in data.validation[:256]))
    for row in rows:  # one after the other, in this process: the same machine state
        bits = row.get("embedding_bits", 8)
        bundle = root / "bundles" / (Path(row["dir"]).name + ("-int4" if bits == 4 else ""))
        parity, row["int8_mb"] = _bundle(row["dir"], bundle, data, seq, calib, bits)
        row["agree"] = parity["argmax_agreement"]
        row["ms"], row["int8_acc"] = _measure(bundle, data.test, n_latency, args.threads)
    t = rows[0]
    print(
        f"\nRotten Tomatoes ({'short mode' if args.short else 'full mode'}): train "
        f"{len(data.train)}, test {len(data.test)}; max_seq_len {seq}; int8-dynamic ONNX, "
        f"batch 1, {args.threads} thread(s), p50 over {n_latency} test sentences; kept: int8 "
        "bundle test accuracy / the teacher's int8 bundle's"
    )
    print(
        f"{'model':<22}{'torch acc':>10}{'int8 acc':>9}{'kept':>7}{'params':>9}{'int8 MB':>8}"
        f"{'x smaller':>10}{'p50 ms':>8}{'x faster':>9}{'test OOV':>9}{'wall s':>7}"
    )
    for r in rows:
        oov = f"{r['oov']:.2%}" if r["oov"] is not None else "-"
        print(
            f"{r['model']:<22}{r['torch_acc']:>10.2%}{r['int8_acc']:>9.2%}"
            f"{r['int8_acc'] / t['int8_acc']:>7.1%}{r['params'] / 1e6:>8.2f}M{r['int8_mb']:>8.2f}"
            f"{t['int8_mb'] / r['int8_mb']:>9.1f}x{r['ms']:>8.2f}{t['ms'] / r['ms']:>8.1f}x"
            f"{oov:>9}{r['wall_s']:>7.0f}"
        )
    second = None
    if args.second_teacher and args.second_row in args.rows.split(","):
        second = {"row": args.second_row}
        second.update(_second_task(args, root, ROWS[args.second_row], unlabelled))
        print(f"{args.second_row} recipe on TREC (6 classes, not tuned on): {second}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}; total {time.perf_counter() - start:.0f}s"
    )
    (root / "results.json").write_text(
        json.dumps(
            {
                "mode": "short" if args.short else "full",
                "rows": [
                    {k: str(v) if isinstance(v, Path) else v for k, v in r.items()} for r in rows
                ],
                "second_task": second,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
