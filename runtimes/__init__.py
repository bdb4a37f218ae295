"""Load an exported model file and run it, with no torch in sight (the one exception:
ExecuTorch 1.5.1 runs .pte files only through torch; see runtimes/executorch.py).

sess = pocketbert.runtimes.load("model.onnx", threads=2)
outputs = sess.run({"input_ids": ids, "attention_mask": mask})
"""

from __future__ import annotations

from pathlib import Path

from pocketbert.core.errors import UserError, choices
from pocketbert.core.threads import check_threads
from pocketbert.runtimes import executorch, fpga, litert, ort  # noqa: F401  (registers runtimes)
from pocketbert.runtimes.registry import RUNTIMES, RuntimeInfo, Session, register_runtime

__all__ = ["RUNTIMES", "RuntimeInfo", "Session", "load", "register_runtime", "runtime_for"]


def runtime_for(path: str | Path) -> RuntimeInfo:
    """The registered runtime that loads files like ``path`` (chosen by suffix)."""
    suffix = Path(path).suffix
    for info in RUNTIMES.values():
        if info.suffix == suffix:
            return info
    raise UserError(
        f"no runtime loads '{suffix or Path(path).name}' files; "
        f"give a file ending in one of: {choices(i.suffix for i in RUNTIMES.values())}"
    )


def load(path: str | Path, *, threads: int | None = None, runtime: str | None = None) -> Session:
    """Open an exported model with the runtime its suffix (or ``runtime``) names."""
    path = Path(path)
    if runtime is not None and runtime not in RUNTIMES:
        raise UserError(f"unknown runtime '{runtime}'; choose one of: {choices(RUNTIMES)}")
    info = RUNTIMES[runtime] if runtime else runtime_for(path)
    check_threads(threads, "threads")
    if not path.is_file():
        raise UserError(f"model file '{path}' does not exist; give the path of an exported file")
    return info.load(path, threads=threads)
