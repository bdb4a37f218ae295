"""The exporter registry: one dict, one decorator.

An exporter module defines ``export(model, spec, out) -> Exported`` and registers it:

    @register_exporter("onnx", suffix=".onnx", runtime="onnxruntime")
    def export(model, spec, out): ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

EXPORTERS: dict[str, ExporterInfo] = {}


@dataclass(frozen=True)
class ExporterInfo:
    name: str
    suffix: str
    runtime: str  # the pocketbert.runtimes name that loads this format's files
    export: Callable


def register_exporter(name: str, *, suffix: str, runtime: str):
    def decorator(fn: Callable) -> Callable:
        EXPORTERS[name] = ExporterInfo(name, suffix, runtime, fn)
        return fn

    return decorator
