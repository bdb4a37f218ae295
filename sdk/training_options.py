"""The options of ``pocketbert.finetune`` and ``pocketbert.distill``: frozen dataclasses checked
when made, without torch (``pocketbert.training`` re-exports them with the verbs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketbert.core.errors import UserError, choices
from pocketbert.core.threads import check_threads
from pocketbert.student_budget import AUTO, check_budget, size_budget

FAMILIES = ("bert", "mobilebert", "squeezebert")
SIZES = ("tiny", "small", "medium")
KNOBS = (
    "layers",
    "hidden",
    "heads",
    "intermediate",
    "groups",
    "ffn_groups",
    "bottleneck",
    "embedding",
    "ffns",
    "no_norm",
)
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
    weights = {"ce": 0.0, "kd": 0.0, "hidden": 0.0, "attention": 0.0, "temperature": 2.0, **spec}
    bad = sorted(k for k, v in weights.items() if not isinstance(v, int | float) or v < 0)
    if bad or weights["temperature"] <= 0:
        raise UserError(
            f"loss weights must be numbers >= 0 and the temperature > 0 (got {spec}); "
            "e.g. ce=1,kd=1,temperature=2"
        )
    return {k: float(v) for k, v in weights.items()}


@dataclass(frozen=True)
class TrainOptions:
    """What fine-tuning and distillation share: the data, the optimizer, the run.

    ``epochs``, ``lr``: None lets the rule choose them from the data; ``patience``: epochs
    without a better validation score before training stops (0: run every epoch); the
    best epoch's weights are kept either way.
    """

    epochs: int | None = None
    batch_size: int = 32
    lr: float | None = None
    patience: int = 2
    max_seq_len: int = 128
    seed: int = 0
    checkpoint_every: int = 200  # optimizer steps between checkpoints (0: epoch ends only)
    text_column: str | None = None  # default: text, sentence, review or content
    label_column: str | None = None  # default: label, labels, sentiment, class or target
    drop_unlabelled: bool = False  # leave out rows whose label is empty/nan/null (else refuse)
    threads: int | None = None  # torch threads (default: torch's choice)
    resume: bool = False  # continue the unfinished run writing to the same output
    quiet: bool = False

    def __post_init__(self) -> None:
        check_threads(self.threads)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if value is None and name == "epochs":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a whole number >= 1, not {value!r}")
        if isinstance(self.patience, bool) or not (
            isinstance(self.patience, int) and self.patience >= 0
        ):
            raise UserError(
                f"patience must be a whole number of epochs >= 0, not {self.patience!r}"
            )
        if isinstance(self.checkpoint_every, bool) or not (
            isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 0
        ):
            raise UserError(
                f"checkpoint_every must be a whole number of steps >= 0, not {self.checkpoint_every!r}"
            )

    def train_config(self):
        """The converters' TrainConfig (checks the learning rate and sequence length)."""
        from pocketbert.converters.train_loop import TrainConfig

        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            max_seq_len=self.max_seq_len,
            seed=self.seed,
            checkpoint_every=self.checkpoint_every,
            threads=self.threads,
            patience=self.patience,
        )

    def run_options(self) -> dict[str, Any]:
        """The keyword arguments every converter run takes."""
        return {
            "text_column": self.text_column,
            "label_column": self.label_column,
            "drop_unlabelled": self.drop_unlabelled,
            "resume": self.resume,
            "quiet": self.quiet,
        }


@dataclass(frozen=True)
class FinetuneOptions(TrainOptions):
    """Options of :func:`finetune` (left None: 2+ epochs from the data size, lr 5e-5).

    ``label_names``: names for the data's labels in their order (numeric labels by value),
    e.g. ``("negative", "positive")`` for 0/1 data; the classifier and its bundles use them.
    ``lora``: train rank-``lora`` LoRA adapters (and the head) instead of every weight, on
    the Linears named in ``lora_targets`` (comma-separated, or all-linear), merged back
    into the weights before the classifier is saved (lr default 5e-4).
    """

    label_names: tuple[str, ...] | None = None
    lora: int | None = None
    lora_targets: str | tuple[str, ...] = "all-linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.label_names, str):  # "negative,positive", as on the command line
            names = tuple(n.strip() for n in self.label_names.split(","))
            object.__setattr__(self, "label_names", names)
        self.lora_settings()  # a bad rank or target list is refused before any work

    def lora_settings(self):
        """The converters' LoraSettings, or None without ``lora``."""
        if self.lora is None:
            return None
        from pocketbert.converters.lora import LoraSettings

        return LoraSettings(self.lora, self.lora_targets)

    def run_options(self) -> dict[str, Any]:
        return {
            **super().run_options(),
            "label_names": self.label_names,
            "lora": self.lora_settings(),
        }


