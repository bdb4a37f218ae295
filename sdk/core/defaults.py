"""The rule that picks training settings from the data for every setting left out (None).

An explicit value always wins; the rule fills in the rest from ``n`` (training rows),
``k`` (classes) and the batch size ``b``, and says what it chose and why in one line
(also kept in ``summary.json`` as ``"defaults"``).

The rule (what it was built on is listed below it):

``distill``
  * transfer set, when no unlabelled text is given and the loss has a distillation term:
    ``variants = clamp(floor(30000 / n) - 1, 0, 20)`` word-swap variants of each training
    sentence, labelled by the teacher. The training text and its variants then hold at
    most 30,000 sentences, and never more than TinyBERT's 20 variants per sentence;
    15,000 training rows or more get none.
  * stage 1 (hidden states and attention maps only): 1 epoch. It trains no classifier.
  * logit-stage epochs (labels and softened logits): enough for
    ``1200 * f(k)`` optimizer steps over the training text and its variants, 2 to 10,
    where ``f(k) = min(k, 4) / 2``: with k classes each class's examples come k/2 times
    less often than with two, so its boundary gets proportionally more steps (up to 2x).
  * learning rate: 2e-4 at every size (what the students needed; 1e-4 left them short).
  * word embeddings: frozen when the student's table is the teacher's own, copied
    unchanged (SqueezeBERT-style, or BERT-style at the teacher's width); trained when it
    was projected (MobileBERT-style) or drawn at random. ``--freeze-embeddings`` /
    ``--no-freeze-embeddings`` decide it.
``finetune``
  * epochs: enough for ``400 * f(k)`` optimizer steps over the training rows, 2 to 10.
  * learning rate: 5e-5 at every size (the top of BERT's recommended 2e-5..5e-5).
both
  * every epoch is scored on the validation split and the best one is kept (early
    stopping after ``patience`` epochs without improvement, default 2); the score is
    macro-F1 when there are 3+ classes or the smallest training class has under half the
    examples of the largest, accuracy otherwise. In two-stage distillation only the
    logit-stage epochs can be picked (stage 1 does not train the classifier).

Built on two runs: on Rotten Tomatoes (6,826 training sentences, 2 classes) students kept
the teacher's accuracy with 36,826 sentences in the transfer set, lr 2e-4, one
hidden/attention epoch then two logit epochs (about 2,300 logit steps); on a
5,000-sentence multi-class task the earlier fixed defaults (3 epochs with half of them
in stage 1, lr 1e-4, no transfer set: about 300 logit steps) left a student at 87% of the
teacher, and doubling the epochs lifted it only to 93%.

The CPU budget keeps the transfer set a little under that tuned recipe's and halves its
logit steps: two students side by side on a 2-core CPU (one thread each) run a
first-stage epoch with the teacher live at about 85-95 examples/s each, so 30,000
sentences take 8-14 minutes a pair and three tasks fit an hour. Measured by
``benchmarks/distill_tasks.py`` on three tasks: going from 15,000 sentences (every table
trained) to 30,000 (teacher-own tables frozen) lifted the MobileBERT-style student from
95.2% to 98.0% of the teacher's accuracy on Rotten Tomatoes and the SqueezeBERT-style one
from 95.1% to 96.5% on TREC, at about the same wall time per task (two runs, each with
its own fine-tune of the teacher). A frozen table alone, with 20,000 sentences, cost
the MobileBERT-style student 3 points (its table is a projection) and the
SqueezeBERT-style student none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TRANSFER_SENTENCES = 30_000  # training text + variants, at most (see the CPU budget)
MAX_VARIANTS = 20  # TinyBERT's augmentation factor
STAGE1_EPOCHS = 1
DISTILL_STEPS = 1200  # logit-stage optimizer steps for a two-class task
FINETUNE_STEPS = 400
MIN_EPOCHS, MAX_EPOCHS = 2, 10
DISTILL_LR = 2e-4
FINETUNE_LR = 5e-5
LORA_LR = 5e-4  # LoRA adapters start at zero: ~10x a full fine-tune's rate (Hu et al.)
PATIENCE = 2
IMBALANCE = 0.5  # smallest / largest training class below this: select by macro-F1
SCORE_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1"}  # as lines print them


@dataclass(frozen=True)
class Chosen:
    """The settings a run uses and which of them the rule chose (the rest were given)."""

    epochs: int
    lr: float
    stage1_epochs: int | None  # None: one stage
    augment: int  # word-swap variants per training sentence
    select_by: str  # "accuracy" or "macro_f1"
    chosen: tuple[str, ...]  # the names the rule filled in
    reason: str

    def record(self) -> dict:
        """The summary's ``"defaults"`` entry."""
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "stage1_epochs": self.stage1_epochs,
            "augment": self.augment,
            "select_by": self.select_by,
            "chosen_by_rule": list(self.chosen),
            "reason": self.reason,
        }

    def line(self) -> str:
        """One line for the progress output."""
        stages = (
            f" ({self.stage1_epochs} on hidden states and attention, "
            f"{self.epochs - self.stage1_epochs} on labels and logits)"
            if self.stage1_epochs
            else ""
        )
        augment = f", {self.augment} augmented variants per sentence" if self.augment else ""
        picked = ", ".join(self.chosen) if self.chosen else "none: all given"
        return (
            f"settings: {self.epochs} epochs{stages}, lr {self.lr:.0e}{augment}, best epoch by "
            f"validation {SCORE_NAMES[self.select_by]} (chosen by rule: {picked}; "
            f"{self.reason})"
        )


