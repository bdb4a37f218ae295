"""The runtime registry: one dict, one decorator.

A runtime module defines ``load(path, **opts) -> Session`` where ``Session.run(feeds)``
takes a dict of numpy arrays and returns a list of numpy arrays (float32, first one
is the model's output). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    suffix: str  # the file suffix this runtime loads, e.g. ".onnx"
    module: str  # the Python package the runtime needs, for error messages
    install: str  # what to pip install on a device that lacks it
    load: Callable[..., Session]
    imports: tuple[str, ...] = ()  # the modules a session imports (default: ``module``)
    fallback: tuple[str, ...] = ()  # what it imports instead when ``module`` is absent

    def needed_imports(self) -> tuple[str, ...]:
        """The modules a session of this runtime imports on this machine."""
        from importlib.util import find_spec

        if self.fallback and find_spec(self.module) is None:
            return self.fallback
        return self.imports or (self.module,)


class Session(Protocol):
    input_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


RUNTIMES: dict[str, RuntimeInfo] = {}


def register_runtime(
    name: str,
    *,
    suffix: str,
    module: str,
    install: str,
    imports: tuple[str, ...] = (),
    fallback: tuple[str, ...] = (),
):
    """Register ``load`` of a runtime module under ``name`` for files ending in ``suffix``."""

    def decorator(load: Callable[..., Session]) -> Callable[..., Session]:
        RUNTIMES[name] = RuntimeInfo(name, suffix, module, install, load, imports, fallback)
        return load

    return decorator
