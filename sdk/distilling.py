"""``pocketbert.distill``, ``pocketbert.finetune`` and ``pocketbert.propose_student``.

    import pocketbert
    pocketbert.finetune(pocketbert.examples.minilm_path(), "reviews.csv", "out/teacher", epochs=2)
    summary = pocketbert.distill("out/teacher", "reviews.csv", "out/student",
                                 student="squeezebert", size="small", loss={"kd": 1, "hidden": 1})

Each writes a transformers model directory (model, tokenizer, ``summary.json``) and returns
the summary. Torch is imported only when one of them is called.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from pocketbert.core.errors import UserError, choices

FAMILIES = ("bert", "mobilebert", "squeezebert")
LOSS_TERMS = ("ce", "kd", "hidden", "attention", "temperature")
DEFAULT_LOSS = {"ce": 1.0, "kd": 1.0, "hidden": 1.0, "attention": 1.0, "temperature": 2.0}


def parse_loss(spec: str | dict | None) -> dict[str, float]:
    """``"ce=1,kd=1,hidden=0.5"`` or a dict -> loss weights (terms not named are 0)."""
    if spec is None:
        return dict(DEFAULT_LOSS)
    if isinstance(spec, str):
        items = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            try:
                items[name.strip()] = float(value) if sep else 1.0
            except ValueError as exc:
                raise UserError(
                    f"loss term '{part}' is not NAME=NUMBER (e.g. kd=1,hidden=0.5)"
                ) from exc
        spec = items
    unknown = sorted(set(spec) - set(LOSS_TERMS))
    if unknown:
        raise UserError(
            f"unknown loss term(s) {', '.join(unknown)}; choose from: {choices(LOSS_TERMS)}"
        )
    return {"ce": 0.0, "kd": 0.0, "hidden": 0.0, "attention": 0.0, "temperature": 2.0, **spec}


def _spec(student: str | Path, size: str, knobs: dict[str, Any] | None):
    from pocketbert.converters.students import StudentSpec

    knobs = {k: v for k, v in (knobs or {}).items() if v is not None}
    valid = {f.name for f in fields(StudentSpec)} - {"family", "size"}
    unknown = sorted(set(knobs) - valid)
    if unknown:
        raise UserError(
            f"unknown student knob(s) {', '.join(unknown)}; choose from: {choices(valid)}"
        )
    if str(student) in FAMILIES:
        return StudentSpec(str(student), size, **knobs)
    if Path(student).is_dir():
        if knobs:
            raise UserError(
                "student knobs apply to a family (bert, mobilebert, squeezebert), not a model directory"
            )
        return str(student)
    raise UserError(
        f"unknown student '{student}'; choose one of: {choices(FAMILIES)}, or give a model directory"
    )


def propose_student(
    teacher: str | Path,
    student: str = "squeezebert",
    size: str = "small",
    knobs: dict[str, Any] | None = None,
) -> dict:
    """The student's config, parameters and FLOPs at seq 128 beside the teacher's; no training."""
    from pocketbert.converters.distill import load_classifier
    from pocketbert.converters.model import load_model
    from pocketbert.converters.students import StudentSpec, build_student, describe, student_config

    spec = _spec(student, size, knobs)
    if not isinstance(spec, StudentSpec):
        raise UserError("propose_student needs a student family, not a model directory")
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


def distill(
    teacher: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    student: str | Path = "squeezebert",
    size: str = "small",
    knobs: dict[str, Any] | None = None,
    loss: str | dict | None = None,
    two_stage: bool | None = None,
    stage1_epochs: int | None = None,
    unlabelled: str | Path | None = None,
    augment: int = 0,
    cache_dir: str | Path | None = None,
    init_from_teacher: bool = True,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 1e-4,
    max_seq_len: int = 128,
    seed: int = 0,
    checkpoint_every: int = 200,
    text_column: str | None = None,
    label_column: str | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> dict:
    """Distill a fine-tuned ``teacher`` on labelled ``data`` into a student directory ``out``.

    ``student``: a family (squeezebert, mobilebert, bert) or a model directory sharing the
    teacher's tokenizer; ``knobs``: layers, hidden, heads, intermediate, groups,
    bottleneck, embedding, ffns, no_norm; ``loss``: weights of ce, kd, hidden, attention
    and the temperature; ``two_stage``: TinyBERT's stages, hidden states and attention maps
    for ``stage1_epochs`` (default: half), then labels and logits (None: two stages when the
    loss has terms of both kinds); ``augment``: variants of each training sentence with
    words swapped for their neighbours in the teacher's embeddings, labelled by the teacher;
    ``cache_dir``: where the teacher's logits are kept for reuse by other students on the
    same text (only logits are cached: epochs with a hidden or attention term run the
    teacher live). Returns the summary also written to ``out/summary.json``.
    """
    from pocketbert.converters.distill import DistillConfig, run_distill
    from pocketbert.converters.distill_loss import LossWeights
    from pocketbert.converters.train_loop import TrainConfig

    config = DistillConfig(
        student=_spec(student, size, knobs),
        loss=LossWeights(**parse_loss(loss)),
        train=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            max_seq_len=max_seq_len,
            seed=seed,
            checkpoint_every=checkpoint_every,
        ),
        two_stage=two_stage,
        stage1_epochs=stage1_epochs,
        unlabelled=str(unlabelled) if unlabelled else None,
        augment=augment,
        cache_dir=str(cache_dir) if cache_dir else None,
        init_from_teacher=init_from_teacher,
    )
    return run_distill(
        teacher,
        data,
        out,
        config,
        text_column=text_column,
        label_column=label_column,
        resume=resume,
        quiet=quiet,
    )


def finetune(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 5e-5,
    max_seq_len: int = 128,
    seed: int = 0,
    checkpoint_every: int = 200,
    text_column: str | None = None,
    label_column: str | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> dict:
    """Fine-tune a pretrained encoder (or classifier) on labelled ``data`` into a classifier at ``out``."""
    from pocketbert.converters.finetune import run_finetune
    from pocketbert.converters.train_loop import TrainConfig

    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        max_seq_len=max_seq_len,
        seed=seed,
        checkpoint_every=checkpoint_every,
    )
    return run_finetune(
        model,
        data,
        out,
        config,
        text_column=text_column,
        label_column=label_column,
        resume=resume,
        quiet=quiet,
    )
