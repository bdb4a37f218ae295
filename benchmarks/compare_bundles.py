"""Two bundle sets of one model, timed against each other in one process.

    python benchmarks/compare_bundles.py BEFORE_DIR AFTER_DIR [--runs 30] [--seq 128]

Each DIR is what ``pocketbert export MODEL -o DIR --format all --precision all`` writes
(``DIR/<format>-<precision>/``). Every bundle present in both sets is loaded through this
checkout's runtimes and timed at batch 1 on one padded sentence of ``--seq`` tokens, at 1 and
2 threads, all files of one thread count in interleaved rounds (so the machine's drift hits
before and after alike). Prints the CPU, then for each bundle the file sizes, the p50 ms of
each set and after / before: the way to show that a re-export, or a new pocketbert, did not
make a file slower.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_matrix import interleaved_p50_ms  # noqa: E402
from int8_kernels import isa  # noqa: E402


def feed(bundle: Path, seq: int) -> dict[str, np.ndarray]:
    from pocketbert.examples import sample_sentences
    from pocketbert.tokenize import Encoder

    text = " ".join(sample_sentences(20, seed=1))  # long enough to fill seq tokens
    return Encoder(bundle / "tokenizer.json", seq, pad_to=seq).feed(text)


def runner(bundle: Path, seq: int, threads: int):
    from pocketbert import runtimes

    manifest = json.loads((bundle / "manifest.json").read_text())
    session = runtimes.load(bundle / manifest["model_file"], threads=threads)
    f = feed(bundle, seq)
    f = {**f, "token_type_ids": np.zeros_like(f["input_ids"])}
    feeds = {k: v for k, v in f.items() if k in session.input_names}
    return lambda: session.run(feeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    names = sorted(
        p.name
        for p in args.before.iterdir()
        if (p / "manifest.json").is_file() and (args.after / p.name / "manifest.json").is_file()
    )
    if not names:
        sys.exit(f"no bundle name is in both {args.before} and {args.after}")
    from pocketbert.profiler import hygiene

    snap = hygiene.snapshot()
    print(f"cpu: {snap['cpu_model']}, {snap['cores']} cores, {isa()}, load {snap['loadavg']}")
    print(f"batch 1, seq {args.seq}, {args.runs} timed runs a file, interleaved rounds of 10")
    p50 = {}
    for threads in (1, 2):
        runners = {
            (n, side, threads): runner(root / n, args.seq, threads)
            for n in names
            for side, root in (("before", args.before), ("after", args.after))
        }
        p50.update(interleaved_p50_ms(runners, args.runs))
    print(
        "| bundle | MB before | MB after | 1t before | 1t after | after/before 1t "
        "| 2t before | 2t after | after/before 2t |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        mb = []
        for root in (args.before, args.after):
            m = json.loads((root / n / "manifest.json").read_text())
            mb.append((root / n / m["model_file"]).stat().st_size / 1e6)
        cells = [f"{mb[0]:.1f}", f"{mb[1]:.1f}"]
        for t in (1, 2):
            b, a = p50[(n, "before", t)], p50[(n, "after", t)]
            cells += [f"{b:.1f}", f"{a:.1f}", f"{a / b:.2f}x"]
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
