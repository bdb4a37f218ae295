"""How close each bundle runs to this CPU's own GEMM limit, and where the rest of its time goes.

1. Probes: this CPU's int8 and fp32 GEMM rate through each runtime's own kernels, at the
   weight shapes of the models (batch 1, seq 128):
   - onnxruntime: MatMulInteger (u8 x s8 -> s32) and MatMul, eight weights per graph,
     outputs bound to preallocated buffers (IOBinding) so nothing but the kernels is timed;
   - XNNPACK through ExecuTorch: a stack of eight Linear layers lowered as fp32, int8-dynamic
     (QD8 x QC8W) and int8-static (QS8 x QC8W), as ``benchmarks/int8_kernels.py`` builds it;
   - XNNPACK through LiteRT: the same stack converted by litert-torch, fp32 and int8
     weights with dynamic activations (ai-edge-quantizer ``dynamic_wi8_afp32``).
2. For every bundle of an export-matrix directory: the work of its matmuls (counted on the
   model's fp32 ONNX graph, attention included), p50 at 1 and 2 threads, achieved GOP/s,
   that as a fraction of its runtime's probe at the model's own shape mix and of the best
   int8 probe on this host, and where its time goes per class (``op_breakdown.py``).

    python benchmarks/export_matrix.py --out out/matrix      # the bundles
    python benchmarks/host_roofline.py out/matrix [--runs N]

Needs: pip install -e '.[convert,examples,compare]'
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from export_matrix import SEQ, feed, interleaved_p50_ms  # noqa: E402
from int8_kernels import executorch_runners, isa  # noqa: E402
from op_breakdown import CLASSES, breakdown  # noqa: E402

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

THREADS = (1, 2)
WEIGHTS_PER_PROBE = 8


def matmul_work(onnx_path: Path) -> dict:
    """{'gemms': {(K, N): MACs}, 'attention_macs': n} of a fp32 ONNX graph at [1, SEQ]."""
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = onnx.load(str(onnx_path))
    for value in model.graph.input:
        for dim, size in zip(value.type.tensor_type.shape.dim, (1, SEQ), strict=False):
            dim.ClearField("dim_param")
            dim.dim_value = size
    model = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    values = list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    gemms: dict[tuple[int, int], int] = collections.Counter()
    attention = 0
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        a, b = shapes[node.input[0]], weights.get(node.input[1]) or shapes[node.input[1]]
        if node.op_type == "Gemm" and any(x.name == "transB" and x.i for x in node.attribute):
            b = b[::-1]
        batch = np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
        macs = int(np.prod(batch, dtype=np.int64)) * a[-2] * a[-1] * b[-1]
        if node.input[1] in weights:
            gemms[(b[-2], b[-1])] += macs
        else:
            attention += macs
    return {"gemms": dict(gemms), "attention_macs": attention}


def ort_probe(k: int, n: int, tmp: Path) -> dict[str, callable]:
    """{precision: make(threads) -> runner} for MatMulInteger and MatMul at [SEQ, k] x [k, n]."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    graphs = {}
    for precision, (in_type, w_type, op) in {
        "int8": (TensorProto.UINT8, np.int8, "MatMulInteger"),
        "fp32": (TensorProto.FLOAT, np.float32, "MatMul"),
    }.items():
        inits, nodes, outputs = [], [], []
        for i in range(WEIGHTS_PER_PROBE):
            w = rng.integers(-127, 128, (k, n)).astype(w_type)
            inits.append(numpy_helper.from_array(w, f"w{i}"))
            nodes.append(helper.make_node(op, ["x", f"w{i}"], [f"y{i}"]))
            out_type = TensorProto.INT32 if precision == "int8" else TensorProto.FLOAT
            outputs.append(helper.make_tensor_value_info(f"y{i}", out_type, [SEQ, n]))
        graph = helper.make_graph(
            nodes, op, [helper.make_tensor_value_info("x", in_type, [SEQ, k])], outputs, inits
        )
        path = tmp / f"{op}-{k}x{n}.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        x = rng.integers(0, 256, (SEQ, k)) if precision == "int8" else rng.random((SEQ, k))
        graphs[precision] = (path, x.astype(np.uint8 if precision == "int8" else np.float32))

    def make(threads: int) -> dict[str, callable]:
        runners = {}
        for precision, (path, x) in graphs.items():
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            binding = session.io_binding()
            binding.bind_cpu_input("x", x)
            dtype = np.int32 if precision == "int8" else np.float32
            for i in range(WEIGHTS_PER_PROBE):
                out = ort.OrtValue.ortvalue_from_numpy(np.empty((SEQ, n), dtype))
                binding.bind_ortvalue_output(f"y{i}", out)
            runners[precision] = lambda s=session, b=binding: s.run_with_iobinding(b)
        return runners

    return make


