"""The exporter registry: one dict, one decorator.

An exporter module registers one function with the precision configs it handles; the
registry picks the handler for the spec's config and hands it to the function:

    @register_exporter(
        "onnx", suffix=".onnx", runtime="onnxruntime",
        handles={Fp32: _fp32, Int8Dynamic: _int8_dynamic, Int8Static: _int8_static},
    )
    def export(model, spec, out, handler) -> Exported: ...

The handler's signature is the exporter's own business (a quantization step of its
format); dispatch is ``handles[type(spec.precision)]``, never a test of a name. The
decorator gives back the dispatching ``export(model, spec, out)``.

``rewrites(config, module) -> dict`` (optional) names the ``export_ready`` options a
recipe of this format needs against the default rewrites (``{}``: the default module).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pocketbert.core.errors import UserError, choices

EXPORTERS: dict[str, ExporterInfo] = {}


def _no_rewrites(config, module) -> dict:
    return {}


@dataclass(frozen=True)
class ExporterInfo:
    name: str
    suffix: str
    runtime: str  # the pocketbert.runtimes name that loads this format's files
    fn: Callable
    handles: Mapping[type, Callable]  # precision config type -> this format's handler
    rewrites: Callable[[object, object], dict] = _no_rewrites

    def handler(self, config) -> Callable:
        try:
            handler = self.handles[type(config)]
        except KeyError:
            names = choices(getattr(c, "name", c.__name__) for c in self.handles)
            raise UserError(
                f"format {self.name} does not export {getattr(config, 'name', config)!r}; "
                f"choose one of: {names}"
            ) from None
        only = getattr(config, "formats_only", lambda: None)()
        if only and self.name not in only:  # a recipe field only some formats can write
            from pocketbert.converters.quantization import describe

            raise UserError(
                f"format {self.name} cannot write {describe(config)}: only {', '.join(only)} "
                f"can; export it as --format {' '.join(only)}, or leave that field at its default"
            )
        return handler

    def export(self, model, spec, out):
        """Write ``model`` as this format at ``out`` with the spec's precision config."""
        return self.fn(model, spec, out, self.handler(spec.precision))


def register_exporter(
    name: str,
    *,
    suffix: str,
    runtime: str,
    handles: Mapping[type, Callable],
    rewrites: Callable[[object, object], dict] = _no_rewrites,
):
    if not handles:
        raise ValueError(f"exporter {name} handles no precision config")

    def decorator(fn: Callable) -> Callable:
        info = ExporterInfo(name, suffix, runtime, fn, MappingProxyType(dict(handles)), rewrites)
        EXPORTERS[name] = info
        return functools.wraps(fn)(lambda model, spec, out: info.export(model, spec, out))

    return decorator
