"""The teacher's logits over a training set, computed once and kept in a file.

Used by the epochs of a distillation that take only the teacher's logits (no hidden
states or attention): the teacher runs once over the data instead of once per epoch, and
students distilled on the same text can share the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from pocketbert.core.errors import UserError

TEACHER_LOGITS = "teacher_logits.pt"  # the default file name, in the run's work directory
Example = tuple  # (token ids, label id or IGNORE[, the teacher's logits])


@torch.no_grad()
def teacher_logits(
    teacher: nn.Module,
    examples: list[Example],
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    quiet: bool = False,
) -> torch.Tensor:
    """The teacher's logits [N, labels] for ``examples`` (in their order), batched by length."""
    from tqdm.auto import tqdm

    from pocketbert.converters.train_loop import collate

    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    out = torch.empty(len(examples), teacher.config.num_labels)
    loader = DataLoader([examples[i] for i in order], batch_size=batch_size, collate_fn=collate)
    done = 0
    for batch in tqdm(loader, disable=quiet, unit="batch", desc="teacher", leave=False):
        logits = teacher(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
        ).logits.float()
        n = logits.shape[0]
        out[torch.tensor(order[done : done + n])] = logits.cpu()
        done += n
    return out


def with_teacher_logits(
    teacher: nn.Module, examples: list[Example], path: Path, device, quiet: bool
) -> list[Example]:
    """``examples`` with the teacher's logits attached, computed once and kept at ``path``."""
    cached = torch.load(path) if path.is_file() else None
    if cached is None or cached.shape[0] != len(examples):
        cached = teacher_logits(teacher, examples, device=device, quiet=quiet)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(cached, tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise UserError(
                f"cannot keep the teacher's logits in '{path.parent}' ({exc.strerror or exc}); "
                "give a writable cache directory"
            ) from exc
    return [(ex[0], ex[1], row) for ex, row in zip(examples, cached, strict=True)]
