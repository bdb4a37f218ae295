"""ExecuTorch: loads ``.pte`` files with executorch's C++ runtime (XNNPACK + portable kernels).

The one exception to "no torch": executorch==1.5.1 has no torch-free way to run a .pte
from Python. Its pybindings extension (``executorch.extension.pybindings._C``) links
against libtorch and takes and returns torch tensors only (numpy arrays, memoryviews and
other buffers are refused: "Unsupported python type"); the torch-free
``executorch-numpy-runtime`` wheel needs Python >= 3.12. What this module avoids is the
rest: ``executorch.runtime`` and ``portable_lib`` import ``executorch.exir`` (the
exporter, torch.export and friends), which more than doubles the cost of a load (here
~15 s and 360 MB against ~5 s and 225 MB for torch plus the extension alone). So it
imports torch (which the extension needs to make tensors) and the extension directly,
wraps numpy feeds zero-copy (``from_numpy``) and unwraps the outputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import numpy as np

from pocketbert.core.errors import UserError, first_line
from pocketbert.core.progress import native_output_to
from pocketbert.runtimes.registry import register_runtime
from pocketbert.runtimes.tensors import cast_feeds, open_model, require, run_by_rows

_INSTALL = "executorch==1.5.1"
_EXTENSION = "executorch.extension.pybindings._C"
# ExecuTorch ScalarType codes (c10 numbering) of the dtypes our models take.
_DTYPES = {3: np.int32, 4: np.int64, 6: np.float32}
_INPUT_NAMES = ["input_ids", "attention_mask"]  # the order every pocketbert .pte takes


class ExecuTorchSession:
    def __init__(self, program, method, torch: ModuleType) -> None:
        self._program = program  # keeps the program alive as long as its method
        self._method = method
        self._torch = torch
        meta = method.method_meta()
        if meta.num_inputs() != len(_INPUT_NAMES):
            raise UserError(
                f"the program takes {meta.num_inputs()} inputs; a pocketbert .pte takes "
                f"{len(_INPUT_NAMES)}: {', '.join(_INPUT_NAMES)}"
            )
        self.input_names = list(_INPUT_NAMES)
        infos = [meta.input_tensor_meta(i) for i in range(meta.num_inputs())]
        self.input_dtypes = {
            n: _DTYPES.get(i.dtype(), np.int64)
            for n, i in zip(self.input_names, infos, strict=True)
        }
        self.input_shape = tuple(infos[0].sizes())  # the upper bound for dynamic files

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        feeds = cast_feeds(feeds, self.input_names, self.input_dtypes)
        return run_by_rows(self._run, feeds, self.input_shape[0])

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        shape = feeds[self.input_names[0]].shape
        if len(shape) != len(self.input_shape) or any(
            s > m for s, m in zip(shape, self.input_shape, strict=True)
        ):
            raise UserError(
                f"inputs of shape {list(shape)} do not fit this program; it takes at most "
                f"{list(self.input_shape)} (static-shape files take exactly that)"
            )
        tensors = [self._torch.from_numpy(feeds[n]) for n in self.input_names]
        try:
            outputs = self._method(tensors)
        except RuntimeError as exc:
            if tuple(shape) == self.input_shape:
                raise  # the program's own shape failed: not the input's fault
            raise UserError(
                f"ExecuTorch could not run inputs of shape {list(shape)} "
                f"({first_line(exc, 'execution failed')}); this may be a static-shape file, "
                f"which takes exactly {list(self.input_shape)}"
            ) from exc
        return [np.asarray(o.numpy(), dtype=np.float32) for o in outputs]


@register_runtime(
    "executorch",
    suffix=".pte",
    module="executorch",
    install=_INSTALL,
    imports=("torch", _EXTENSION),
)
def load(path: Path, *, threads: int | None = None) -> ExecuTorchSession:
    require("executorch", _INSTALL)
    devnull = Path(os.devnull)
    with native_output_to(devnull):  # cpuinfo probes and missing optional kernels, from C++
        torch = require("torch", _INSTALL)  # the extension links libtorch and makes tensors
        ext = require(_EXTENSION, _INSTALL)
        if threads:
            ext._unsafe_reset_threadpool(int(threads))  # must precede load_method
        ext._threadpool_get_thread_count()  # the threadpool's cpuinfo lines, now not later
        program = open_model(
            path,
            "ExecuTorch",
            lambda: ext._load_program(
                str(path), program_verification=ext.Verification.InternalConsistency
            ),
            not_a_model=(RuntimeError,),  # raised by the flatbuffer/header checks only
            magic=b"ET12",
        )
        method = program.load_method("forward")
    return ExecuTorchSession(program, method, torch)