def class_factor(classes: int) -> float:
    """``f(k)``: how many times the steps of a two-class task a k-class task gets."""
    return min(max(classes, 2), 4) / 2


def select_by(counts: list[int]) -> str:
    """The validation score that picks the best epoch, from the training class counts."""
    present = [c for c in counts if c > 0]
    if len(counts) > 2 or (present and min(present) < IMBALANCE * max(present)):
        return "macro_f1"
    return "accuracy"


def transfer_variants(train_rows: int) -> int:
    """Word-swap variants per training sentence for the transfer set (see the rule)."""
    return max(0, min(MAX_VARIANTS, TRANSFER_SENTENCES // max(train_rows, 1) - 1))


def epochs_for(steps: int, rows: int, batch_size: int) -> int:
    """Epochs over ``rows`` examples that make at least ``steps`` optimizer steps, 2 to 10."""
    per_epoch = max(1, rows // batch_size)  # full batches (the last partial one is dropped)
    return max(MIN_EPOCHS, min(MAX_EPOCHS, math.ceil(steps / per_epoch)))


def choose_distill(
    counts: list[int],
    batch_size: int,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    stage1_epochs: int | None = None,
    augment: int | None = None,
    staged: bool | None = True,
    transfer: bool = True,
) -> Chosen:
    """Distillation settings for training data with ``counts`` examples per class.

    ``staged``: whether the loss runs TinyBERT's two stages (None: when there are 2+
    epochs, the converters' rule); ``transfer``: whether a transfer set may be built (the
    loss has a distillation term and no unlabelled text was given).
    """
    n, k = sum(counts), len(counts)
    chosen = [
        name
        for name, value in (
            ("epochs", epochs),
            ("lr", lr),
            ("stage1_epochs", stage1_epochs),
            ("augment", augment),
        )
        if value is None
    ]
    if augment is None:
        augment = transfer_variants(n) if transfer else 0
    rows = n * (1 + augment)
    steps = round(DISTILL_STEPS * class_factor(k))
    if epochs is None:
        first = (stage1_epochs or STAGE1_EPOCHS) if staged is not False else 0
        epochs = first + epochs_for(steps, rows, batch_size)
    two = staged if staged is not None else epochs >= 2
    if not two:
        stage1_epochs = None
        if "stage1_epochs" in chosen:
            chosen.remove("stage1_epochs")
    elif stage1_epochs is None:
        stage1_epochs = STAGE1_EPOCHS
    reason = (
        f"{n} training rows, {k} classes: "
        f"{f'{rows} sentences with the variants, ' if augment else ''}"
        f"logit stage aims at {steps} steps of {batch_size}"
    )
    return Chosen(
        epochs, lr or DISTILL_LR, stage1_epochs, augment, select_by(counts), tuple(chosen), reason
    )


def choose_finetune(
    counts: list[int],
    batch_size: int,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    lora: bool = False,
) -> Chosen:
    """Fine-tuning settings for training data with ``counts`` examples per class (``lora``:
    adapters only, at LORA_LR unless ``lr`` is given)."""
    n, k = sum(counts), len(counts)
    chosen = [name for name, value in (("epochs", epochs), ("lr", lr)) if value is None]
    steps = round(FINETUNE_STEPS * class_factor(k))
    reason = f"{n} training rows, {k} classes: aims at {steps} steps of {batch_size}"
    if lora:
        reason += "; LoRA adapters"
    return Chosen(
        epochs or epochs_for(steps, n, batch_size),
        lr or (LORA_LR if lora else FINETUNE_LR),
        None,
        0,
        select_by(counts),
        tuple(chosen),
        reason,
    )


def likely_cause(train_rows: int, steps: int, losses: list[float], classes: int, lr: float) -> str:
    """Why a model may have learned nothing, from the run's size and its loss per epoch."""
    if train_rows < 200:
        return f"too little data ({train_rows} training rows; a few hundred per class help)"
    if steps < FINETUNE_STEPS:
        return (
            f"too few optimizer steps ({steps}; give more --epochs, about "
            f"{FINETUNE_STEPS} steps or more)"
        )
    if losses and losses[-1] > 0.9 * math.log(classes):
        return (
            f"the loss stayed near a blind guess's ({losses[-1]:.3f} vs {math.log(classes):.3f}): "
            f"lr {lr:g} may be too high or too low"
        )
    return "the labels may not follow from the text, or too few epochs"
