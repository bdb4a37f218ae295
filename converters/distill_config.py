"""The settings of one distillation run, checked when made, and ``resolve``: the run's
settings with every one left None chosen from the data (``pocketbert.core.defaults``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pocketbert.converters.distill_loss import LossWeights
from pocketbert.converters.students import StudentSpec
from pocketbert.converters.train_config import TrainConfig
from pocketbert.converters.transfer_hygiene import Dedup
from pocketbert.core import defaults
from pocketbert.core.data import LabelledData
from pocketbert.core.errors import UserError


@dataclass(frozen=True)
class DistillConfig:
    student: StudentSpec | str = field(default_factory=StudentSpec)  # a spec, or a model directory
    loss: LossWeights = field(
        default_factory=lambda: LossWeights(ce=1.0, kd=1.0, hidden=1.0, attention=1.0)
    )
    train: TrainConfig = field(default_factory=TrainConfig)
    # intermediate layers first (hidden + attention), then the prediction layer; None: two
    # stages when the loss has terms of both kinds and there are 2+ epochs
    two_stage: bool | None = None
    stage1_epochs: int | None = None  # None: the rule's (1)
    unlabelled: str | None = None  # text file for the distillation terms
    # augmented variants of each training sentence, for the distillation terms; None: the
    # rule's transfer set when no unlabelled text is given, else 0
    augment: int | None = None
    init_from_teacher: bool = True
    # the word-embedding table left as initialized (no gradient, no optimizer state); None:
    # frozen when it is still the teacher's own table (student_init.freeze_embeddings)
    freeze_embeddings: bool | None = None
    cache_dir: str | None = None  # teacher logits kept here, shared by runs on the same data
    # compression method configs (converters.methods): applied to the student, distilled
    # to recover; vocabulary pruning after training (converters.compression)
    compress: tuple = ()
    dedup: Dedup | None = None  # near-duplicate removal of the transfer set (MinHash LSH)

    def __post_init__(self) -> None:
        if self.augment is not None and self.augment < 0:
            raise UserError(
                f"augment={self.augment}: give the number of variants per sentence (0 or more)"
            )

    @property
    def both_kinds(self) -> bool:
        """Whether the loss has intermediate (hidden, attention) and prediction terms."""
        w = self.loss
        return w.needs_internals and w.ce + w.kd > 0

    @property
    def staged(self) -> bool:
        """Whether training runs TinyBERT's two stages (see ``two_stage``; epochs left to
        the rule are always 2 or more)."""
        if self.two_stage is not None:
            return self.two_stage
        return self.both_kinds and (self.train.epochs or 2) >= 2

    def stages(self) -> list[LossWeights]:
        """The loss weights of each stage: [intermediate, prediction] when staged, else one."""
        w = self.loss
        if not self.staged:
            return [w]
        stage1 = LossWeights(
            ce=0.0,
            kd=0.0,
            hidden=w.hidden or 1.0,
            attention=w.attention or 1.0,
            temperature=w.temperature,
        )
        stage2 = LossWeights(
            ce=w.ce, kd=w.kd or 1.0, hidden=0.0, attention=0.0, temperature=w.temperature
        )
        return [stage1, stage2]

    def schedule(self) -> list[LossWeights]:
        """One LossWeights per epoch (needs ``train.epochs``: see ``resolve``)."""
        epochs = self.train.epochs
        if epochs is None:
            raise ValueError("the epochs are not chosen yet: resolve the config on the data")
        stages = self.stages()
        if len(stages) == 1:
            return stages * epochs
        first = self.stage1_epochs if self.stage1_epochs is not None else defaults.STAGE1_EPOCHS
        if not 1 <= first < epochs:
            raise UserError(
                f"two-stage distillation needs 1 <= stage-1 epochs ({first}) < epochs ({epochs})"
            )
        return [stages[0]] * first + [stages[1]] * (epochs - first)


def resolve(cfg: DistillConfig, data: LabelledData) -> tuple[DistillConfig, defaults.Chosen]:
    """``cfg`` with every setting left None chosen by the rule (``pocketbert.core.defaults``)."""
    staged = cfg.two_stage if cfg.two_stage is not None else (None if cfg.both_kinds else False)
    chosen = defaults.choose_distill(
        list(data.counts().values()),
        cfg.train.batch_size,
        epochs=cfg.train.epochs,
        lr=cfg.train.lr,
        stage1_epochs=cfg.stage1_epochs,
        augment=cfg.augment,
        staged=staged,
        transfer=not cfg.unlabelled and any(w.needs_teacher for w in cfg.stages()),
    )
    train_cfg = replace(
        cfg.train,
        epochs=chosen.epochs,
        lr=chosen.lr,
        select_by=cfg.train.select_by or chosen.select_by,
    )
    resolved = replace(
        cfg, train=train_cfg, stage1_epochs=chosen.stage1_epochs, augment=chosen.augment
    )
    return resolved, chosen
