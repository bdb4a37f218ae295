"""The training loop shared by fine-tuning and distillation.

HF Accelerate places the model and data (one CPU, one GPU, or many under
``accelerate launch``). Checkpoints go to ``<work>/checkpoints/step-N`` (written whole,
then named in ``latest``). Dropout is seeded from (seed, step) at every step and the
batch order from (seed, epoch), so a run resumed from any checkpoint ends with the same
weights as one that never stopped. Every epoch is scored on the validation split and the
best one is kept (``best_epoch``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from pocketbert.converters import best_epoch
from pocketbert.converters.batches import Example, LengthBatches, collate, encode
from pocketbert.converters.checkpoints import Checkpoints
from pocketbert.converters.distill_loss import DistillLoss, LossWeights
from pocketbert.converters.pointwise_conv import einsum_pointwise
from pocketbert.converters.teacher_cache import TEACHER_LOGITS, with_teacher_logits
from pocketbert.converters.train_config import TrainConfig

__all__ = ["TrainConfig", "collate", "encode", "train"]
from pocketbert.core import defaults
from pocketbert.core.errors import UserError, first_line
from pocketbert.core.metrics import class_scores
from pocketbert.core.progress import progress_bar


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one row per epoch
    seconds: float = 0.0
    examples_per_s: float = 0.0
    best_epoch: int | None = None  # the epoch whose weights the model ends with (None: the last)
    stopped_early: bool = False


class Trainee(nn.Module):
    """The student and the loss's own parameters, trained (and checkpointed) together."""

    def __init__(self, student: nn.Module, loss: DistillLoss) -> None:
        super().__init__()
        self.student, self.loss = student, loss

    def forward(self, batch: dict[str, torch.Tensor], teacher_out, w: LossWeights):
        out = self.student(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            output_hidden_states=w.hidden > 0,
            output_attentions=w.attention > 0,
        )
        return self.loss(out, teacher_out, batch["labels"], batch["attention_mask"], w)


def _adamw(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """AdamW, fused where the device has the kernel: on a CPU the per-tensor loop over a
    30k-word embedding table costs ~10x the fused step and dominates a small student's step."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except RuntimeError:
        return torch.optim.AdamW(groups, lr=lr)


def _accelerator():
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # a loss term switched off (or a two-stage schedule) leaves some parameters without gradients
    return Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


@torch.no_grad()
def predictions(
    model: nn.Module, examples: list[Example], batch_size: int = 128, accelerator=None
) -> tuple[list[int], list[int]]:
    """(predicted, true) class ids of ``model`` (a sequence classifier) on labelled examples."""
    accelerator = accelerator or _accelerator()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))  # little padding
    loader = accelerator.prepare(
        DataLoader([examples[i] for i in order], batch_size=batch_size, collate_fn=collate)
    )
    was_training = model.training
    model.eval()
    predicted, true = [], []
    for batch in loader:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        pred, gold = accelerator.gather_for_metrics((logits.argmax(-1), batch["labels"]))
        predicted += pred.tolist()
        true += gold.tolist()
    model.train(was_training)
    return predicted, true


@dataclass
class _Run:
    """What one training run holds between its steps (see ``train``)."""

    accelerator: Any
    trainee: Any  # the prepared Trainee
    teacher: nn.Module | None
    optimizer: Any
    scheduler: Any
    loader: Any
    sampler: LengthBatches
    val_set: list[Example]
    cfg: TrainConfig
    state: dict = field(default_factory=dict)
    started: float = 0.0


def _fresh_state() -> dict:
    return {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "history": [],
        "seconds": 0.0,
        "examples": 0,
        "ema": None,
        "best": None,  # {"epoch", "score"} of the best epoch so far (best_epoch)
        "stopped": False,  # early stopping ended the run
    }


def _param_groups(trainee: nn.Module, weight_decay: float) -> list[dict]:
    no_decay = ("bias", "LayerNorm.weight", "layernorm.weight", "NoNorm")
    named = [(n, p) for n, p in trainee.named_parameters() if p.requires_grad]
    return [
        {
            "params": [p for n, p in named if not any(k in n for k in no_decay)],
            "weight_decay": weight_decay,
        },
        {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]


def _setup(
    student: nn.Module,
    teacher: nn.Module | None,
    train_set: list[Example],
    val_set: list[Example],
    schedule: list[LossWeights],
    cfg: TrainConfig,
    work: Path,
    layer_map: list[int] | None,
    teacher_cache: Path | None,
    quiet: bool,
    say: Callable[[str], None],
) -> _Run:
    """The loss, the teacher's cached logits, the batches, the optimizer and its schedule."""
    from accelerate.utils import set_seed
    from transformers import get_linear_schedule_with_warmup

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    accelerator = _accelerator()
    set_seed(cfg.seed)
    t_hidden = teacher.config.hidden_size if teacher is not None else student.config.hidden_size
    scores = tuple(
        m is not None and m.config.model_type == "squeezebert" for m in (student, teacher)
    )
    loss = DistillLoss(
        student.config.hidden_size,
        t_hidden,
        layer_map or list(range(student.config.num_hidden_layers)),
        scores=scores,
        projections=any(w.hidden > 0 for w in schedule),
    )
    trainee = Trainee(student, loss)
    if teacher is not None:
        teacher = teacher.to(accelerator.device).eval()
        teacher.requires_grad_(False)
        # Epochs that take only logits from the teacher read them from one pass over the
        # data; epochs that need its hidden states or attention run it live.
        if any(w.needs_teacher and not w.needs_internals for w in schedule):
            say(f"teacher: logits for {len(train_set)} training examples, computed once")
            path = teacher_cache or work / TEACHER_LOGITS
            train_set = with_teacher_logits(
                teacher, train_set, path, accelerator.device, quiet, say
            )
    sampler = LengthBatches(
        [len(ex[0]) for ex in train_set],
        cfg.batch_size,
        cfg.seed,
        drop_last=len(train_set) > cfg.batch_size,
    )
    loader = DataLoader(
        train_set, batch_sampler=sampler, collate_fn=collate, generator=torch.Generator()
    )
    lr = cfg.lr if cfg.lr is not None else _default_lr(teacher)
    optimizer = _adamw(_param_groups(trainee, cfg.weight_decay), lr)
    # counted before sharding: Accelerate steps the scheduler once per process per step
    schedule_steps = len(loader) * len(schedule)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(cfg.warmup * schedule_steps), schedule_steps
    )
    trainee, optimizer, loader, scheduler = accelerator.prepare(
        trainee, optimizer, loader, scheduler
    )
    return _Run(accelerator, trainee, teacher, optimizer, scheduler, loader, sampler, val_set, cfg)


