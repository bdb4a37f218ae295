"""int8 against fp32 at the kernel level: what each runtime's int8 matmuls gain on this CPU.

A stack of 8 Linear layers (alternating in -> out -> in features, batch 1, seq 128) for
each matmul shape found in the export-matrix models, run through

- ExecuTorch + XNNPACK (TFLite/LiteRT runs the same XNNPACK kernels): fp32, int8-dynamic
  (XNNPACK quantizer, dynamic activations: QD8 x QC8W GEMMs) and int8-static (calibrated
  activations: QS8 x QC8W GEMMs);
- onnxruntime: fp32, int8-dynamic (quantize_dynamic) and int8-static (quantize_static,
  QDQ, u8 activations, each MatMul and its bias folded into one MatMulIntegerToFloat, as
  our exporter writes it).

Nothing but matmuls and bias adds, so the ratios are the ceiling of what int8 can gain
over fp32 in that runtime on this machine, for a whole model made of these shapes.

    python benchmarks/int8_kernels.py [--runs N]

Needs: pip install -e '.[convert]'
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import warnings
from itertools import pairwise
from pathlib import Path

import numpy as np

from pocketbert.profiler.hygiene import isa  # noqa: F401  (the other benchmarks import it from here)

sys.path.insert(0, str(Path(__file__).parent))
from export_matrix import interleaved_p50_ms  # noqa: E402

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

SEQ, LAYERS = 128, 8
SHAPES = {  # name: (in, out) features
    "squeezebert q/k/v group (96 -> 96)": (96, 96),
    "squeezebert ffn group (96 <-> 384)": (96, 384),
    "mobilebert bottleneck (128 <-> 512)": (128, 512),
    "minilm attention (384 -> 384)": (384, 384),
    "minilm ffn (384 <-> 1536)": (384, 1536),
}
PRECISIONS = ("fp32", "int8-dynamic", "int8-static")


def stack(cin: int, cout: int):
    import torch
    from torch import nn

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dims = [cin if i % 2 == 0 else cout for i in range(LAYERS + 1)]
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(dims))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    torch.manual_seed(0)
    return Stack().eval(), (torch.randn(1, SEQ, cin),)


def executorch_runners(cin: int, cout: int, tmp: Path) -> dict[str, callable]:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from executorch.exir import to_edge_transform_and_lower
    from executorch.extension.pybindings import portable_lib
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    paths = {}
    for precision in PRECISIONS:
        model, x = stack(cin, cout)
        if precision != "fp32":
            config = get_symmetric_quantization_config(
                is_per_channel=True, is_dynamic=precision == "int8-dynamic"
            )
            prepared = prepare_pt2e(
                torch.export.export(model, x).module(), XNNPACKQuantizer().set_global(config)
            )
            prepared(*x)
            model = convert_pt2e(prepared)
        edge = to_edge_transform_and_lower(
            torch.export.export(model, x), partitioner=[XnnpackPartitioner()]
        )
        paths[precision] = tmp / f"{precision}.pte"
        paths[precision].write_bytes(edge.to_executorch().buffer)

    def make(threads: int) -> dict[str, callable]:
        portable_lib._unsafe_reset_threadpool(threads)
        inputs = [torch.randn(1, SEQ, cin)]
        modules = {p: portable_lib._load_for_executorch(str(f)) for p, f in paths.items()}
        return {p: (lambda m=m: m.forward(inputs)) for p, m in modules.items()}

    return make


def onnxruntime_runners(cin: int, cout: int, tmp: Path) -> dict[str, callable]:
    import onnx
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    from pocketbert.converters.onnx_fusion import fold_static_matmul_bias

    model, x = stack(cin, cout)
    fp32 = tmp / "fp32.onnx"
    torch.onnx.export(
        model,
        x,
        str(fp32),
        input_names=["x"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={"x": {1: "seq"}},
    )
    paths = {"fp32": fp32, "int8-dynamic": tmp / "dynamic.onnx", "int8-static": tmp / "static.onnx"}
    quantize_dynamic(fp32, paths["int8-dynamic"], weight_type=QuantType.QInt8, per_channel=True)

    class Calibration:
        def __init__(self) -> None:
            self.feeds = iter([{"x": np.random.randn(1, SEQ, cin).astype(np.float32)}] * 8)

        def get_next(self):
            return next(self.feeds, None)

    quantize_static(
        fp32,
        paths["int8-static"],
        Calibration(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]},
    )
    static = onnx.load(str(paths["int8-static"]))
    fold_static_matmul_bias(static)
    onnx.save(static, str(paths["int8-static"]))
    feed = {"x": np.random.randn(1, SEQ, cin).astype(np.float32)}

    def make(threads: int) -> dict[str, callable]:
        runners = {}
        for precision, path in paths.items():
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            runners[precision] = lambda s=session: s.run(None, feed)
        return runners

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="timed runs per row")
    args = parser.parse_args()
    from pocketbert.profiler import hygiene

    snap = hygiene.snapshot()
    print(f"cpu: {snap['cpu_model']}, {snap['cores']} cores, load {snap['loadavg']}, {isa()}")
    print(f"python {platform.python_version()}; batch 1, seq {SEQ}; {LAYERS} layers per stack")
    print("| shape | runtime | threads | fp32 ms | int8-dynamic ms | int8-static ms |")
    print("|---|---|---:|---:|---:|---:|")
    for name, (cin, cout) in SHAPES.items():
        for runtime, build in (
            ("executorch/xnnpack", executorch_runners),
            ("onnxruntime", onnxruntime_runners),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                make = build(cin, cout, Path(tmp))
                for threads in (1, 2):
                    p50 = interleaved_p50_ms(make(threads), args.runs)
                    cells = [f"{p50['fp32']:.3f}"] + [
                        f"{p50[p]:.3f} ({p50['fp32'] / p50[p]:.2f}x)" for p in PRECISIONS[1:]
                    ]
                    print(f"| {name} | {runtime} | {threads} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
