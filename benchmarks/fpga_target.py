"""The FPGA target on real weights: accuracy of the integer program and the zcu104 estimate.

    OMP_NUM_THREADS=1 python benchmarks/fpga_target.py [-o bench-fpga] [--teacher DIR]
        [--students DIR ...] [--test-limit N] [--max-seq-len 64]

1. the teacher: all-MiniLM-L6-v2 fine-tuned on the Rotten Tomatoes sentences (the fixed
   seeded 80/10/10 stratified split, seed 0), ``--teacher-epochs`` at ``--max-seq-len``
   (or ``--teacher DIR``, a model fine-tuned so already); ``--students``: distilled
   students of benchmarks/distill_sentiment.py, if given;
2. per model, on the test split (``--test-limit``: the first N of the seeded test split):
   the accuracy of torch fp32, of the int8-dynamic ONNX bundle and of the integer fpga
   bundle; the argmax agreement of the integer program with fp32; the emulator's ms per
   sentence (each sentence at its own length, tokenization included); the host's measured
   ONNX int8 p50 (pocketbert.profile, ``--max-seq-len`` tokens) beside the zcu104
   estimate (ms, bound, utilisation) from the fpga model at the same length;
3. the fpga model against published FPGA BERT figures (FQ-BERT, DATE 2021: BERT-base,
   seq 128, on a ZCU102 and a ZCU111, the entries of devices.yaml), its error, and its
   GEMM cycles against SCALE-Sim's weight-stationary demand matrices for MiniLM's shapes on
   the zcu104 array (when scalesim is installed).

``--model-only`` runs step 3 alone, plus the zcu104 estimate of a MiniLM-L6-shaped encoder
(6 x 384, FFN 1536, 12 heads; no embeddings or head) at 64 and 128 tokens: seconds, no torch.

Prints the tables and the machine it ran on.
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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from distill_sentiment import _data  # noqa: E402 (the same seeded split)

# FQ-BERT (Liu, Li, Cheng, DATE 2021, arXiv 2103.02800), Table IV: BERT-base encoder, seq
# 128, batch 1, 4-bit weights / 8-bit activations, fabric at 214 MHz.
PUBLISHED = {"zcu102-fqbert": 43.89, "zcu111-fqbert": 23.79}
PUBLISHED_DSPS = {"zcu102-fqbert": 1751, "zcu111-fqbert": 3287}  # Table III


def _torch_labels(model_dir: Path, texts: list[str], seq: int) -> list[str]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            batch = tok(
                texts[i : i + 32],
                padding=True,
                truncation=True,
                max_length=seq,
                return_tensors="pt",
            )
            out += model(**batch).logits.argmax(-1).tolist()
    return [model.config.id2label[i] for i in out]


def _bundle_labels(bundle: Path, texts: list[str]) -> tuple[list[str], float]:
    """The bundle's labels, and its ms per sentence (one sentence at a time)."""
    import pocketbert

    predictor = pocketbert.load(bundle, threads=1)
    predictor.predict(texts[:2])  # warm
    start = time.perf_counter()
    labels = [predictor.predict([t])[0]["label"] for t in texts]
    return labels, (time.perf_counter() - start) * 1e3 / len(texts)


def _say(message: str) -> None:
    import sys

    print(f"... {message}", file=sys.stderr, flush=True)


def _acc(pred: list[str], gold: list[str]) -> float:
    return float(np.mean([p == g for p, g in zip(pred, gold, strict=True)]))


def _model_row(name: str, model_dir: Path, test, root: Path, args) -> dict:
    import pocketbert
    from pocketbert.devices import load_devices
    from pocketbert.lab import TRANSPORTS, Job

    texts, gold = [t for t, _ in test], [y for _, y in test]
    seq = args.max_seq_len
    _say(f"{name}: torch fp32 on {len(texts)} sentences")
    fp32 = _torch_labels(model_dir, texts, seq)
    bundles = {}
    for fmt, precision in (("onnx", "int8-dynamic"), ("fpga", "int8-static")):
        out = root / f"{model_dir.name}-{fmt}"
        if not out.exists():
            _say(f"{name}: export {fmt} {precision}")
            pocketbert.export(
                str(model_dir),
                out,
                format=fmt,
                precision=precision,
                max_seq_len=seq,
                quiet=True,
                allow_parity_failure=True,
            )
        bundles[fmt] = out
    _say(f"{name}: int8 ONNX and integer fpga predictions, host profile, zcu104 estimate")
    onnx, _ = _bundle_labels(bundles["onnx"], texts)
    integer, emulator_ms = _bundle_labels(bundles["fpga"], texts)
    (host,) = pocketbert.profile(
        [bundles["onnx"]], ["host"], runs=args.runs, seq_lens=[seq], store=None, quiet=True
    )
    zcu = TRANSPORTS["fpga-model"](load_devices()["zcu104"], Job(bundles["fpga"], seq_len=seq))
    model = zcu["fpga_model"]
    parity = json.loads((bundles["fpga"] / "manifest.json").read_text())["parity"]
    return {
        "model": name,
        "n": len(texts),
        "fp32": _acc(fp32, gold),
        "onnx_int8": _acc(onnx, gold),
        "fpga_int": _acc(integer, gold),
        "agree": _acc(integer, fp32),
        "gate_agree": parity.get("argmax_agreement"),
        "emulator_ms": emulator_ms,
        "host_onnx_p50_ms": host["latency_ms"]["p50"] if host["status"] == "ok" else None,
        "zcu104_ms": zcu["latency_ms"]["estimate"],
        "zcu104_bound": model["bound"],
        "zcu104_util": model["utilisation"],
        "zcu104_resident": model["weights_resident"],
    }


