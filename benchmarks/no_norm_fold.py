"""MobileBERT's NoNorms folded and carried into their Linears: ONNX before and after.

    python benchmarks/no_norm_fold.py [-o bench-nonorm] [--runs 40] [--seq 128]

The published MobileBERT shape (24 layers, random weights, NoNorm gammas and betas drawn
away from 1 and 0) exported to ONNX fp32 and int8-dynamic three ways: as ``pocketbert
export`` writes it ("carried": each bottleneck's NoNorm folded into the Linear before it,
converters/no_norm_fold.py, and the residual NoNorms carried into the Linears around them,
converters/no_norm_carry.py), with the bottleneck fold alone ("folded"), and with both
turned off ("unfolded"). Prints the node count of each graph and its p50 at batch 1, seq
``--seq``: at 1 thread the six sessions are timed interleaved run by run; at 2 threads each
session runs ``--runs`` times alone, in alternating order, three rounds (a live idle
session's spinning threads would take the other core). Ratios within this run only; prints
the CPU and its ISA.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from int8_kernels import isa  # noqa: E402
from predict_latency import cpu_model  # noqa: E402

TEXT = "a quiet film that keeps its best scenes for the last half hour " * 12


VARIANTS = ("unfolded", "folded", "carried")  # neither, the bottleneck fold, both


def _export(model: Path, out: Path, precision: str, variant: str) -> Path:
    import pocketbert
    from pocketbert.converters import model as model_module
    from pocketbert.converters.no_norm_carry import carry_residual_no_norms
    from pocketbert.converters.no_norm_fold import fold_bottleneck_no_norms

    if variant == "unfolded":
        model_module.fold_bottleneck_no_norms = lambda m: 0
    if variant != "carried":
        model_module.carry_residual_no_norms = lambda m: 0
    try:
        pocketbert.export(model, out, format="onnx", precision=precision, quiet=True)
    finally:
        model_module.fold_bottleneck_no_norms = fold_bottleneck_no_norms
        model_module.carry_residual_no_norms = carry_residual_no_norms
    return out


def _model(root: Path) -> Path:
    import torch
    from random_models import save_random_model
    from transformers import AutoModelForSequenceClassification

    from pocketbert.examples import minilm_path

    path = root / "mobilebert"
    if not (path / "config.json").is_file():
        save_random_model("mobilebert", path, size="small", tokenizer_from=minilm_path())
        model = AutoModelForSequenceClassification.from_pretrained(path)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for m in model.modules():
                if type(m).__name__ == "NoNorm":
                    m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                    m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
        model.save_pretrained(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", default="bench-nonorm")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import onnx

    import pocketbert

    root = Path(args.output)
    model = _model(root)
    bundles = {}
    for precision in ("fp32", "int8-dynamic"):
        for variant in VARIANTS:
            name = f"{precision} {variant}"
            out = root / name.replace(" ", "-")
            if not (out / "model.onnx").is_file():
                _export(model, out, precision, variant)
            bundles[name] = out
    nodes = {n: len(onnx.load(str(b / "model.onnx")).graph.node) for n, b in bundles.items()}

    def feed(predictor):
        f = predictor.encoder.feeds([TEXT])[0]
        return {k: v[:, : args.seq] for k, v in f.items()}

    times: dict[tuple[str, int], list[float]] = {(n, t): [] for n in bundles for t in (1, 2)}
    loaded = {n: pocketbert.load(b, threads=1) for n, b in bundles.items()}
    feeds = {n: feed(p) for n, p in loaded.items()}
    for n, p in loaded.items():
        for _ in range(3):
            p.session.run(feeds[n])
    for _ in range(args.runs):
        for n, p in loaded.items():
            t0 = time.perf_counter()
            p.session.run(feeds[n])
            times[(n, 1)].append(time.perf_counter() - t0)
    del loaded
    order = list(bundles)
    for r in range(3):
        for n in order if r % 2 == 0 else order[::-1]:
            p = pocketbert.load(bundles[n], threads=2)
            for _ in range(3):
                p.session.run(feeds[n])
            for _ in range(args.runs):
                t0 = time.perf_counter()
                p.session.run(feeds[n])
                times[(n, 2)].append(time.perf_counter() - t0)
            del p
    print(f"cpu: {cpu_model()}, {isa()}; MobileBERT (24 layers), batch 1, seq {args.seq}")
    print("| graph | nodes | 1 thread p50 ms | 2 threads p50 ms |")
    print("|---|---:|---:|---:|")
    p50 = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    for n in bundles:
        print(f"| {n} | {nodes[n]} | {p50[(n, 1)]:.2f} | {p50[(n, 2)]:.2f} |")
    for precision in ("fp32", "int8-dynamic"):
        for t in (1, 2):
            base = p50[(f"{precision} unfolded", t)]
            ratios = ", ".join(
                f"{v} {base / p50[(f'{precision} {v}', t)]:.3f}x" for v in VARIANTS[1:]
            )
            print(f"{precision}, {t} thread(s), faster than unfolded: {ratios}")


if __name__ == "__main__":
    main()
