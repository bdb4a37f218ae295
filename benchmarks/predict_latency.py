"""Per-sentence latency of ``pocketbert.load(bundle).predict([sentence])``, per format.

Exports one bundle per format x precision (fp32, int8-dynamic) of a random-weight 6x384
BERT classifier (the all-MiniLM-L6-v2 shape and tokenizer), or of the real
all-MiniLM-L6-v2 with --real, then times ``predict([s])`` one sentence at a time over real
movie-review sentences (rotten_tomatoes rows: short text, ~20-40 tokens), interleaved
across bundles so drift hits all alike, and prints the p50 per bundle with the CPU.

The tflite bundles have one signature per length bucket (16, 32, ... max), which the
LiteRT runtime runs at the bucket that fits each sentence.

    python benchmarks/predict_latency.py [--real] [--max-seq-len 128] [--runs 200]
        [--formats onnx tflite ...]  # only these formats (default: all three)
        [--out DIR]            # keep the bundles there (re-used when present)
        [--bundles B1 B2 ...]  # time these bundles instead of exporting
        [--static-tflite]      # also: each tflite bundle re-converted the old way, one
                               # [1, max_seq_len] signature that every sentence is padded to

Needs: pip install -e '.[convert,examples]'
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from int8_kernels import isa  # noqa: E402

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

FORMATS = ("onnx", "tflite", "executorch")
PRECISIONS = ("fp32", "int8-dynamic")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def export_bundles(root: Path, real: bool, max_seq_len: int, formats) -> list[Path]:
    import pocketbert
    from pocketbert.examples import minilm_path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from random_models import save_random_model  # tests/random_models.py

    if real:
        model = minilm_path()
    else:
        model = root / "bert-6x384"
        if not (model / "config.json").is_file():
            save_random_model("bert", model, size="small", tokenizer_from=minilm_path())
    bundles = []
    for fmt in formats:
        for precision in PRECISIONS:
            out = root / f"{fmt}-{precision}"
            if not (out / "manifest.json").is_file():
                start = time.perf_counter()
                pocketbert.export(
                    model,
                    out,
                    format=fmt,
                    precision=precision,
                    max_seq_len=max_seq_len,
                    allow_parity_failure=True,  # a random model's parity is not the point here
                    quiet=True,
                )
                print(f"exported {out.name} in {time.perf_counter() - start:.0f}s", flush=True)
            bundles.append(out)
    return bundles


def static_tflite(bundle: Path, model: Path, out: Path) -> Path:
    """A copy of a tflite ``bundle`` whose file has one [1, max_seq_len] signature (the
    exporter's output before length buckets): the predictor pads every text to the max."""
    import hashlib
    import shutil

    import litert_torch
    import numpy as np
    import torch

    from pocketbert.bundle_checks import DIGEST_KEY, manifest_digest
    from pocketbert.converters.export_tflite import _int8_dynamic
    from pocketbert.converters.model import export_ready, load_model

    manifest = json.loads((bundle / "manifest.json").read_text())
    n = manifest["max_seq_len"]
    module = export_ready(load_model(model, manifest.get("task")))
    ids = torch.from_numpy(np.random.default_rng(n).integers(5, 1000, (1, n)).astype(np.int32))
    kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    shutil.copytree(bundle, out, dirs_exist_ok=True)
    target = out / manifest["model_file"]
    fp32 = out / "fp32-static.tflite"
    litert_torch.convert(module, sample_kwargs=kwargs).export(str(fp32))
    if manifest["precision"] == "int8-dynamic":
        _int8_dynamic(fp32, target, None)
        fp32.unlink()
    else:
        fp32.replace(target)
    manifest["files"][manifest["model_file"]] = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest["precision"] += "-static"
    manifest["dynamic_seq"] = False
    for spec in manifest["inputs"]:
        spec["shape"] = [1, n]
    manifest[DIGEST_KEY] = manifest_digest(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="the real all-MiniLM-L6-v2")
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--runs", type=int, default=200, help="sentences timed per bundle")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="where to keep the bundles")
    parser.add_argument("--bundles", type=Path, nargs="*", default=None)
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--static-tflite", action="store_true")
    args = parser.parse_args()

    from export_matrix import interleaved_p50_ms

    import pocketbert
    from pocketbert.examples import sample_sentences

    with tempfile.TemporaryDirectory(prefix="pocketbert-predict-") as tmp:
        if args.bundles:
            bundles = args.bundles
        else:
            root = args.out or Path(tmp)
            root.mkdir(parents=True, exist_ok=True)
            bundles = export_bundles(root, args.real, args.max_seq_len, args.formats)
            if args.static_tflite:
                from pocketbert.examples import minilm_path

                model = minilm_path() if args.real else root / "bert-6x384"
                for b in [b for b in bundles if b.name.startswith("tflite-")]:
                    out = root / f"{b.name}-static"
                    done = (out / "manifest.json").is_file()
                    start = time.perf_counter()
                    bundles.append(out if done else static_tflite(b, model, out))
                    print(f"converted {out.name} in {time.perf_counter() - start:.0f}s", flush=True)
        sentences = sample_sentences(args.runs, seed=0)
        runners, tokens = {}, {}
        for bundle in bundles:
            manifest = json.loads((Path(bundle) / "manifest.json").read_text())
            start = time.perf_counter()
            predictor = pocketbert.load(bundle, threads=args.threads)
            load_s = time.perf_counter() - start
            name = f"{manifest['format']}-{manifest['precision']}"
            cursor = iter(range(10**9))

            def predict_next(p=predictor, c=cursor) -> None:
                p.predict([sentences[next(c) % len(sentences)]])

            runners[name] = predict_next
            size = (Path(bundle) / manifest["model_file"]).stat().st_size / 1e6
            tokens[name] = (manifest["max_seq_len"], load_s, size)
        p50 = interleaved_p50_ms(runners, args.runs)

    lengths = [len(s.split()) for s in sentences]
    print(f"cpu: {cpu_model()}; {isa()}")
    print(
        f"python {platform.python_version()}; {'all-MiniLM-L6-v2' if args.real else 'random 6x384 BERT'}; "
        f"threads {args.threads}; {args.runs} rotten_tomatoes sentences "
        f"({min(lengths)}-{max(lengths)} words, median {sorted(lengths)[len(lengths) // 2]})"
    )
    print(f"{'bundle':<30}{'max len':>8}{'load s':>8}{'MB':>7}{'p50 ms/sentence':>17}")
    for name, ms in p50.items():
        max_len, load_s, mb = tokens[name]
        print(f"{name:<30}{max_len:>8}{load_s:>8.1f}{mb:>7.1f}{ms:>17.2f}")


if __name__ == "__main__":
    main()