def _validation() -> list[dict]:
    from pocketbert.devices import load_devices
    from pocketbert.lab.fpga_layers import bert_program, program_layers
    from pocketbert.lab.fpga_model import Accelerator, estimate

    nodes, shapes, sizes, inputs = bert_program(12, 768, 3072, 12, weight_bits=4)
    layers = program_layers(nodes, shapes, sizes, 128, inputs)
    rows = []
    catalog = load_devices()
    for device_id, published in PUBLISHED.items():
        device = catalog[device_id]
        for buffers in (2, 1):
            entry = {**device.fpga, "weight_buffers": buffers}
            acc = Accelerator.from_device(type(device)(**{**device.__dict__, "fpga": entry}))
            r = estimate(acc, layers)
            rows.append(
                {
                    "device": device_id,
                    "weight_buffers": buffers,
                    "published_ms": published,
                    "estimate_ms": r["estimate_ms"],
                    "error": r["estimate_ms"] / published - 1,
                    "bound": r["bound"],
                    "dsp": r["utilisation"]["dsp"],
                    "published_dsp": PUBLISHED_DSPS[device_id] / device.fpga["dsps"],
                    "mac_efficiency": r["utilisation"]["mac_efficiency"],
                }
            )
    return rows


def _scalesim_check() -> list[tuple] | None:
    try:
        from scalesim.compute.systolic_compute_ws import systolic_compute_ws
        from scalesim.scale_config import scale_config
    except ImportError:
        return None
    from pocketbert.devices import load_devices
    from pocketbert.lab.fpga_model import Accelerator, gemm_cycles

    device = load_devices()["zcu104"]
    acc = Accelerator.from_device(
        type(device)(**{**device.__dict__, "fpga": {**device.fpga, "weight_buffers": 1}})
    )
    out = []
    for m, k, n in ((128, 384, 384), (128, 384, 1536), (128, 1536, 384), (128, 32, 128)):
        config = scale_config()
        config.update_from_list(
            ["pb", acc.rows, acc.cols, 1024, 1024, 1024, 0, 10**7, 2 * 10**7, "ws", "CALC", 10]
        )
        c = systolic_compute_ws()
        c.set_params(
            config_obj=config,
            ifmap_op_mat=np.arange(m * k).reshape(m, k),
            filter_op_mat=np.arange(k * n).reshape(k, n) + 10**7,
            ofmap_op_mat=np.arange(m * n).reshape(m, n) + 2 * 10**7,
        )
        c.create_demand_matrices()
        out.append(((m, k, n), gemm_cycles(acc, 1, m, k, n), c.ifmap_demand_matrix.shape[0]))
    return out


def _minilm_shaped() -> None:
    from pocketbert.devices import load_devices
    from pocketbert.lab.fpga_layers import bert_program, program_layers
    from pocketbert.lab.fpga_model import Accelerator, estimate

    acc = Accelerator.from_device(load_devices()["zcu104"])
    nodes, shapes, sizes, inputs = bert_program(6, 384, 1536, 12)
    print("\nzcu104, a MiniLM-L6-shaped encoder (int8, no embeddings or head):")
    for seq in (64, 128):
        r = estimate(acc, program_layers(nodes, shapes, sizes, seq, inputs))
        u = r["utilisation"]
        print(
            f"  seq {seq}: {r['estimate_ms']:.3f} ms, bound {r['bound']} "
            f"({', '.join(f'{k} {v:.3f} ms' for k, v in r['ms_by_bound'].items())}), DSP "
            f"{u['dsp']:.0%}, BRAM {u['bram36']:.0%}, URAM {u['uram']:.0%}, MAC efficiency "
            f"{u['mac_efficiency']:.0%}, weights "
            + ("on chip" if r["weights_resident"] else "from DDR")
        )


