"""Precisions as config objects, and the one table that names them.

A precision is a frozen dataclass validated on construction. It carries its own parity
gate (``tolerance``), so the gate reads its bound from the config. Each exporter lists
in its registry entry (``converters.registry``) the config types it handles.

    from pocketbert.converters.quantization import Int8Static, precision_config
    precision_config("int8-static") == Int8Static()
    pocketbert.export(model, "out", precision=Int8Static(calibration_samples=64))

This module imports neither torch nor numpy: the CLI and ``pocketbert.verify`` use it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, is_dataclass
from typing import ClassVar, Protocol

from pocketbert.core.errors import UserError, choices


@dataclass(frozen=True)
class Tolerance:
    """One parity-gate rule: ``metric`` must be at most (or at least) ``bound``."""

    metric: str  # a key of verify.parity's figures
    bound: float
    at_most: bool

    @property
    def rule(self) -> str:
        return f"{self.metric} {'<=' if self.at_most else '>='} {self.bound:g}"

    def passes(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound

    def failure(self, value: float) -> str:
        """``argmax_agreement 0.94 < 0.98``: the figure against the bound it missed."""
        return f"{self.metric} {value:.4g} {'>' if self.at_most else '<'} {self.bound:g}"


class Precision(Protocol):
    name: ClassVar[str]  # the --precision string and the manifest's "precision"
    quantized: ClassVar[bool]
    calibration_samples: int  # calibration sentences the export needs (0: none)

    def tolerance(self, task: str) -> Tolerance: ...


def _fraction(owner: object, field: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise UserError(f"{type(owner).__name__}.{field} is {value!r}; give a number in 0..1")


@dataclass(frozen=True)
class _Int8Gate:
    """The int8 gate: keep the answers (classifiers) or the direction (embeddings)."""

    min_argmax_agreement: float = 0.98
    min_mean_cosine: float = 0.98

    def __post_init__(self) -> None:
        _fraction(self, "min_argmax_agreement", self.min_argmax_agreement)
        _fraction(self, "min_mean_cosine", self.min_mean_cosine)

    def tolerance(self, task: str) -> Tolerance:
        if task == "classification":
            return Tolerance("argmax_agreement", self.min_argmax_agreement, at_most=False)
        return Tolerance("mean_cosine", self.min_mean_cosine, at_most=False)


@dataclass(frozen=True)
class Fp32:
    """No quantization: the exported file must reproduce torch's outputs."""

    name: ClassVar[str] = "fp32"
    quantized: ClassVar[bool] = False
    calibration_samples: ClassVar[int] = 0
    max_abs_diff: float = 1e-4

    def __post_init__(self) -> None:
        ok = isinstance(self.max_abs_diff, int | float) and math.isfinite(self.max_abs_diff)
        if not ok or self.max_abs_diff < 0:
            raise UserError(f"Fp32.max_abs_diff is {self.max_abs_diff!r}; give a number >= 0")

    def tolerance(self, task: str) -> Tolerance:
        return Tolerance("max_abs_diff", self.max_abs_diff, at_most=True)


@dataclass(frozen=True)
class Int8Dynamic(_Int8Gate):
    """int8 weights (per channel, embedding tables too), activations quantized per run."""

    name: ClassVar[str] = "int8-dynamic"
    quantized: ClassVar[bool] = True
    calibration_samples: ClassVar[int] = 0


@dataclass(frozen=True)
class Int8Static(_Int8Gate):
    """int8 weights and int8 activations calibrated on ``calibration_samples`` sentences.

    ``dynamic_outliers``: layers whose inputs carry outliers a calibrated int8 range would
    clip take dynamic activations instead: the FFN down-projections (ONNX, ExecuTorch)
    or the fully connected layers whose calibrated range passes 32 (TFLite). False
    calibrates every layer (MiniLM cosine 0.92 on ExecuTorch; see the exporters).
    """

    name: ClassVar[str] = "int8-static"
    quantized: ClassVar[bool] = True
    calibration_samples: int = 128
    dynamic_outliers: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.calibration_samples
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100_000:
            raise UserError(f"Int8Static.calibration_samples is {n!r}; give a whole number >= 1")
        if not isinstance(self.dynamic_outliers, bool):
            raise UserError(
                f"Int8Static.dynamic_outliers is {self.dynamic_outliers!r}; give True or False"
            )


# The one table: --precision names -> config types (their defaults are the recipes).
PRECISIONS: dict[str, type] = {c.name: c for c in (Fp32, Int8Dynamic, Int8Static)}


def precision_config(name: str) -> Precision:
    """The default config for a ``--precision`` name; UserError listing the choices."""
    if name not in PRECISIONS:
        raise UserError(
            f"unknown precision '{name}'; choose one of: {choices([*PRECISIONS, 'all'])}"
        )
    return PRECISIONS[name]()


def as_config(precision: str | Precision) -> Precision:
    """A name or a config object -> a config object."""
    if isinstance(precision, str):
        return precision_config(precision)
    if not (
        is_dataclass(precision) and hasattr(precision, "name") and hasattr(precision, "tolerance")
    ):
        raise UserError(
            f"precision {precision!r} is not a precision config; give one of: "
            f"{choices(PRECISIONS)} or {', '.join(c.__name__ for c in PRECISIONS.values())}()"
        )
    return precision


def config_dict(config: Precision) -> dict:
    """The manifest's ``quantization`` record: the config's type and its fields."""
    return {"type": type(config).__name__, **asdict(config)}
