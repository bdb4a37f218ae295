"""Best-epoch selection and early stopping on the validation split.

After every epoch that trains the classifier (the first stage of a two-stage distillation
does not), its validation score (``TrainConfig.select_by``: accuracy or macro-F1) is
compared with the best so far. A better one keeps the student's weights in
``<work>/best-student.pt`` and its epoch and score in the trainer state, which every
checkpoint saves, so a run resumed after ``kill -9`` knows them. After ``patience`` such
epochs without a better score training stops, and at the end the best weights go back
into the student.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from pocketbert.converters.distill_loss import LossWeights

BEST_WEIGHTS = "best-student.pt"


def trains_classifier(w: LossWeights) -> bool:
    """Whether an epoch with the loss weights ``w`` trains the prediction layer."""
    return w.ce + w.kd > 0


def consider(
    state: dict, row: dict, select_by: str, student: nn.Module, work: Path, accelerator
) -> bool:
    """Score the epoch of ``row``; keep the student's weights when it is the best so far.

    Returns True when it is. ``state["best"]`` holds ``{"epoch", "score"}`` of the best.
    """
    score = row[f"val_{select_by}"]
    best = state["best"]
    if best is not None and score <= best["score"]:  # ties keep the earlier, shorter run
        return False
    if accelerator.is_main_process:
        weights = {k: v.detach().cpu().clone() for k, v in student.state_dict().items()}
        path = work / BEST_WEIGHTS
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        torch.save(weights, tmp)
        os.replace(tmp, path)
    accelerator.wait_for_everyone()
    state["best"] = {"epoch": row["epoch"], "score": score}
    return True


def should_stop(state: dict, epoch: int, patience: int) -> bool:
    """True when ``patience`` epochs up to ``epoch`` (1-based) brought no better score."""
    best = state["best"]
    return bool(patience) and best is not None and epoch - best["epoch"] >= patience


def restore_best(state: dict, student: nn.Module, work: Path, accelerator) -> int | None:
    """Put the best epoch's weights back into ``student``; returns that epoch (None: none)."""
    best = state["best"]
    if best is None:
        return None
    accelerator.wait_for_everyone()
    if best["epoch"] != state["history"][-1]["epoch"]:
        weights = torch.load(work / BEST_WEIGHTS, weights_only=True)
        student.load_state_dict(weights)
    return best["epoch"]
