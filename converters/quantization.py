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
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from typing import ClassVar, Protocol

from pocketbert.core.errors import UserError, choices

# A gate never fails on this many differing rows or fewer. On a small set 2-3 flips are
# noise, not a verdict: with 64 rows and a true flip rate of 2%, 2 or more flips happen
# 37% of the time, so a 98% gate that fails on the second flip fails a good file every
# third run. Below NOISE_ROWS / slack rows (150 at 98%; 300 for a 1-point accuracy drop)
# the bound widens to NOISE_ROWS rows and the parity record says the set was too small to
# judge at the bound itself.
NOISE_ROWS = 3
NEAR_TIE_MARGIN = 0.1  # fp32 top-2 softmax gap below which a row's argmax is a coin toss


@dataclass(frozen=True)
class Tolerance:
    """One parity-gate rule: ``metric`` must be at most (or at least) ``bound``.

    ``rows``: the figure counting the rows ``metric`` is a fraction of (None: the metric is
    not a count of rows, e.g. a max |diff|); with it the bound is read in rows and never
    below ``NOISE_ROWS`` rows.
    """

    metric: str  # a key of verify.parity's figures
    bound: float
    at_most: bool
    rows: str | None = None

    @property
    def rule(self) -> str:
        rule = f"{self.metric} {'<=' if self.at_most else '>='} {self.bound:g}"
        if self.rows:
            rule += f" over {self.rows.replace('_', ' ')}, {NOISE_ROWS} rows always allowed"
        return rule

    def slack(self) -> float:
        """The fraction of rows the bound lets go: 0.02 for agreement >= 0.98."""
        return self.bound if self.at_most else 1.0 - self.bound

    def allowed(self, rows: int) -> int:
        """Rows that may count against the file out of ``rows`` (never below NOISE_ROWS)."""
        return max(math.floor(self.slack() * rows + 1e-9), NOISE_ROWS)

    def judged_rows(self) -> int | None:
        """The fewest rows at which the bound itself, not NOISE_ROWS, decides (None: never,
        a bound with no slack is always read as NOISE_ROWS rows)."""
        return math.ceil(NOISE_ROWS / self.slack() - 1e-9) if self.slack() > 0 else None

    def against(self, value: float | None, rows: int) -> int:
        """Rows counting against the file: differing rows, or net rows of accuracy lost."""
        if value is None:
            return 0
        return round((value if self.at_most else 1.0 - value) * rows)

    def passes(self, value: float | None, rows: int | None = None) -> bool:
        if rows is not None:
            return self.against(value, rows) <= self.allowed(rows)
        return value <= self.bound if self.at_most else value >= self.bound

    def failure(self, value: float | None, rows: int | None = None) -> str:
        """``argmax_agreement 0.94 < 0.98``: the figure against the bound it missed."""
        shown = "n/a" if value is None else f"{value:.4g}"
        line = f"{self.metric} {shown} {'>' if self.at_most else '<'} {self.bound:g}"
        if rows is not None:
            what = (self.rows or "rows").replace("_", " ")
            line += f": {self.against(value, rows)} of {rows} {what} against it, "
            line += f"{self.allowed(rows)} allowed"
        return line


class Precision(Protocol):
    name: ClassVar[str]  # the --precision string and the manifest's "precision"
    quantized: ClassVar[bool]
    calibration_samples: int  # calibration sentences the export needs (0: none)
    near_tie_margin: float  # verify.parity's near-tie rows: fp32 top-2 gap below this

    def tolerance(self, task: str, labelled: bool = False) -> Tolerance: ...

    def fallbacks(self) -> tuple[Precision, ...]: ...


