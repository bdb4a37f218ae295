"""Run inside the emulated board's Python: load a bundle with pocketbert's own torch-free
code, run texts through it, save the outputs. ``python -m pocketbert.boards.child BUNDLE
TEXTS.json OUT.npy FAULT.txt`` prints one JSON line: the interpreter and the runtime it used.

This module imports only what a board has (numpy, tokenizers, the runtime).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import platform
import sys


def main(argv: list[str]) -> int:
    bundle, texts_file, out_file, fault_file = argv
    import faulthandler

    fault = open(fault_file, "w")  # noqa: SIM115 (open until the process ends)
    faulthandler.enable(fault)  # a crash inside the runtime says where (fd 2 may be muted)
    import numpy as np

    from pocketbert.predict import load

    with open(texts_file, encoding="utf-8") as fh:
        texts = json.load(fh)
    with load(bundle, threads=1) as predictor:
        outputs = predictor.outputs(texts)
        module = type(predictor.session).__module__
    with open(out_file + ".partial", "wb") as fh:
        np.save(fh, outputs)
    import os

    os.replace(out_file + ".partial", out_file)
    runtimes = {}
    for dist in ("onnxruntime", "ai-edge-litert", "tflite-runtime", "executorch", "tokenizers"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            runtimes[dist] = importlib.metadata.version(dist)
    loaded = [m for m in ("ai_edge_litert", "tflite_runtime", "onnxruntime") if m in sys.modules]
    print(
        json.dumps(
            {
                "machine": platform.machine(),
                "python": platform.python_version(),
                "numpy": np.__version__,
                "installed": runtimes,
                "runtime_modules": loaded,
                "adapter": module,
                "torch_loaded": "torch" in sys.modules,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
