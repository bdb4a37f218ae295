"""Training examples as batches: tokenized, padded, and grouped by length in a seeded order."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

Example = tuple  # (token ids, label id or IGNORE[, the teacher's logits])


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