def _fraction(owner: object, field: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise UserError(f"{type(owner).__name__}.{field} is {value!r}; give a number in 0..1")


@dataclass(frozen=True)
class _Int8Gate:
    """The int8 gate: keep the answers (classifiers) or the direction (embeddings).

    A classifier verified on labelled rows must keep its accuracy: at most
    ``max_accuracy_drop`` (absolute) below the torch fp32 model's on the same rows.
    Without labels its argmax must agree with fp32's on ``min_argmax_agreement`` of the
    decisive rows: those whose fp32 top-2 softmax gap is at least ``near_tie_margin`` (on a
    near tie either answer is the model's; a flip there says nothing about quantization).
    """

    min_argmax_agreement: float = 0.98
    min_mean_cosine: float = 0.98
    max_accuracy_drop: float = 0.01
    near_tie_margin: float = NEAR_TIE_MARGIN

    def __post_init__(self) -> None:
        for name in ("min_argmax_agreement", "min_mean_cosine", "max_accuracy_drop"):
            _fraction(self, name, getattr(self, name))
        _fraction(self, "near_tie_margin", self.near_tie_margin)

    def tolerance(self, task: str, labelled: bool = False) -> Tolerance:
        if task != "classification":
            return Tolerance("mean_cosine", self.min_mean_cosine, at_most=False)
        if labelled:
            return Tolerance("accuracy_drop", self.max_accuracy_drop, True, "labelled_rows")
        return Tolerance("decisive_agreement", self.min_argmax_agreement, False, "decisive_rows")

    def gate_fields(self) -> dict:
        """The gate's bounds, carried over to a fallback recipe."""
        return {f.name: getattr(self, f.name) for f in fields(_Int8Gate)}


@dataclass(frozen=True)
class Fp32:
    """No quantization: the exported file must reproduce torch's outputs."""

    name: ClassVar[str] = "fp32"
    quantized: ClassVar[bool] = False
    calibration_samples: ClassVar[int] = 0
    near_tie_margin: ClassVar[float] = NEAR_TIE_MARGIN  # figures only: fp32 is judged by diff
    max_abs_diff: float = 1e-4

    def __post_init__(self) -> None:
        ok = isinstance(self.max_abs_diff, int | float) and math.isfinite(self.max_abs_diff)
        if not ok or self.max_abs_diff < 0:
            raise UserError(f"Fp32.max_abs_diff is {self.max_abs_diff!r}; give a number >= 0")

    def tolerance(self, task: str, labelled: bool = False) -> Tolerance:
        return Tolerance("max_abs_diff", self.max_abs_diff, at_most=True)

    def fallbacks(self) -> tuple[Precision, ...]:
        return ()  # fp32 is the reference itself: nothing to fall back to


EMBEDDING_BITS = (8, 4)
INT4_TABLE_FORMATS = ("onnx",)  # onnxruntime's GatherBlockQuantized reads int4 tables


@dataclass(frozen=True)
class Int8Dynamic(_Int8Gate):
    """int8 weights (per channel, embedding tables too), activations quantized per run.

    ``embedding_bits`` 4: the embedding tables as int4 in blocks of 32 with one fp32 scale
    each (about half the int8 table's bytes), where a format reads them (ONNX); the
    Linears stay int8.
    """

    name: ClassVar[str] = "int8-dynamic"
    quantized: ClassVar[bool] = True
    calibration_samples: ClassVar[int] = 0
    embedding_bits: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.embedding_bits not in EMBEDDING_BITS or isinstance(self.embedding_bits, bool):
            raise UserError(
                f"Int8Dynamic.embedding_bits is {self.embedding_bits!r}; give one of: "
                f"{choices(map(str, EMBEDDING_BITS))}"
            )

    def formats_only(self) -> tuple[str, ...] | None:
        """The formats that can write this recipe (None: every format that handles it)."""
        return INT4_TABLE_FORMATS if self.embedding_bits == 4 else None

    def fallbacks(self) -> tuple[Precision, ...]:
        # the last int8 recipe: fp32 would ship a file 4x the size the user asked for
        return ()


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

    def fallbacks(self) -> tuple[Precision, ...]:
        """Recipes to try, in order, when this one misses its gate: more layers dynamic
        (the outlier layers), then every layer dynamic (int8-dynamic), same gate bounds."""
        more_dynamic = () if self.dynamic_outliers else (replace(self, dynamic_outliers=True),)
        return (*more_dynamic, Int8Dynamic(**self.gate_fields()))


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


def describe(config: Precision) -> str:
    """``int8-static (dynamic_outliers=False)``: the name and the recipe fields (not the
    gate's bounds) that differ from the name's default."""
    default = type(config)()
    gate = {f.name for f in fields(_Int8Gate)}
    changed = [
        f"{f.name}={getattr(config, f.name)!r}"
        for f in fields(config)
        if f.name not in gate and getattr(config, f.name) != getattr(default, f.name)
    ]
    return f"{config.name} ({', '.join(changed)})" if changed else config.name


def config_dict(config: Precision) -> dict:
    """The manifest's ``quantization`` record: the config's type and its fields."""
    return {"type": type(config).__name__, **asdict(config)}
