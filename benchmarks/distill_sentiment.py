"""Distill all-MiniLM-L6-v2 fine-tuned on Rotten Tomatoes into SqueezeBERT/MobileBERT students.

    python benchmarks/distill_sentiment.py [-o bench-out] [--limit N] [--teacher-epochs 2] [--stage1-epochs 1] [--epochs 2]

1. fine-tune all-MiniLM-L6-v2 on the Rotten Tomatoes sentences (fixed seeded 80/10/10
   stratified split, seed 0; the same split in every run);
2. label ``--unlabelled`` IMDB review sentences with the teacher (once, cached for both
   families), then for each student family: distill in TinyBERT's two stages over the
   labelled and unlabelled sentences (``--stage1-epochs`` on the teacher's hidden states
   and attention maps, then ``--epochs`` on labels + its softened logits), and train a
   twin on labels alone (same architecture, same teacher-derived init, as many epochs);
3. export the teacher and every student to int8-dynamic ONNX bundles and time them at
   batch 1 on the test sentences, in this process, one after the other.

Prints one table (test accuracy, parameters, int8 file size, p50 latency, distillation
time and examples/s) and the machine it ran on.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import random
import statistics
import time
import warnings
from pathlib import Path

FAMILIES = ("squeezebert", "mobilebert")


def _data(root: Path, limit: int | None):
    from pocketbert.core.data import load_data
    from pocketbert.examples import movie_reviews

    path = root / "rotten_tomatoes.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(
            (t, "positive" if y == "1" else "negative") for t, y in movie_reviews("rotten_tomatoes")
        )
    data = load_data(path, seed=0)
    if limit:
        data.train = data.train[:limit]
    return data


def _measure(
    bundle: Path, test: list[tuple[str, str]], n_latency: int, threads: int
) -> tuple[float, float]:
    """(p50 ms at batch 1 over the first ``n_latency`` test sentences, int8 test accuracy)."""
    import pocketbert

    predictor = pocketbert.load(bundle, threads=threads)
    feeds = predictor.encoder.feeds([t for t, _ in test])
    for feed in feeds[:20]:
        predictor.session.run(feed)
    samples = []
    for feed in feeds[:n_latency]:
        t0 = time.perf_counter()
        predictor.session.run(feed)
        samples.append(time.perf_counter() - t0)
    predicted = [p["label"] for p in predictor.predict([t for t, _ in test])]
    accuracy = sum(p == y for p, (_, y) in zip(predicted, test, strict=True)) / len(test)
    return statistics.median(samples) * 1e3, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="bench-distill")
    parser.add_argument(
        "--limit", type=int, default=None, help="use only N training sentences (a quick check)"
    )
    parser.add_argument("--teacher-epochs", type=int, default=2)
    parser.add_argument("--teacher-lr", type=float, default=1e-4)
    parser.add_argument(
        "--epochs", type=int, default=2, help="student epochs on the logits (prediction layer)"
    )
    parser.add_argument(
        "--stage1-epochs",
        type=int,
        default=1,
        help="TinyBERT stage 1 before them: epochs on hidden states and attention maps (0: none)",
    )
    parser.add_argument(
        "--augment",
        type=int,
        default=0,
        help="augmented variants of each training sentence for the distillation terms",
    )
    parser.add_argument("--max-seq-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads for latency")
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument(
        "--train-threads",
        type=int,
        default=os.cpu_count(),
        help="torch threads for training (1 is faster on a CPU shared with other jobs)",
    )
    parser.add_argument(
        "--unlabelled",
        type=int,
        default=30000,
        help="IMDB review sentences the teacher labels for distillation (0: none)",
    )
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument(
        "--sizes",
        default="squeezebert=small,mobilebert=medium",
        help="size preset of each family's student (both within 1/4 of the teacher's layer params)",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    import torch

    import pocketbert
    from pocketbert.converters.distill import DistillConfig, run_distill
    from pocketbert.converters.distill_loss import LossWeights
    from pocketbert.converters.finetune import run_finetune
    from pocketbert.converters.students import StudentSpec
    from pocketbert.converters.train_loop import TrainConfig
    from pocketbert.examples import minilm_path

    torch.set_num_threads(args.train_threads)
    start = time.perf_counter()
    root = Path(args.output)
    root.mkdir(parents=True, exist_ok=True)
    data = _data(root, args.limit)
    seq = args.max_seq_len
    t0 = time.perf_counter()
    teacher = root / "teacher"
    tsum = run_finetune(
        minilm_path(),
        data,
        teacher,
        TrainConfig(
            epochs=args.teacher_epochs,
            batch_size=32,
            lr=args.teacher_lr,
            max_seq_len=seq,
            checkpoint_every=0,
        ),
        quiet=args.quiet,
    )
    teacher_s = time.perf_counter() - t0
    rows = [
        {
            "model": "teacher MiniLM-L6",
            "test_acc": tsum["test_accuracy"],
            "params": tsum["params"],
            "layer_params": tsum["transformer_layer_params"],
            "dir": teacher,
            "train_s": tsum["train_seconds"],
            "wall_s": teacher_s,
            "ex_s": tsum["examples_per_s"],
            "examples": len(data.train),
        }
    ]
    unlabelled = None
    if args.unlabelled:
        from pocketbert.examples import review_sentences

        unlabelled = root / "imdb_sentences.txt"
        unlabelled.write_text("\n".join(review_sentences(args.unlabelled, seed=0)) + "\n")
    kd = LossWeights(ce=1.0, kd=1.0, temperature=args.temperature)
    labels_only = LossWeights(ce=1.0)
    student_cfg = TrainConfig(  # the twin trains as many epochs as the distilled student
        epochs=args.stage1_epochs + args.epochs,
        batch_size=32,
        lr=2e-4,
        max_seq_len=seq,
        checkpoint_every=0,
    )
    sizes = dict(item.split("=") for item in args.sizes.split(","))
    for family in args.families.split(","):
        for name, loss in (("KD", kd), ("labels only", labels_only)):
            out = root / f"{family}-{'kd' if loss is kd else 'ce'}"
            config = DistillConfig(
                student=StudentSpec(family, sizes.get(family, "small")),
                loss=loss,
                train=student_cfg,
                unlabelled=str(unlabelled) if unlabelled and loss is kd else None,
                augment=args.augment if loss is kd else 0,
                two_stage=loss is kd and args.stage1_epochs > 0,
                stage1_epochs=args.stage1_epochs or None,  # read only when two_stage
                cache_dir=str(root / "cache"),  # the teacher labels the text once for both families
            )
            t_run = time.perf_counter()
            s = run_distill(teacher, data, out, config, quiet=args.quiet)
            rows.append(
                {
                    "model": f"{family}-{sizes.get(family, 'small')} {name}",
                    "test_acc": s["test_accuracy"],
                    "params": s["student_params"],
                    "layer_params": s["student_transformer_layer_params"],
                    "dir": out,
                    "train_s": s["train_seconds"],
                    "wall_s": time.perf_counter() - t_run,  # with the teacher's labelling, if any
                    "ex_s": s["examples_per_s"],
                    "examples": s["examples"]["train"] + s["examples"]["unlabelled"],
                }
            )
    calib = root / "calibration.txt"
    calib.write_text("\n".join(t for t, _ in data.validation[:256]))
    for row in rows:
        bundle = root / "bundles" / Path(row["dir"]).name
        [result] = pocketbert.export(
            row["dir"],
            bundle,
            format="onnx",
            precision="int8-dynamic",
            max_seq_len=seq,
            calibration=str(calib),
            allow_parity_failure=True,  # the agreement is reported in the table
            quiet=True,
        )
        model_file = next(bundle.glob("model.*"))
        row["int8_mb"] = model_file.stat().st_size / 1e6
        row["agree"] = result.parity["argmax_agreement"]
        row["ms"], row["int8_acc"] = _measure(
            bundle, data.test, args.latency_sentences, args.threads
        )
    teacher_row = rows[0]
    print(
        f"\nRotten Tomatoes: train {len(data.train)}, test {len(data.test)}; max_seq_len {seq}; "
        f"int8-dynamic ONNX, batch 1, {args.threads} thread(s), p50 over {args.latency_sentences} test sentences; "
        "int8 acc: the bundle's own test accuracy; agree: int8 vs torch argmax on 256 validation sentences"
    )
    header = f"{'model':<30}{'test acc':>9}{'kept':>7}{'int8 acc':>9}{'agree':>7}{'params':>9}{'layer p.':>9}{'int8 MB':>8}{'ms':>7}{'speedup':>8}{'train s':>8}{'wall s':>7}{'ex/s':>7}{'examples':>9}"
    print(header)
    for r in rows:
        print(
            f"{r['model']:<30}{r['test_acc']:>9.2%}{r['test_acc'] / teacher_row['test_acc']:>7.1%}"
            f"{r['int8_acc']:>9.2%}{r['agree']:>7.1%}"
            f"{r['params'] / 1e6:>8.2f}M{r['layer_params'] / 1e6:>8.2f}M{r['int8_mb']:>8.1f}{r['ms']:>7.2f}"
            f"{teacher_row['ms'] / r['ms']:>7.1f}x{r['train_s']:>8.0f}{r['wall_s']:>7.0f}"
            f"{r['ex_s']:>7.0f}{r['examples']:>9}"
        )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}; total {time.perf_counter() - start:.0f}s"
    )
    (root / "results.json").write_text(
        json.dumps(
            [{k: str(v) if isinstance(v, Path) else v for k, v in r.items()} for r in rows],
            indent=2,
        )
    )


if __name__ == "__main__":
    random.seed(0)
    main()