def _select_by(cfg: TrainConfig) -> str:
    return cfg.select_by or "accuracy"


def _default_lr(teacher: nn.Module | None) -> float:
    return defaults.DISTILL_LR if teacher is not None else defaults.FINETUNE_LR


def _restore(run: _Run, ckpts: Checkpoints, resume: bool, say: Callable[[str], None]) -> None:
    """Start from the newest checkpoint when resuming, else from step 0."""
    run.state = _fresh_state()
    if not resume or (latest := ckpts.latest()) is None:
        return
    try:
        run.accelerator.load_state(str(latest))
        state = json.loads((latest / "trainer_state.json").read_text())
        missing = set(_fresh_state()) - set(state)
        if missing:
            raise ValueError(f"trainer_state.json lacks {', '.join(sorted(missing))}")
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint fails in many ways
        raise UserError(
            f"the checkpoint '{latest}' is damaged and cannot be resumed ({first_line(exc)}); "
            f"run without --resume to start over (or delete '{ckpts.root.parent}')"
        ) from exc
    run.state = state
    say(f"resuming from {latest.name} (epoch {state['epoch'] + 1}, step {state['global_step']})")


def _step(run: _Run, batch: dict[str, torch.Tensor], w: LossWeights) -> float:
    """One optimizer step on ``batch`` with the loss weights ``w``; returns the loss."""
    from accelerate.utils import set_seed

    set_seed(run.cfg.seed * 1_000_003 + run.state["global_step"], device_specific=True)
    teacher_out = None
    cached = batch.pop("teacher_logits", None)
    if cached is not None and not w.needs_internals:
        teacher_out = SimpleNamespace(logits=cached)
    elif run.teacher is not None and w.needs_teacher:
        with torch.no_grad():
            teacher_out = run.teacher(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                output_hidden_states=w.hidden > 0,
                output_attentions=w.attention > 0,
            )
    value, _parts = run.trainee(batch, teacher_out, w)
    run.accelerator.backward(value)
    run.accelerator.clip_grad_norm_(run.trainee.parameters(), 1.0)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    state = run.state
    state["global_step"] += 1
    state["examples"] += int(batch["input_ids"].shape[0]) * run.accelerator.num_processes
    loss = float(value.detach())
    state["ema"] = loss if state["ema"] is None else 0.9 * state["ema"] + 0.1 * loss
    return loss


