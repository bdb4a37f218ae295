"""The teacher's logits over a training set, computed once and kept in a file.

Used by the epochs of a distillation that take only the teacher's logits (no hidden
states or attention): the teacher runs once over the data instead of once per epoch, and
students distilled on the same text can share the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from pocketbert.converters.batches import Example, collate
from pocketbert.core.errors import UserError, first_line
from pocketbert.core.progress import progress_bar

TEACHER_LOGITS = "teacher_logits.pt"  # the default file name, in the run's work directory


@torch.no_grad()
def teacher_logits(
    teacher: nn.Module,
    examples: list[Example],
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    quiet: bool = False,
) -> torch.Tensor:
    """The teacher's logits [N, labels] for ``examples`` (in their order), batched by length."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    out = torch.empty(len(examples), teacher.config.num_labels)
    loader = DataLoader([examples[i] for i in order], batch_size=batch_size, collate_fn=collate)
    done = 0
    for batch in progress_bar(loader, disable=quiet, unit="batch", desc="teacher"):
        logits = teacher(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
        ).logits.float()
        n = logits.shape[0]
        out[torch.tensor(order[done : done + n])] = logits.cpu()
        done += n
    return out


def read_cached(
    path: Path, rows: int, labels: int, say: Callable[[str], None]
) -> torch.Tensor | None:
    """The logits kept at ``path`` if they are whole and fit [rows, labels]; else None.

    A damaged file (truncated, overwritten, not a tensor) is reported in one line and
    ignored, so the caller computes the logits again and replaces it.
    """
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling a damaged file raises many kinds
        say(
            f"warning: the teacher-logits cache '{path}' is damaged ({first_line(exc)}); computing it again"
        )
        return None
    if not isinstance(cached, torch.Tensor) or tuple(cached.shape) != (rows, labels):
        say(
            f"warning: the teacher-logits cache '{path}' does not fit this data; computing it again"
        )
        return None
    return cached


def write_atomically(tensor: torch.Tensor, path: Path) -> None:
    """Save ``tensor`` at ``path`` via a temporary file that is removed if the write fails."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(tensor, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(
            f"cannot keep the teacher's logits in '{path.parent}' ({exc.strerror or exc}); "
            "give a writable cache directory"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def with_teacher_logits(
    teacher: nn.Module,
    examples: list[Example],
    path: Path,
    device,
    quiet: bool,
    say: Callable[[str], None] = print,
) -> list[Example]:
    """``examples`` with the teacher's logits attached, computed once and kept at ``path``."""
    cached = read_cached(path, len(examples), teacher.config.num_labels, say)
    if cached is None:
        cached = teacher_logits(teacher, examples, device=device, quiet=quiet)
        write_atomically(cached, path)
    return [(ex[0], ex[1], row) for ex, row in zip(examples, cached, strict=True)]