def _print_model_checks() -> None:
    print("\nfpga model vs FQ-BERT (BERT-base, seq 128, w4/a8, 214 MHz; DATE 2021 Tables III-IV)")
    print(
        f"{'device':<15}{'buffers':>8}{'published':>10}{'model':>9}{'error':>8}  DSP model/published"
    )
    for v in _validation():
        print(
            f"{v['device']:<15}{v['weight_buffers']:>8}{v['published_ms']:>10.2f}"
            f"{v['estimate_ms']:>9.2f}{v['error']:>+8.1%}  {v['dsp']:.0%}/{v['published_dsp']:.0%}"
            f" (bound {v['bound']}, MAC efficiency {v['mac_efficiency']:.0%})"
        )
    check = _scalesim_check()
    if check is None:
        print("\nSCALE-Sim not installed (pip install scalesim): GEMM cross-check skipped")
    else:
        print("\nGEMM cycles on the zcu104 array, one weight buffer: model vs SCALE-Sim 3.0.0 (ws)")
        for shape, ours, theirs in check:
            print(
                f"  M x K x N = {shape}: {ours:,} vs {theirs:,} {'(equal)' if ours == theirs else ''}"
            )
    _minilm_shaped()


def _machine(start: float) -> None:
    load = os.getloadavg()[0]
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, load average {load:.1f}; "
        f"{time.perf_counter() - start:.0f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default="bench-fpga")
    ap.add_argument("--teacher", default=None, help="a MiniLM already fine-tuned on RT")
    ap.add_argument("--teacher-epochs", type=int, default=1)
    ap.add_argument("--students", nargs="*", default=[], help="distilled student directories")
    ap.add_argument("--test-limit", type=int, default=0, help="first N test sentences (0: all)")
    ap.add_argument("--max-seq-len", type=int, default=64)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--model-only", action="store_true", help="step 3 and a MiniLM-shaped estimate")
    args = ap.parse_args()
    if args.model_only:
        t0 = time.perf_counter()
        _print_model_checks()
        _machine(t0)
        return
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import torch

    from pocketbert.converters.finetune import run_finetune
    from pocketbert.converters.train_loop import TrainConfig
    from pocketbert.examples import minilm_path

    torch.set_num_threads(1)
    start = time.perf_counter()
    root = Path(args.output)
    root.mkdir(parents=True, exist_ok=True)
    data = _data(root, None)
    teacher = Path(args.teacher) if args.teacher else root / "teacher"
    if not args.teacher and not (teacher / "config.json").exists():
        _say(f"fine-tuning the teacher ({args.teacher_epochs} epoch(s))")
        run_finetune(
            minilm_path(),
            data,
            teacher,
            TrainConfig(
                epochs=args.teacher_epochs,
                batch_size=32,
                lr=5e-5,
                max_seq_len=args.max_seq_len,
                checkpoint_every=0,
            ),
            quiet=True,
        )
    test = data.test[: args.test_limit] if args.test_limit else data.test
    models = [("teacher MiniLM-L6", teacher)] + [(Path(s).name, Path(s)) for s in args.students]
    rows = [_model_row(name, Path(d), test, root, args) for name, d in models]
    print(
        f"Rotten Tomatoes test split: {len(test)} of {len(data.test)} sentences, "
        f"max {args.max_seq_len} tokens"
    )
    head = f"{'model':<20}{'fp32':>7}{'onnx i8':>8}{'fpga int':>9}{'agree':>7}"
    head += f"{'emu ms':>8}{'host onnx ms':>13}{'zcu104 ms':>10}  bound, DSP/BRAM/URAM, MAC eff"
    print(head)
    for r in rows:
        u = r["zcu104_util"]
        host = f"{r['host_onnx_p50_ms']:.2f}" if r["host_onnx_p50_ms"] else "failed"
        print(
            f"{r['model']:<20}{r['fp32']:>7.4f}{r['onnx_int8']:>8.4f}{r['fpga_int']:>9.4f}"
            f"{r['agree']:>7.3f}{r['emulator_ms']:>8.1f}{host:>13}{r['zcu104_ms']:>10.3f}"
            f"  {r['zcu104_bound']}, {u['dsp']:.0%}/{u['bram36']:.0%}/{u['uram']:.0%}, "
            f"{u['mac_efficiency']:.0%}"
            + (", weights on chip" if r["zcu104_resident"] else ", weights from DDR")
        )
        gap = (r["fp32"] - r["fpga_int"]) * 100
        if gap > 1:
            print(f"  note: the integer program is {gap:.1f} points below fp32 (target: 1)")
    _print_model_checks()
    _machine(start)


if __name__ == "__main__":
    main()
