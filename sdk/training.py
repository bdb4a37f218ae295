"""``pocketbert.finetune``, ``pocketbert.distill`` and ``pocketbert.propose_student``.

    import pocketbert
    pocketbert.finetune(pocketbert.examples.minilm_path(), "reviews.csv", "out/teacher")
    summary = pocketbert.distill("out/teacher", "reviews.csv", "out/student",
                                 pocketbert.DistillOptions(student="squeezebert", loss="kd=1,hidden=1"))

Each verb takes what it works on plus one options object (:class:`FinetuneOptions`,
:class:`DistillOptions`); keyword arguments are the same fields and build (or override) it.
The CLI builds the same objects from its flags. Each writes a transformers model directory
(model, tokenizer, ``summary.json``) and returns the summary. Options are checked when made,
without torch; torch is imported only when a verb runs. Settings left None (epochs, the
learning rate, the first stage's length, the augmented transfer set) are chosen from the
data by the rule in ``pocketbert.core.defaults``; a value given always wins.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from pocketbert.core.errors import UserError, choices
from pocketbert.student_budget import AUTO
from pocketbert.training_options import (  # noqa: F401 (the public names live here too)
    DEFAULT_LOSS,
    FAMILIES,
    KNOBS,
    LOSS_TERMS,
    SIZES,
    DistillOptions,
    FinetuneOptions,
    TrainOptions,
    parse_loss,
)

Opts = TypeVar("Opts", bound=TrainOptions)


def make_options(cls: type[Opts], options: Opts | None, overrides: dict[str, Any]) -> Opts:
    """``options`` (or the defaults) with ``overrides`` applied; unknown names are a UserError."""
    if options is not None and not isinstance(options, cls):
        raise UserError(f"options must be a {cls.__name__}, not {type(options).__name__}")
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise UserError(
            f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; choose from: {choices(valid)}"
        )
    return dataclasses.replace(options, **overrides) if options is not None else cls(**overrides)


def with_options_signature(cls: type[TrainOptions]) -> Callable[[Callable], Callable]:
    """Show ``cls``'s fields as keyword parameters in the verb's signature (help(), IDEs)."""

    def decorate(func: Callable) -> Callable:
        own = [
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        hints = {f.name: f.type for f in fields(cls)}
        extra = [
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name]
            )
            for f in fields(cls)
        ]
        func.__signature__ = inspect.Signature(
            own + extra, return_annotation=inspect.signature(func).return_annotation
        )
        return func

    return decorate


def propose_student(
    teacher: str | Path,
    student: str = "squeezebert",
    size: str = "small",
    knobs: dict[str, Any] | None = None,
) -> dict:
    """The student's config, parameters and FLOPs at seq 128 beside the teacher's; no training."""
    if size == AUTO:
        raise UserError(
            "--size auto chooses the student while distilling; give a size to --dry-run"
        )
    spec = DistillOptions(student=student, size=size, knobs=knobs).student_spec()
    if isinstance(spec, str):
        raise UserError("propose_student needs a student family, not a model directory")
    from pocketbert.converters.distill import load_classifier
    from pocketbert.converters.model import load_model
    from pocketbert.converters.students import build_student, describe, student_config

    try:
        model = load_classifier(teacher)[0]
    except UserError:  # a pretrained encoder: sizes are still worth showing
        model = load_model(teacher, task="embedding").module.model
    config = student_config(model.config, spec)
    return {
        "family": spec.family,
        "config": config.to_diff_dict(),
        "student": describe(build_student(None, config)),
        "teacher": describe(model),
    }


@with_options_signature(DistillOptions)
def distill(
    teacher: str | Path,
    data: str | Path,
    out: str | Path,
    options: DistillOptions | None = None,
    **overrides: Any,
) -> dict:
    """Distill a fine-tuned ``teacher`` on labelled ``data`` into a student directory ``out``.

    ``options``: a :class:`DistillOptions`; keyword arguments are its fields (and override
    it). Returns the summary also written to ``out/summary.json``.
    """
    opts = make_options(DistillOptions, options, overrides)
    from pocketbert.converters.distill import run_distill

    return run_distill(teacher, data, out, opts.distill_config(), **opts.run_options())


@with_options_signature(FinetuneOptions)
def finetune(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    options: FinetuneOptions | None = None,
    **overrides: Any,
) -> dict:
    """Fine-tune a pretrained encoder (or classifier) on labelled ``data`` into a classifier at ``out``.

    ``options``: a :class:`FinetuneOptions`; keyword arguments are its fields (and override
    it). Returns the summary also written to ``out/summary.json``.
    """
    opts = make_options(FinetuneOptions, options, overrides)
    from pocketbert.converters.finetune import run_finetune

    return run_finetune(model, data, out, opts.train_config(), **opts.run_options())