def _end_epoch(run: _Run, epoch: int, w: LossWeights, work: Path) -> tuple[dict, str]:
    """Score ``epoch`` on the validation split and keep it if it is the best so far.

    Returns the history row (also added to the state) and a note for the epoch's line.
    """
    student = run.accelerator.unwrap_model(run.trainee).student
    pred, true = predictions(student, run.val_set, run.cfg.eval_batch_size, run.accelerator)
    scores = class_scores(pred, true, student.config.num_labels)
    row = {
        "epoch": epoch + 1,
        "loss": round(run.state["ema"] or 0.0, 5),
        "val_accuracy": round(scores["accuracy"], 5),
        "val_macro_f1": round(scores["macro_f1"], 5),
    }
    note = ""
    if not best_epoch.trains_classifier(w):
        row["stage"] = 1
        note = " (stage 1: the classifier is not trained yet)"
    elif run.val_set and best_epoch.consider(
        run.state, row, _select_by(run.cfg), student, work, run.accelerator
    ):
        note = " (best so far)"
    run.state["history"].append(row)
    return row, note


def train(
    student: nn.Module,
    teacher: nn.Module | None,
    train_set: list[Example],
    val_set: list[Example],
    schedule: list[LossWeights],
    cfg: TrainConfig,
    work: Path,
    *,
    layer_map: list[int] | None = None,
    teacher_cache: Path | None = None,
    resume: bool = False,
    quiet: bool = False,
    say: Callable[[str], None] = print,
) -> TrainResult:
    """Train ``student`` in place on ``train_set``; one LossWeights per epoch in ``schedule``.

    When a stage takes only logits from the teacher, they are computed once and kept at
    ``teacher_cache`` (default: in ``work``); stages that need its hidden states or
    attention run it live.
    """
    run = _setup(
        student,
        teacher,
        train_set,
        val_set,
        schedule,
        cfg,
        work,
        layer_map,
        teacher_cache,
        quiet,
        say,
    )
    ckpts = Checkpoints(work)
    _restore(run, ckpts, resume, say)
    state, accelerator = run.state, run.accelerator
    steps_per_epoch = len(run.loader)
    epochs = len(schedule)
    bar = progress_bar(
        total=steps_per_epoch * epochs,
        initial=state["global_step"],
        disable=quiet or not accelerator.is_local_main_process,
        unit="step",
    )
    started = time.perf_counter() - state["seconds"]
    # SqueezeBERT's pointwise convolutions train as einsums; restored even if training fails
    with einsum_pointwise(accelerator.unwrap_model(run.trainee).student):
        for epoch in range(state["epoch"], epochs):
            if state["stopped"]:
                break
            run.sampler.epoch = epoch
            run.trainee.train()
            skip = state["step_in_epoch"]
            batches = accelerator.skip_first_batches(run.loader, skip) if skip else run.loader
            for step_in_epoch, batch in enumerate(batches, start=skip):
                _step(run, batch, schedule[epoch])
                elapsed = time.perf_counter() - started
                bar.set_postfix(
                    epoch=epoch + 1,
                    loss=f"{state['ema']:.4f}",
                    ex_s=f"{state['examples'] / max(elapsed, 1e-9):.0f}",
                )
                bar.update(1)
                if (
                    cfg.checkpoint_every
                    and state["global_step"] % cfg.checkpoint_every == 0
                    and step_in_epoch + 1 < steps_per_epoch
                ):
                    state.update(epoch=epoch, step_in_epoch=step_in_epoch + 1, seconds=elapsed)
                    ckpts.save(accelerator, state)
            row, note = _end_epoch(run, epoch, schedule[epoch], work)
            state["stopped"] = epoch + 1 < epochs and best_epoch.should_stop(
                state, epoch + 1, cfg.patience
            )
            bar.clear()  # the epoch's line goes above the bar
            say(
                f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f}, validation accuracy "
                f"{row['val_accuracy']:.2%}, macro-F1 {row['val_macro_f1']:.3f}{note}"
                + (
                    f"; stopping: {cfg.patience} epochs without a better validation "
                    f"{defaults.SCORE_NAMES[_select_by(cfg)]}"
                    if state["stopped"]
                    else ""
                )
            )
            bar.refresh()
            state.update(epoch=epoch + 1, step_in_epoch=0, seconds=time.perf_counter() - started)
            ckpts.save(accelerator, state)
    bar.close()
    student = accelerator.unwrap_model(run.trainee).student
    best = best_epoch.restore_best(state, student, work, accelerator)
    if best is not None and best != state["history"][-1]["epoch"]:
        say(f"kept epoch {best}, the best on the validation split")
    seconds = time.perf_counter() - started
    return TrainResult(
        state["history"],
        seconds,
        state["examples"] / max(seconds, 1e-9),
        best_epoch=best,
        stopped_early=state["stopped"],
    )
