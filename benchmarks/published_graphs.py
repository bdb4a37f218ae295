"""Rebuild every model of sdk/assets/published_latency.yaml with random weights, export the
graph each published point's runtime runs (one static-shape .tflite per length; a .pte through
pocketbert's ExecuTorch exporter), count every op of it, and write the counts to
sdk/assets/published_counts.json (what the estimator's fit reads).

    python benchmarks/published_graphs.py [--out DIR]   # DIR keeps the graphs (re-used)

Needs: pip install -e '.[convert,examples]'. Several minutes (BERT-base and the 24-layer
MobileBERTs are converted at full size); each graph is written once and then re-used.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

ROOT = Path(__file__).resolve().parents[1]
COUNTS = ROOT / "sdk" / "assets" / "published_counts.json"


def model_dir(root: Path, name: str, spec: dict) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from random_models import save_random_model  # tests/random_models.py

    from pocketbert.examples import minilm_path

    out = root / "models" / name
    if not (out / "config.json").is_file():
        save_random_model(
            spec["architecture"], out, size="small", tokenizer_from=minilm_path(), **spec["config"]
        )
    return out


def tflite_graph(model: Path, seq: int, out: Path) -> Path:
    """One fp32 .tflite with a single static [1, seq] signature (what the published runs ran)."""
    if out.is_file():
        return out
    import litert_torch
    import torch

    from pocketbert.converters.model import export_ready, load_model

    module = export_ready(load_model(model))
    ids = torch.randint(5, 1000, (1, seq), dtype=torch.int32)
    kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    tmp = out.with_suffix(".part")
    litert_torch.convert(module, sample_kwargs=kwargs).export(str(tmp))
    tmp.replace(out)
    return out


def executorch_graph(model: Path, seq: int, out: Path) -> Path:
    if (out / "manifest.json").is_file():
        return out
    import pocketbert

    pocketbert.export(
        model,
        out,
        format="executorch",
        precision="fp32",
        max_seq_len=seq,
        allow_parity_failure=True,
        quiet=True,
    )
    return out


GRAPHS = {"tflite": tflite_graph, "executorch": executorch_graph}


def _as_published() -> None:
    """Export MobileBERT's NoNorms as the published runtimes ran them (a Mul and an Add
    each): pocketbert's own NoNorm fold and carry (converters/no_norm_fold.py,
    no_norm_carry.py) came later than those figures and are not what they measured."""
    from pocketbert.converters import model as model_module

    model_module.fold_bottleneck_no_norms = lambda module: 0
    model_module.carry_residual_no_norms = lambda module: 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache/pocketbert/published")
    parser.add_argument("--only", default=None, help="comma-separated model names")
    parser.add_argument(
        "--count-only", action="store_true", help="count the graphs already written; export none"
    )
    args = parser.parse_args()
    import torch
    import yaml

    torch.set_num_threads(1)
    from pocketbert.lab.op_count import count_file

    _as_published()

    table = yaml.safe_load((ROOT / "sdk/assets/published_latency.yaml").read_text())
    counts = json.loads(COUNTS.read_text()) if COUNTS.is_file() else {}
    wanted = sorted({(p["model"], p["graph"], p["seq"]) for p in table["points"]})
    for name, graph, seq in wanted:
        if args.only and name not in args.only.split(","):
            continue
        start = time.perf_counter()
        model = args.out / "models" / name
        if not args.count_only:
            model = model_dir(args.out, name, table["models"][name])
        suffix = ".tflite" if graph == "tflite" else ""
        path = args.out / "graphs" / f"{name}-{graph}-{seq}{suffix}"
        if args.count_only and not (path.is_file() or (path / "manifest.json").is_file()):
            continue
        path = GRAPHS[graph](model, seq, path)
        work = count_file(path, seq)
        counts[f"{name}/{graph}/{seq}"] = work.to_dict()
        tmp = COUNTS.with_suffix(".part")
        lines = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(counts.items())]
        tmp.write_text("{\n" + ",\n".join(lines) + "\n}\n")
        tmp.replace(COUNTS)
        print(
            f"{name} {graph} seq {seq}: {work.gemm_flops / 1e9:.2f} GFLOP in GEMMs, "
            f"{work.total_ops} ops, {time.perf_counter() - start:.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
