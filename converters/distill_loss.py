"""Distillation loss terms: hard labels, soft logits, hidden states, attention maps.

Any term with weight 0 is skipped (and the teacher is not asked for what it needs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pocketbert.core.errors import UserError

IGNORE = -100  # label of unlabelled text: only the distillation terms see it


@dataclass(frozen=True)
class LossWeights:
    ce: float = 1.0  # cross-entropy with the hard labels
    kd: float = 0.0  # KL between softened logits at ``temperature`` (times T^2)
    hidden: float = 0.0  # MSE between hidden states through learned projections
    attention: float = 0.0  # KL between head-averaged attention maps
    temperature: float = 2.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 0:
                raise UserError(f"loss weight {name}={value} must be >= 0")
        if self.temperature <= 0:
            raise UserError(f"temperature {self.temperature} must be > 0")
        if self.ce + self.kd + self.hidden + self.attention == 0:
            raise UserError(
                "every loss weight is 0; give at least one of ce, kd, hidden, attention"
            )

    @property
    def needs_teacher(self) -> bool:
        return self.kd + self.hidden + self.attention > 0

    @property
    def needs_internals(self) -> bool:
        return self.hidden + self.attention > 0


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` [B, S, ...] over the real tokens of ``mask`` [B, S]."""
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.to(values.dtype)
    return (values * mask).sum() / (mask.expand_as(values).sum().clamp(min=1.0))


class DistillLoss(nn.Module):
    """Weighted sum of the terms; owns the hidden-state projections (trained with the student)."""

    def __init__(
        self,
        student_hidden: int,
        teacher_hidden: int,
        layer_map: list[int],
        scores: tuple[bool, bool] = (False, False),
        projections: bool = True,
    ) -> None:
        super().__init__()
        self.scores = (
            scores  # (student, teacher) return attention scores, not probabilities (SqueezeBERT)
        )
        # student state i (0: embeddings, i: layer i) learns teacher state pairs[i]
        self.pairs = [0] + [j + 1 for j in layer_map]
        self.projections = nn.ModuleList(
            nn.Linear(student_hidden, teacher_hidden) for _ in (self.pairs if projections else [])
        )

    def forward(
        self, student_out, teacher_out, labels: torch.Tensor, mask: torch.Tensor, w: LossWeights
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = student_out.logits
        total = logits.new_zeros(())
        parts: dict[str, float] = {}
        if w.ce > 0 and bool((labels != IGNORE).any()):
            term = F.cross_entropy(logits, labels, ignore_index=IGNORE)
            total, parts["ce"] = total + w.ce * term, float(term.detach())
        if w.kd > 0:
            t = w.temperature
            term = (
                F.kl_div(
                    F.log_softmax(logits / t, -1),
                    F.log_softmax(teacher_out.logits / t, -1),
                    log_target=True,
                    reduction="batchmean",
                )
                * t
                * t
            )
            total, parts["kd"] = total + w.kd * term, float(term.detach())
        if w.hidden > 0:
            terms = [
                _masked_mean(
                    (proj(student_out.hidden_states[i]) - teacher_out.hidden_states[j]).pow(2), mask
                )
                for i, (proj, j) in enumerate(zip(self.projections, self.pairs, strict=True))
            ]
            term = torch.stack(terms).mean()
            total, parts["hidden"] = total + w.hidden * term, float(term.detach())
        if w.attention > 0:
            terms = []
            for i, j in enumerate(self.pairs[1:]):
                s_att, t_att = student_out.attentions[i], teacher_out.attentions[j - 1]
                s_att = (s_att.softmax(-1) if self.scores[0] else s_att).mean(
                    1
                )  # [B, S, S], rows: queries
                t_att = (t_att.softmax(-1) if self.scores[1] else t_att).mean(1)
                kl = (t_att * (t_att.clamp_min(1e-9).log() - s_att.clamp_min(1e-9).log())).sum(-1)
                terms.append(_masked_mean(kl, mask))
            term = torch.stack(terms).mean()
            total, parts["attention"] = total + w.attention * term, float(term.detach())
        return total, parts