@dataclass(frozen=True)
class DistillOptions(TrainOptions):
    """Options of :func:`distill`.

    ``student``: a family (squeezebert, mobilebert, bert) or a model directory sharing the
    teacher's tokenizer; ``size``: tiny, small or medium, relative to the teacher, or auto:
    the largest student at least ``speedup`` times faster than the teacher (default 4)
    and/or within ``max_latency_ms`` on ``device`` (a devices.yaml id; default host),
    timed against the teacher in the same run (converters/student_size.py);
    ``knobs``: layers, hidden, heads, intermediate, groups, ffn_groups, bottleneck, embedding, ffns,
    no_norm (override the size); ``loss``: weights of ce, kd, hidden, attention and the
    temperature (``"kd=1,hidden=1"`` or a dict; terms not named are 0); ``two_stage``:
    TinyBERT's stages, hidden states and attention maps for ``stage1_epochs`` (default:
    1), then labels and logits (None: two stages when the loss has terms of both kinds);
    ``unlabelled``: extra text for the distillation terms; ``augment``: variants of each
    training sentence with words swapped for their neighbours in the teacher's embeddings,
    labelled by the teacher (None: a transfer set sized to the data when no unlabelled
    text is given, see ``pocketbert.core.defaults``); ``cache_dir``: where the teacher's logits are kept for reuse by
    other students on the same text; ``init_from_teacher``: copy the teacher's weights
    where shapes allow; ``freeze_embeddings``: leave the student's word-embedding table as
    initialized (None: when it is the teacher's own, see pocketbert.core.defaults).

    Compression, applied to the student and then distilled to recover (recorded in the
    summary's ``compression``, with the bytes each saves): ``factorize_embeddings``: the
    word embeddings as a vocab x E table and an E -> width projection (truncated SVD);
    ``prune_vocabulary``: keep the tokens seen at least N times in the training and
    unlabelled text (the tokenizer rewritten to match; the test split's out-of-vocabulary
    rate reported); ``prune_heads`` / ``prune_neurons``: the fraction of each layer's
    attention heads / FFN neurons removed, least important first (bert, mobilebert);
    ``low_rank``: the Linears of ``low_rank_targets`` as two, at a rank (>= 1) or the
    rank keeping an energy (0-1) of the singular values; ``share_layers``: each run of N
    consecutive layers shares one set of weights (N must divide the layers).
    """

    student: str | Path = "squeezebert"
    size: str = "small"
    knobs: dict[str, Any] | None = None
    loss: str | dict[str, float] | None = None
    two_stage: bool | None = None
    stage1_epochs: int | None = None
    unlabelled: str | Path | None = None
    augment: int | None = None
    cache_dir: str | Path | None = None
    init_from_teacher: bool = True
    freeze_embeddings: bool | None = None
    speedup: float | None = None  # size auto: times faster than the teacher (default 4)
    max_latency_ms: float | None = None  # size auto: on ``device``
    device: str | None = None  # size auto: the devices.yaml id the targets are for (host)
    # compression (converters/compression.py): applied to the student, then distilled
    factorize_embeddings: int | None = None  # word embeddings as vocab x E + E -> width
    prune_vocabulary: int | None = None  # keep tokens seen >= N times in train + unlabelled
    prune_heads: float = 0.0  # fraction of each layer's attention heads removed
    prune_neurons: float = 0.0  # fraction of each layer's FFN neurons removed
    low_rank: float | None = None  # FFN Linears as two: a rank (>= 1) or an energy (0-1)
    low_rank_targets: str = "ffn"  # ffn, attention, or both (comma-separated)
    share_layers: int | None = None  # runs of N consecutive layers share one set of weights
    # drop training rows near a test row, and repeated or test-like unlabelled lines, at
    # this MinHash similarity (converters/transfer_hygiene.py; None: keep every row)
    dedup: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.compress_methods()  # each method's config checks its own fields
        self.dedup_config()
        object.__setattr__(self, "loss", parse_loss(self.loss))
        speedup = check_budget(self.size, self.speedup, self.max_latency_ms, self.device)
        object.__setattr__(self, "speedup", speedup)
        knobs = {k: v for k, v in (self.knobs or {}).items() if v is not None}
        unknown = sorted(set(knobs) - set(KNOBS))
        if unknown:
            raise UserError(
                f"unknown student knob(s) {', '.join(unknown)}; choose from: {choices(KNOBS)}"
            )
        object.__setattr__(self, "knobs", knobs)
        if str(self.student) in FAMILIES:
            if self.size not in (*SIZES, AUTO):
                raise UserError(
                    f"unknown student size '{self.size}'; choose one of: {choices(SIZES)}, auto"
                )
        elif Path(self.student).is_dir():
            if self.size == AUTO:
                raise UserError(
                    "--size auto chooses a family's student; a model directory keeps its own size"
                )
            if knobs:
                raise UserError(
                    "student knobs apply to a family (bert, mobilebert, squeezebert), "
                    "not a model directory"
                )
        else:
            raise UserError(
                f"unknown student '{self.student}'; choose one of: {choices(FAMILIES)}, "
                "or give a model directory"
            )
        if self.augment is not None and (
            isinstance(self.augment, bool) or not isinstance(self.augment, int) or self.augment < 0
        ):
            raise UserError(
                f"augment={self.augment}: give the number of variants per sentence (0 or more)"
            )

    def student_spec(self):
        """The converters' StudentSpec, or the student model directory."""
        if str(self.student) not in FAMILIES:
            return str(self.student)
        if self.size == AUTO:  # chosen once the teacher and the data are loaded
            return size_budget(
                str(self.student), self.knobs, self.speedup, self.max_latency_ms, self.device
            )
        from pocketbert.converters.students import StudentSpec

        return StudentSpec(str(self.student), self.size, **self.knobs)

    def dedup_config(self):
        if self.dedup is None:
            return None
        from pocketbert.converters.transfer_hygiene import Dedup

        return Dedup(threshold=self.dedup)

    def compress_methods(self) -> tuple:
        """The compression method configs these options name, in the order they run."""
        from pocketbert.converters import compress_configs as cc

        methods: list = []
        if self.prune_heads or self.prune_neurons:
            methods.append(cc.PruneStructure(heads=self.prune_heads, neurons=self.prune_neurons))
        if self.low_rank is not None:
            if isinstance(self.low_rank, bool) or not isinstance(self.low_rank, int | float):
                raise UserError(
                    f"low_rank {self.low_rank!r}: give a rank (e.g. 64) or an energy (0.9)"
                )
            rank = self.low_rank >= 1
            targets = tuple(t.strip() for t in str(self.low_rank_targets).split(",") if t.strip())
            methods.append(
                cc.LowRank(
                    rank=int(self.low_rank) if rank else None,
                    energy=None if rank else float(self.low_rank),
                    targets=targets,
                )
            )
        if self.share_layers is not None:
            methods.append(cc.ShareLayers(group_size=self.share_layers))
        if self.factorize_embeddings is not None:
            methods.append(cc.FactorizeEmbeddings(size=self.factorize_embeddings))
        if self.prune_vocabulary is not None:
            methods.append(cc.PruneVocabulary(min_count=self.prune_vocabulary))
        return tuple(methods)

    def distill_config(self):
        """The converters' DistillConfig these options describe."""
        from pocketbert.converters.distill import DistillConfig
        from pocketbert.converters.distill_loss import LossWeights

        return DistillConfig(
            student=self.student_spec(),
            loss=LossWeights(**self.loss),
            train=self.train_config(),
            two_stage=self.two_stage,
            stage1_epochs=self.stage1_epochs,
            unlabelled=str(self.unlabelled) if self.unlabelled else None,
            augment=self.augment,
            cache_dir=str(self.cache_dir) if self.cache_dir else None,
            init_from_teacher=self.init_from_teacher,
            freeze_embeddings=self.freeze_embeddings,
            compress=self.compress_methods(),
            dedup=self.dedup_config(),
        )
