"""LoRA against a full fine-tune of the same teacher, on Rotten Tomatoes.

    python benchmarks/lora_finetune.py [-o bench-lora] [--ranks 8] [--threads 1] [--limit N]

all-MiniLM-L6-v2 is fine-tuned on the Rotten Tomatoes sentences (the distillation
benchmark's seeded 80/10/10 split) with pocketbert's defaults, once in full and once per
LoRA rank (adapters on every Linear, the head in full, lr from the LoRA rule), each in its
own process so that its peak memory is its own. Prints, per run: trainable parameters,
wall time of the training, peak resident memory, and validation / test accuracy of the
saved (merged) classifier, beside the full fine-tune in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

CHILD = """
import json, logging, sys, time, warnings
warnings.filterwarnings("ignore"); logging.disable(logging.WARNING)
import torch
sys.path.insert(0, sys.argv[5])
from distill_sentiment import _data
import pocketbert
from pocketbert.examples import minilm_path
out, rank, threads, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
data = _data(__import__("pathlib").Path(out).parent, limit or None)
t0 = time.perf_counter()
s = pocketbert.finetune(minilm_path(), data, out, lora=rank or None, quiet=True,
                        checkpoint_every=0, max_seq_len=64)
s["wall_s"] = time.perf_counter() - t0
import resource
s["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(s))
"""


def _run(root: Path, rank: int, threads: int, limit: int | None) -> dict:
    out = root / (f"lora-r{rank}" if rank else "full")
    if (out / "summary.json").is_file():
        import shutil

        shutil.rmtree(out)  # a fresh run each time: wall time and memory are what is measured
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(out),
            str(rank),
            str(threads),
            str(limit or 0),
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"fine-tune (rank {rank}) failed:\n{proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    lora = summary.get("lora") or {}
    return {
        "run": f"LoRA r={rank}" if rank else "full fine-tune",
        "trainable": lora.get("trainable_params", summary.get("params")),
        "params": lora.get("total_params", summary.get("params")),
        "epochs": len(summary.get("history", [])) or summary.get("train", {}).get("epochs"),
        "lr": summary["defaults"]["lr"],
        "train_s": summary.get("train_seconds", summary["wall_s"]),
        "wall_s": summary["wall_s"],
        "peak_rss_mb": summary["peak_rss_mb"],  # the child's own ru_maxrss
        "val_acc": next(
            h["val_accuracy"]
            for h in reversed(summary["history"])
            if h["epoch"] == (summary["best_epoch"] or summary["history"][-1]["epoch"])
        ),
        "test_acc": summary["test_accuracy"],
        "dir": str(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="bench-lora")
    parser.add_argument("--ranks", default="8", help="comma-separated LoRA ranks")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--limit", type=int, default=None, help="N training rows (a quick check)")
    args = parser.parse_args()
    root = Path(args.output)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = [_run(root, 0, args.threads, args.limit)]
    rows += [_run(root, int(r), args.threads, args.limit) for r in args.ranks.split(",")]
    full = rows[0]
    print(
        f"\nRotten Tomatoes, all-MiniLM-L6-v2 teacher, pocketbert finetune defaults, "
        f"{args.threads} torch thread(s), max_seq_len 64"
    )
    print(
        f"{'run':<16}{'trainable':>12}{'share':>8}{'epochs':>7}{'lr':>8}{'train s':>9}"
        f"{'x full':>7}{'peak MB':>9}{'val acc':>9}{'test acc':>9}{'vs full':>9}"
    )
    for r in rows:
        print(
            f"{r['run']:<16}{r['trainable']:>12,}{r['trainable'] / r['params']:>8.1%}"
            f"{r['epochs']:>7}{r['lr']:>8.0e}{r['train_s']:>9.0f}"
            f"{r['train_s'] / full['train_s']:>7.2f}{r['peak_rss_mb']:>9.0f}{r['val_acc']:>9.2%}"
            f"{r['test_acc']:>9.2%}{(r['test_acc'] - full['test_acc']) * 100:>+8.2f}pt"
        )
    from pocketbert.profiler.hygiene import cpu_model, isa

    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cores, {isa()}; total {time.perf_counter() - start:.0f}s"
    )
    (root / "results.json").write_text(
        json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
