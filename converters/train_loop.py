"""The training loop shared by fine-tuning and distillation.

HF Accelerate places the model and data (one CPU, one GPU, or many under
``accelerate launch``). Checkpoints go to ``<work>/checkpoints/step-N`` (written whole,
then named in ``latest``). Dropout is seeded from (seed, step) at every step and the
batch order from (seed, epoch), so a run resumed from any checkpoint ends with the same
weights as one that never stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from pocketbert.converters.checkpoints import Checkpoints
from pocketbert.converters.distill_loss import DistillLoss, LossWeights
from pocketbert.converters.pointwise_conv import einsum_pointwise
from pocketbert.converters.teacher_cache import TEACHER_LOGITS, Example, with_teacher_logits
from pocketbert.core.errors import UserError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.06  # fraction of all steps
    max_seq_len: int = 128
    seed: int = 0
    checkpoint_every: int = 200  # optimizer steps (and always at the end of an epoch)
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise UserError(
                f"epochs ({self.epochs}) and batch size ({self.batch_size}) must be >= 1"
            )
        if not 8 <= self.max_seq_len <= 4096:
            raise UserError(
                f"max sequence length {self.max_seq_len} is out of range; give 8 to 4096"
            )
        if not 0 < self.lr < 1:
            raise UserError(f"learning rate {self.lr} is out of range; give e.g. 5e-5")


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one row per epoch
    seconds: float = 0.0
    examples_per_s: float = 0.0


def encode(tokenizer, texts: list[str], labels: list[int], max_len: int) -> list[Example]:
    ids = tokenizer(texts, truncation=True, max_length=max_len)["input_ids"]
    return list(zip(ids, labels, strict=True))


def collate(batch: list[Example], pad_id: int = 0) -> dict[str, torch.Tensor]:
    width = max(len(ex[0]) for ex in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, *_) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
    labels = torch.tensor([ex[1] for ex in batch], dtype=torch.long)
    out = {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
    if len(batch[0]) > 2:  # the teacher's logits, computed once before training
        out["teacher_logits"] = torch.stack([ex[2] for ex in batch])
    return out


class LengthBatches(Sampler[list[int]]):
    """Batches of similar-length examples (little padding) in an order set by (seed, epoch).

    Shuffle, cut into chunks of 50 batches, sort each chunk by length, batch it, shuffle
    the batches. Set ``epoch`` before iterating.
    """

    CHUNK = 50

    def __init__(self, lengths: list[int], batch_size: int, seed: int, drop_last: bool) -> None:
        self.lengths, self.batch_size, self.seed, self.drop_last = (
            lengths,
            batch_size,
            seed,
            drop_last,
        )
        self.epoch = 0

    def _sizes(self) -> list[int]:
        n, chunk = len(self.lengths), self.batch_size * self.CHUNK
        sizes = []
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            sizes += [self.batch_size] * (m // self.batch_size)
            if m % self.batch_size and not self.drop_last:
                sizes.append(m % self.batch_size)
        return sizes

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(len(self.lengths), generator=g).tolist()
        chunk, bs = self.batch_size * self.CHUNK, self.batch_size
        batches = []
        for start in range(0, len(perm), chunk):
            part = sorted(perm[start : start + chunk], key=lambda i: self.lengths[i])
            batches += [
                b
                for k in range(0, len(part), bs)
                if len(b := part[k : k + bs]) == bs or not self.drop_last
            ]
        order = torch.randperm(len(batches), generator=g).tolist()
        return iter([batches[i] for i in order])

    def __len__(self) -> int:
        return len(self._sizes())


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
def evaluate(
    model: nn.Module, examples: list[Example], batch_size: int = 128, accelerator=None
) -> float:
    """Accuracy of ``model`` (a sequence classifier) on labelled examples."""
    accelerator = accelerator or _accelerator()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))  # little padding
    loader = accelerator.prepare(
        DataLoader([examples[i] for i in order], batch_size=batch_size, collate_fn=collate)
    )
    was_training = model.training
    model.eval()
    correct = total = 0
    for batch in loader:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        pred, gold = accelerator.gather_for_metrics((logits.argmax(-1), batch["labels"]))
        correct += int((pred == gold).sum())
        total += int(gold.numel())
    model.train(was_training)
    return correct / max(total, 1)


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
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

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
            train_set = with_teacher_logits(teacher, train_set, path, accelerator.device, quiet)
    sampler = LengthBatches(
        [len(ex[0]) for ex in train_set],
        cfg.batch_size,
        cfg.seed,
        drop_last=len(train_set) > cfg.batch_size,
    )
    loader = DataLoader(
        train_set, batch_sampler=sampler, collate_fn=collate, generator=torch.Generator()
    )
    no_decay = ("bias", "LayerNorm.weight", "layernorm.weight", "NoNorm")
    groups = [
        {
            "params": [
                p for n, p in trainee.named_parameters() if not any(k in n for k in no_decay)
            ],
            "weight_decay": cfg.weight_decay,
        },
        {
            "params": [p for n, p in trainee.named_parameters() if any(k in n for k in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = _adamw(groups, cfg.lr)
    # counted before sharding: Accelerate steps the scheduler once per process per step
    schedule_steps = len(loader) * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(cfg.warmup * schedule_steps), schedule_steps
    )
    trainee, optimizer, loader, scheduler = accelerator.prepare(
        trainee, optimizer, loader, scheduler
    )
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * cfg.epochs

    ckpts = Checkpoints(work)
    state = {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "history": [],
        "seconds": 0.0,
        "examples": 0,
        "ema": None,
    }
    if resume and (latest := ckpts.latest()) is not None:
        accelerator.load_state(str(latest))
        state = json.loads((latest / "trainer_state.json").read_text())
        say(
            f"resuming from {latest.name} (epoch {state['epoch'] + 1}, step {state['global_step']})"
        )

    bar = tqdm(
        total=total_steps,
        initial=state["global_step"],
        disable=quiet or not accelerator.is_local_main_process,
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
    started = time.perf_counter() - state["seconds"]

    def note(message: str) -> None:  # a line above the progress bar
        bar.clear()
        say(message)
        bar.refresh()

    # SqueezeBERT's pointwise convolutions train as einsums; restored even if training fails
    with einsum_pointwise(accelerator.unwrap_model(trainee).student):
        for epoch in range(state["epoch"], cfg.epochs):
            w = schedule[epoch]
            sampler.epoch = epoch
            trainee.train()
            skip = state["step_in_epoch"]
            batches = accelerator.skip_first_batches(loader, skip) if skip else loader
            for step_in_epoch, batch in enumerate(batches, start=skip):
                set_seed(cfg.seed * 1_000_003 + state["global_step"], device_specific=True)
                teacher_out = None
                cached = batch.pop("teacher_logits", None)
                if cached is not None and not w.needs_internals:
                    teacher_out = SimpleNamespace(logits=cached)
                elif teacher is not None and w.needs_teacher:
                    with torch.no_grad():
                        teacher_out = teacher(
                            input_ids=batch["input_ids"],
                            attention_mask=batch["attention_mask"],
                            output_hidden_states=w.hidden > 0,
                            output_attentions=w.attention > 0,
                        )
                value, _parts = trainee(batch, teacher_out, w)
                accelerator.backward(value)
                accelerator.clip_grad_norm_(trainee.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state["global_step"] += 1
                state["examples"] += int(batch["input_ids"].shape[0]) * accelerator.num_processes
                ema = state["ema"]
                state["ema"] = ema = (
                    float(value.detach())
                    if ema is None
                    else 0.9 * ema + 0.1 * float(value.detach())
                )
                elapsed = time.perf_counter() - started
                bar.set_postfix(
                    epoch=epoch + 1,
                    loss=f"{ema:.4f}",
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
            accuracy = evaluate(
                accelerator.unwrap_model(trainee).student, val_set, cfg.eval_batch_size, accelerator
            )
            row = {
                "epoch": epoch + 1,
                "loss": round(state["ema"] or 0.0, 5),
                "val_accuracy": round(accuracy, 5),
            }
            state["history"].append(row)
            note(
                f"epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f}, validation accuracy {accuracy:.2%}"
            )
            state.update(epoch=epoch + 1, step_in_epoch=0, seconds=time.perf_counter() - started)
            ckpts.save(accelerator, state)
    bar.close()
    accelerator.wait_for_everyone()
    seconds = time.perf_counter() - started
    return TrainResult(state["history"], seconds, state["examples"] / max(seconds, 1e-9))


def run_fingerprint(**parts) -> dict:
    """What must match for ``--resume`` to continue a run (JSON-able)."""
    return json.loads(
        json.dumps(
            parts, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)
        )
    )