def litert_probe(k: int, n: int, tmp: Path) -> dict[str, callable]:
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe
    from int8_kernels import stack

    model, x = stack(k, n)
    fp32 = tmp / f"stack-{k}x{n}.tflite"
    litert_torch.convert(model, x).export(str(fp32))
    int8 = tmp / f"stack-{k}x{n}-int8.tflite"
    q = quantizer.Quantizer(str(fp32), recipe.dynamic_wi8_afp32()).quantize()
    q.export_model(str(int8), overwrite=True)
    data = x[0].numpy()

    def make(threads: int) -> dict[str, callable]:
        runners = {}
        for precision, path in (("fp32", fp32), ("int8-dynamic", int8)):
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
            index = interpreter.get_input_details()[0]["index"]
            interpreter.set_tensor(index, data)
            runners[precision] = interpreter.invoke
        return runners

    return make


PROBES = (  # (runtime, builder, how many [SEQ, K] x [K, N] GEMMs one run does)
    ("onnxruntime", ort_probe, WEIGHTS_PER_PROBE),
    ("executorch", executorch_runners, 8),  # int8_kernels.LAYERS: k -> n -> k -> ..., 4 each way
    ("litert", litert_probe, 8),
)


def timed_together(shapes, rows: list[dict], f: dict, runs: int, tmp: Path) -> tuple[dict, dict]:
    """Probe rates {(runtime, precision, threads): {(K, N): GOP/s}} and bundle p50s, each
    thread count's probes and bundles timed in one interleaved set, so that whatever else
    the machine does hits the limit and the bundles alike."""
    makers = []
    for k, n in sorted(shapes):
        for runtime, build, gemms in PROBES:
            folder = tmp / f"{runtime}-{k}x{n}"
            folder.mkdir()
            makers.append(((runtime, k, n, gemms * 2 * SEQ * k * n), build(k, n, folder)))
    rates: dict = collections.defaultdict(dict)
    for threads in THREADS:
        runners = {}
        for (runtime, k, n, ops), make in makers:
            for precision, fn in make(threads).items():
                runners[("probe", runtime, precision, k, n, ops)] = fn
        for i, r in enumerate(rows):
            runners[("bundle", i)] = session_runner(r["path"], f, threads)
        for key, p50 in interleaved_p50_ms(runners, runs).items():
            if key[0] == "bundle":
                rows[key[1]][f"p50_{threads}"] = p50
            else:
                _, runtime, precision, k, n, ops = key
                rates[(runtime, precision, threads)][(k, n)] = ops / p50 / 1e6
    return rates, rows


def mix_rate(rates: dict[tuple[int, int], float], gemms: dict[tuple[int, int], int]) -> float:
    """The rate a model made of only these GEMMs would run at: ops over the sum of times."""
    total = sum(gemms.values())
    return total / sum(macs / rates[shape] for shape, macs in gemms.items())


PROBE_FOR = {  # (bundle format, precision) -> (probe runtime, probe precision)
    ("onnx", "fp32"): ("onnxruntime", "fp32"),
    ("onnx", "int8-dynamic"): ("onnxruntime", "int8"),
    ("onnx", "int8-static"): ("onnxruntime", "int8"),
    ("optimum-onnx", "fp32"): ("onnxruntime", "fp32"),
    ("optimum-onnx", "int8-dynamic"): ("onnxruntime", "int8"),
    ("executorch", "fp32"): ("executorch", "fp32"),
    ("executorch", "int8-dynamic"): ("executorch", "int8-dynamic"),
    ("executorch", "int8-static"): ("executorch", "int8-static"),
    ("tflite", "fp32"): ("litert", "fp32"),
    ("tflite", "int8-dynamic"): ("litert", "int8-dynamic"),
    ("tflite", "int8-static"): ("executorch", "int8-static"),  # the same XNNPACK QS8 kernels
}


