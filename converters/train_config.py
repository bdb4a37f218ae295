"""The settings of one training run (fine-tuning or distillation), checked when made."""

from __future__ import annotations

from dataclasses import dataclass

from pocketbert.core import defaults
from pocketbert.core.errors import UserError, choices
from pocketbert.core.threads import check_threads

SELECT_BY = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class TrainConfig:
    # None: chosen from the data by pocketbert.core.defaults (``train`` itself runs one
    # epoch per entry of its schedule, at the verb's learning rate)
    epochs: int | None = None
    batch_size: int = 32
    lr: float | None = None
    weight_decay: float = 0.01
    warmup: float = 0.06  # fraction of all steps
    max_seq_len: int = 128
    seed: int = 0
    checkpoint_every: int = 200  # optimizer steps (and always at the end of an epoch)
    eval_batch_size: int = 128
    threads: int | None = None  # torch's intra-op threads (None: torch's default)
    patience: int = defaults.PATIENCE  # epochs without a better validation score (0: all run)
    # the validation score that picks the best epoch; None: the rule's (macro_f1 for 3+
    # classes or imbalanced data, else accuracy), or accuracy when ``train`` runs alone
    select_by: str | None = None

    def __post_init__(self) -> None:
        check_threads(self.threads, "threads")
        if (self.epochs is not None and self.epochs < 1) or self.batch_size < 1:
            raise UserError(
                f"epochs ({self.epochs}) and batch size ({self.batch_size}) must be >= 1"
            )
        if (
            isinstance(self.patience, bool)
            or not isinstance(self.patience, int)
            or self.patience < 0
        ):
            raise UserError(
                f"patience {self.patience!r}: give the epochs without improvement to allow "
                "(0 or more; 0 runs every epoch)"
            )
        if self.select_by is not None and self.select_by not in SELECT_BY:
            raise UserError(
                f"unknown validation score '{self.select_by}'; choose one of: {choices(SELECT_BY)}"
            )
        if not 8 <= self.max_seq_len <= 4096:
            raise UserError(
                f"max sequence length {self.max_seq_len} is out of range; give 8 to 4096"
            )
        if self.lr is not None and not 0 < self.lr < 1:
            raise UserError(f"learning rate {self.lr} is out of range; give e.g. 5e-5")
