"""pocketbert: BERT-family models on phones, boards and FPGAs, verified and measured.

    import pocketbert
    pocketbert.export("my-model", "out/bundle", format="onnx", precision="int8-dynamic")
    pocketbert.load("out/bundle").predict(["a fine film"])

Each verb takes the thing it works on plus one options object (or its fields as keyword
arguments). Importing pocketbert loads neither torch nor transformers nor a runtime; each
verb imports what it needs when it is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbert.core.errors import UserError
from pocketbert.training import (
    DistillOptions,
    FinetuneOptions,
    distill,
    finetune,
    propose_student,
)

if TYPE_CHECKING:
    from pocketbert.exporter import Result
    from pocketbert.predict import Predictor
    from pocketbert.profiler.run import Options as ProfileOptions

__version__ = "0.1.0"


class _Default:
    """An argument left out: the verb's own module supplies its default."""

    def __repr__(self) -> str:
        return "<default>"


DEFAULT: Any = _Default()


def _given(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not DEFAULT}


def export(
    model: str | Path,
    out: str | Path,
    *,
    format: str | list[str] = DEFAULT,
    precision: str | list[str] = DEFAULT,
    task: str | None = DEFAULT,
    calibration: str | Path | list[str] | None = DEFAULT,
    eval: str | Path | None = DEFAULT,
    max_seq_len: int = DEFAULT,
    allow_parity_failure: bool = DEFAULT,
    quiet: bool = DEFAULT,
    **options: Any,
) -> list[Result]:
    """Export a model to verified bundles; see :func:`pocketbert.exporter.export`.

    Defaults (format onnx, precision fp32, max_seq_len 128, ...) are the exporter's.
    """
    from pocketbert.exporter import export as _export

    given = _given(
        format=format,
        precision=precision,
        task=task,
        calibration=calibration,
        eval=eval,
        max_seq_len=max_seq_len,
        allow_parity_failure=allow_parity_failure,
        quiet=quiet,
    )
    return _export(model, out, **given, **options)


def load(bundle: str | Path, *, threads: int | None = DEFAULT, **options: Any) -> Predictor:
    """Load a bundle (directory or .zip) for prediction; see :func:`pocketbert.predict.load`."""
    from pocketbert.predict import load as _load

    return _load(bundle, **_given(threads=threads), **options)


def profile(
    bundles: list[str | Path],
    devices: list[str],
    *,
    options: ProfileOptions | None = DEFAULT,
    store: str | Path | None = DEFAULT,
    catalog: str | Path | None = DEFAULT,
    quiet: bool = DEFAULT,
    **fields: Any,
) -> list[dict]:
    """Measure (or estimate) bundles on devices; see :func:`pocketbert.profiler.run.profile`.

    ``fields``: the profiler's Options fields (runs, warmup, threads, seq_lens, ...).
    """
    from pocketbert.profiler.run import profile as _profile

    given = _given(options=options, store=store, catalog=catalog, quiet=quiet)
    return _profile(bundles, devices, **given, **fields)


def build(
    recipe: str | Path | None = None,
    *,
    work: str | Path = DEFAULT,
    dry_run: bool = DEFAULT,
    quiet: bool = DEFAULT,
) -> dict:
    """Run a build recipe (default: the packaged one); see :func:`pocketbert.pipeline.build`.

    Returns the report: ``devices`` (the pick per device, with its budget margins),
    ``bundles``, ``warnings``, and the ``report_html`` / ``report_json`` paths.
    """
    from pocketbert.pipeline import build as _build

    return _build(recipe, **_given(work=work, dry_run=dry_run, quiet=quiet))


__all__ = [
    "DistillOptions",
    "FinetuneOptions",
    "UserError",
    "__version__",
    "build",
    "distill",
    "export",
    "finetune",
    "load",
    "profile",
    "propose_student",
]