def bundles(root: Path) -> dict[str, list[dict]]:
    """{model: [{format, precision, path}]} of an export-matrix --out directory."""
    found: dict[str, list[dict]] = collections.defaultdict(list)
    for manifest in sorted(root.glob("bundles/*/*/manifest.json")):
        m = json.loads(manifest.read_text())
        found[manifest.parent.parent.name].append(
            {
                "format": m["format"],
                "precision": m["precision"],
                "path": manifest.parent / m["model_file"],
            }
        )
    for model in sorted(found):
        for precision, rel in (
            ("fp32", "fp32/model.onnx"),
            ("int8-dynamic", "int8/model_quantized.onnx"),
        ):
            path = root / "optimum" / model / rel
            if path.exists():
                found[model].append(
                    {"format": "optimum-onnx", "precision": precision, "path": path}
                )
    return dict(found)


def session_runner(path: Path, f: dict, threads: int):
    from pocketbert import runtimes

    session = runtimes.load(path, threads=threads)
    feeds = {**f, "token_type_ids": np.zeros_like(f["input_ids"])}
    feeds = {k: v for k, v in feeds.items() if k in session.input_names}
    return lambda: session.run(feeds)


def report_model(name: str, rows: list[dict], work: dict, runs: int) -> None:
    f = feed(rows[0]["path"].parent)
    f_all = {**f, "token_type_ids": np.zeros_like(f["input_ids"])}
    ops = 2 * (sum(work["gemms"].values()) + work["attention_macs"])
    with tempfile.TemporaryDirectory() as tmp:
        rates, rows = timed_together(work["gemms"], rows, f, runs, Path(tmp))
    attention = 2 * work["attention_macs"] / 1e9
    print(f"\n## {name}: {ops / 1e9:.2f} GOP per inference ({attention:.2f} in attention)")
    print(f"probes, GOP/s at [{SEQ}, K] x [K, N], batch 1:")
    keys = sorted(rates)
    print("| K x N | " + " | ".join(f"{rt} {p} {t}t" for rt, p, t in keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for shape in sorted(work["gemms"]):
        cells = " | ".join(f"{rates[k][shape]:.0f}" for k in keys)
        print(f"| {shape[0]}x{shape[1]} | {cells} |")
    best = {  # the best int8 probe of any runtime, per shape and thread count
        t: {
            s: max(rates[k][s] for k in keys if k[1] != "fp32" and k[2] == t) for s in work["gemms"]
        }
        for t in THREADS
    }
    print(
        "best int8 at this shape mix: "
        + ", ".join(f"{t}t {mix_rate(best[t], work['gemms']):.0f} GOP/s" for t in THREADS)
    )
    print("\nbundles:")
    print(
        "| bundle | p50 ms 1t | GOP/s 1t | of its probe 1t | of best int8 1t "
        "| p50 ms 2t | GOP/s 2t | of its probe 2t | of best int8 2t | " + " | ".join(CLASSES) + " |"
    )
    print("|---|" + "---:|" * (8 + len(CLASSES)))
    for r in rows:
        runtime, precision = PROBE_FOR[(r["format"], r["precision"])]
        cells = []
        for t in THREADS:
            achieved = ops / r[f"p50_{t}"] / 1e6
            own = mix_rate(rates[(runtime, precision, t)], work["gemms"])
            cells += [f"{r[f'p50_{t}']:.1f}", f"{achieved:.0f}", f"{achieved / own:.0%}"]
            cells.append(f"{achieved / mix_rate(best[t], work['gemms']):.0%}")
        fmt = "onnx" if r["format"] == "optimum-onnx" else r["format"]
        split = breakdown(fmt, r["path"], f_all, 1)
        shares = split.get("shares")
        cells += (
            [f"{shares[c]:.0%}" for c in CLASSES]
            if shares
            else [split["error"]] + [""] * (len(CLASSES) - 1)
        )
        print(f"| {r['format']} {r['precision']} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("matrix", help="an export_matrix.py --out directory")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--models", default=None, help="comma-separated subset of the models there")
    args = parser.parse_args()
    from pocketbert.profiler import hygiene

    start = time.perf_counter()
    snap = hygiene.snapshot()
    print(f"cpu: {snap['cpu_model']}, {snap['cores']} cores, {isa()}, load {snap['loadavg']}")
    found = bundles(Path(args.matrix))
    if args.models:
        found = {k: v for k, v in found.items() if k in args.models.split(",")}
    for name, rows in found.items():
        fp32 = next(r for r in rows if r["format"] == "onnx" and r["precision"] == "fp32")
        report_model(name, rows, matmul_work(fp32["path"]), args.runs)
    print(
        f"\n(one run, {time.perf_counter() - start:.0f} s; the time classes are each runtime's profiler at 1 thread)"
    )


if __name__ == "__main__":
    main()
