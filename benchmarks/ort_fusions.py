"""onnxruntime's SkipLayerNormalization fusion: the fused kernel against the two ops it
replaces, and whole bundles with the fusion on (onnxruntime's default) and off (how
pocketbert's runtime opens every ONNX bundle: runtimes/ort.py, DISABLED_FUSIONS).

    python benchmarks/ort_fusions.py [BUNDLE ...] [--runs 300] [--seq 12,128]

Without BUNDLE arguments it exports the real all-MiniLM-L6-v2 encoder (DATA.md) as an
int8-dynamic ONNX bundle into a temporary directory and times that. Each pair of sessions
is timed in interleaved rounds at 1 thread, batch 1; ratios within this run only; prints
the CPU and its ISA.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from int8_kernels import isa  # noqa: E402
from predict_latency import cpu_model  # noqa: E402

warnings.filterwarnings("ignore")


def _layer_norm_graphs(hidden: int) -> dict[str, bytes]:
    """{"fused": SkipLayerNormalization, "unfused": Add + LayerNormalization} on [1, s, hidden]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.random(hidden, dtype=np.float32), n) for n in "gb"]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, "s", hidden]) for n in "xr"]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    nodes = {
        "fused": [
            helper.make_node(
                "SkipLayerNormalization",
                ["x", "r", "g", "b"],
                ["y"],
                domain="com.microsoft",
                epsilon=1e-12,
            )
        ],
        "unfused": [
            helper.make_node("Add", ["x", "r"], ["a"]),
            helper.make_node("LayerNormalization", ["a", "g", "b"], ["y"], epsilon=1e-12),
        ],
    }
    graphs = {}
    for name, ops in nodes.items():
        model = helper.make_model(
            helper.make_graph(ops, name, io, out, inits),
            opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        )
        model.ir_version = 8
        graphs[name] = model.SerializeToString()
    return graphs


def _interleaved_p50_us(runners: dict[str, callable], runs: int) -> dict[str, float]:
    samples = {k: [] for k in runners}
    for fn in runners.values():
        for _ in range(20):
            fn()
    for _ in range(runs // 10):
        for name, fn in runners.items():
            for _ in range(10):
                start = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - start) * 1e6)
    return {k: statistics.median(v) for k, v in samples.items()}


def kernel_table(seqs: list[int], runs: int) -> None:
    from pocketbert.runtimes.ort import open_session, session_options

    print("\n## the kernel alone (graph optimizations off), 1 thread")
    print("| tokens x hidden | SkipLayerNormalization us | Add + LayerNormalization us | ratio |")
    print("|---|---:|---:|---:|")
    import onnxruntime as ort

    for hidden in (384, 768):
        graphs = _layer_norm_graphs(hidden)
        for seq in seqs:
            rng = np.random.default_rng(1)
            feeds = {n: rng.random((1, seq, hidden), dtype=np.float32) for n in "xr"}
            runners = {}
            for name, graph in graphs.items():
                opts = session_options(1, ())
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                session = open_session(graph, opts)
                runners[name] = lambda s=session, f=feeds: s.run(None, f)
            p50 = _interleaved_p50_us(runners, runs)
            print(
                f"| {seq} x {hidden} | {p50['fused']:.1f} | {p50['unfused']:.1f} | "
                f"{p50['fused'] / p50['unfused']:.2f}x |"
            )


def bundle_table(bundles: list[Path], seqs: list[int], runs: int) -> None:
    from pocketbert.runtimes.ort import DISABLED_FUSIONS, open_session, session_options

    print(
        f"\n## whole bundles, 1 thread: onnxruntime's defaults vs {', '.join(DISABLED_FUSIONS)} off"
    )
    print("| bundle | tokens | fused ms | unfused ms | speed-up | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|")
    for bundle in bundles:
        model = bundle / "model.onnx"
        sessions = {
            "fused": open_session(model, session_options(1, ())),
            "unfused": open_session(model, session_options(1)),
        }
        names = [i.name for i in sessions["fused"].get_inputs()]
        for seq in seqs:
            rng = np.random.default_rng(2)
            ids = rng.integers(1000, 2000, (1, seq)).astype(np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            feeds["token_type_ids"] = np.zeros_like(ids)
            feeds = {k: v for k, v in feeds.items() if k in names}
            outs = {k: s.run(None, feeds)[0] for k, s in sessions.items()}
            diff = float(np.abs(outs["fused"] - outs["unfused"]).max())
            runners = {k: (lambda s=s, f=feeds: s.run(None, f)) for k, s in sessions.items()}
            p50 = _interleaved_p50_us(runners, max(30, runs * 12 // seq))
            print(
                f"| {bundle.name} | {seq} | {p50['fused'] / 1e3:.3f} | {p50['unfused'] / 1e3:.3f} | "
                f"{p50['fused'] / p50['unfused']:.2f}x | {diff:.1e} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bundles", nargs="*", type=Path, help="ONNX bundle directories")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--seq", default="12,128", help="comma-separated token counts")
    args = parser.parse_args()
    seqs = [int(s) for s in args.seq.split(",")]
    import onnxruntime

    print(f"cpu: {cpu_model()}, {isa()}; onnxruntime {onnxruntime.__version__}")
    kernel_table(seqs, args.runs)
    bundles = list(args.bundles)
    if not bundles:
        import pocketbert
        from pocketbert.examples import minilm_path

        out = Path(tempfile.mkdtemp(prefix="pocketbert-fusions-")) / "minilm-int8-dynamic"
        pocketbert.export(minilm_path(), out, format="onnx", precision="int8-dynamic", quiet=True)
        bundles = [out]
    bundle_table(bundles, seqs, args.runs)


if __name__ == "__main__":
    main()
