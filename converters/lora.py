"""LoRA fine-tuning of a teacher (Hu et al. 2021) through the ``peft`` library: ``with_lora``
wraps the classifier so that only rank-r adapters of the chosen Linears and the
classification head train; ``merged`` folds the adapters back into the weights, leaving an
ordinary transformers model that distillation and every exporter take unchanged.

It is for teachers too large to fine-tune fully on the user's machine: the optimizer holds
state for the adapters alone, and no gradient is kept for the frozen weights. Defaults: the
adapters on every Linear of the encoder (``all-linear``: closer to a full fine-tune than
Q and V alone on small teachers), alpha = 2 r, dropout 0.1, and a learning rate of
``pocketbert.core.defaults.LORA_LR`` when none is given (adapters start at zero and need
~10x the full fine-tune's).
"""

from __future__ import annotations

from dataclasses import dataclass

from pocketbert.core.errors import UserError

ALL_LINEAR = "all-linear"


@dataclass(frozen=True)
class LoraSettings:
    """Rank ``rank`` adapters on ``targets`` (Linear names, e.g. ``("query", "value")``, or
    ``all-linear``); ``alpha`` None: 2 x rank."""

    rank: int
    targets: tuple[str, ...] = (ALL_LINEAR,)
    alpha: float | None = None
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise UserError(f"LoRA rank {self.rank!r}: give a whole number >= 1, e.g. 8")
        if isinstance(self.targets, str):
            object.__setattr__(
                self, "targets", tuple(t.strip() for t in self.targets.split(",") if t.strip())
            )
        if not self.targets:
            raise UserError("LoRA targets are empty; give Linear names (query,value) or all-linear")
        if not 0 <= self.dropout < 1:
            raise UserError(f"LoRA dropout {self.dropout}: give 0 to below 1")

    def record(self) -> dict:
        return {
            "rank": self.rank,
            "alpha": self.alpha or 2 * self.rank,
            "targets": list(self.targets),
            "dropout": self.dropout,
        }


def _linears(model) -> dict[str, tuple[int, int]]:
    """Name -> (in, out) of every Linear below the classification head."""
    import torch.nn as nn

    return {
        name: (m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and name.split(".")[0] != "classifier"
    }


def _check(model, settings: LoraSettings) -> list[str]:
    """The Linears the adapters go on; a target that matches none, or a rank no smaller than
    a matched layer, is a UserError (before anything is trained or written)."""
    linears = _linears(model)
    if settings.targets == (ALL_LINEAR,):
        chosen = list(linears)
    else:
        chosen = [n for n in linears if n.rsplit(".", 1)[-1] in settings.targets]
        found = {n.rsplit(".", 1)[-1] for n in chosen}
        missing = [t for t in settings.targets if t not in found]
        if missing:
            names = sorted({n.rsplit(".", 1)[-1] for n in linears})
            raise UserError(
                f"LoRA target(s) {', '.join(missing)} match no Linear of this model; "
                f"its Linears are named: {', '.join(names)} (or give all-linear)"
            )
    smallest = min(min(linears[n]) for n in chosen)
    if settings.rank >= smallest:
        raise UserError(
            f"LoRA rank {settings.rank} is not below the smallest targeted layer's width "
            f"({smallest}); give a rank below {smallest}, e.g. 8"
        )
    return chosen


def with_lora(model, settings: LoraSettings):
    """(``model`` wrapped with adapters, a record of what trains) for a sequence classifier."""
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError as e:
        raise UserError(
            "LoRA fine-tuning needs the peft library: pip install 'pocketbert[convert]'"
        ) from e
    chosen = _check(model, settings)
    total = sum(p.numel() for p in model.parameters())
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,  # the classification head trains in full
        r=settings.rank,
        lora_alpha=settings.alpha or 2 * settings.rank,
        lora_dropout=settings.dropout,
        target_modules=chosen,
    )
    wrapped = get_peft_model(model, config)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    return wrapped, {
        **settings.record(),
        "layers": len(chosen),
        "trainable_params": trainable,
        "total_params": total,
        "trainable_share": round(trainable / total, 5),
    }


def merged(wrapped):
    """The plain transformers model with the adapters folded into its weights."""
    return wrapped.merge_and_unload()
