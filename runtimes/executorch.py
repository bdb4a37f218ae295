"""ExecuTorch: loads ``.pte`` files with executorch's Python runtime (XNNPACK + portable kernels).

That runtime takes and returns torch tensors, never numpy arrays, and loads torch itself
(the pybindings link against libtorch). This module never brings torch in on its own:
after ``executorch.runtime`` is loaded, the torch module that executorch loaded is
taken from ``sys.modules`` to wrap numpy feeds (zero-copy ``from_numpy``) and unwrap
outputs. (The torch-free ``executorch-numpy-runtime`` wheel needs Python >= 3.12.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from pocketbert.core.errors import UserError, first_line
from pocketbert.core.progress import native_output_to
from pocketbert.runtimes.registry import register_runtime
from pocketbert.runtimes.tensors import cast_feeds, require

_INSTALL = "executorch==1.5.1"
# ExecuTorch ScalarType codes (c10 numbering) of the dtypes our models take.
_DTYPES = {3: np.int32, 4: np.int64, 6: np.float32}
_INPUT_NAMES = ["input_ids", "attention_mask"]  # the order every pocketbert .pte takes


def _bad_file(path: Path, exc: Exception) -> UserError:
    first = first_line(exc)
    return UserError(
        f"'{path}' is not a loadable ExecuTorch program ({first}); "
        "give a .pte written by pocketbert export --format executorch"
    )


class ExecuTorchSession:
    def __init__(self, program, method, torch: ModuleType) -> None:
        self._program = program  # keeps the program alive as long as its method
        self._method = method
        self._torch = torch
        meta = method.metadata
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
            outputs = self._method.execute(tensors)
        except RuntimeError as exc:
            first = first_line(exc, "execution failed")
            raise UserError(
                f"ExecuTorch could not run inputs of shape {list(shape)} ({first}); "
                f"static-shape files take exactly {list(self.input_shape)}"
            ) from exc
        return [np.asarray(o.numpy(), dtype=np.float32) for o in outputs]


@register_runtime(
    "executorch",
    suffix=".pte",
    module="executorch",
    install=_INSTALL,
    imports=("executorch.runtime", "executorch.extension.pybindings.portable_lib"),
)
def load(path: Path, *, threads: int | None = None) -> ExecuTorchSession:
    require("executorch", _INSTALL)
    with native_output_to(Path(os.devnull)):  # optional CUDA kernels missing, cpuinfo probes
        runtime_mod = require("executorch.runtime", _INSTALL)
        from executorch.extension.pybindings import portable_lib

    torch = sys.modules["torch"]  # already loaded by executorch's pybindings
    if threads:
        with native_output_to(Path(os.devnull)):  # cpuinfo prints probe failures from C++
            portable_lib._unsafe_reset_threadpool(int(threads))  # must precede load_method
    try:
        program = runtime_mod.Runtime.get().load_program(Path(path))
        method = program.load_method("forward")
    except (RuntimeError, ValueError, KeyError) as exc:
        raise _bad_file(Path(path), exc) from exc
    return ExecuTorchSession(program, method, torch)
