"""Augmented text for distillation: training sentences with words swapped for neighbours.

TinyBERT's data augmentation, without a masked language model: each word of two letters or
more that is a single token of the teacher's vocabulary is, with probability ``p``, replaced
by one of its ``k`` nearest neighbours (cosine) among the teacher's input word embeddings
("good" -> "great", "bad", "excellent"; "movie" -> "film"). The teacher labels every
variant, so the variants feed only the distillation terms; a swap that flips the sentiment
is a useful example.
"""

from __future__ import annotations

import random
import re

import torch

WORD = re.compile(r"[^\W\d_]+")  # runs of letters


def _swappable(token: str) -> bool:
    """A whole word of at least two letters (not a '##' piece, a number or punctuation)."""
    return len(token) > 1 and token.isalpha()


@torch.no_grad()
def neighbours(
    words: list[str], vocab: dict[str, int], embeddings: torch.Tensor, k: int
) -> dict[str, list[str]]:
    """Each word of ``words`` found in ``vocab`` -> its ``k`` nearest whole-word tokens."""
    inverse = {i: w for w, i in vocab.items()}
    known = [w for w in words if w in vocab and _swappable(w)]
    if not known:
        return {}
    pool = torch.tensor(sorted(i for w, i in vocab.items() if _swappable(w)))
    table = torch.nn.functional.normalize(embeddings.float(), dim=1)
    result: dict[str, list[str]] = {}
    for start in range(0, len(known), 2048):  # [2048, pool] similarities at a time
        chunk = known[start : start + 2048]
        ids = torch.tensor([vocab[w] for w in chunk])
        sim = table[ids] @ table[pool].T
        sim[pool.unsqueeze(0) == ids.unsqueeze(1)] = -2.0  # never the word itself
        top = pool[sim.topk(min(k, len(pool) - 1), dim=1).indices]
        result.update(
            (w, [inverse[int(j)] for j in row]) for w, row in zip(chunk, top, strict=True)
        )
    return result


def augment(
    texts: list[str],
    vocab: dict[str, int],
    embeddings: torch.Tensor,
    *,
    variants: int,
    p: float = 0.3,
    k: int = 8,
    lowercase: bool = True,
    seed: int = 0,
) -> list[str]:
    """``variants`` augmented copies of every text (seeded); words outside ``vocab`` stay."""
    if variants < 1:
        return []
    fold = str.lower if lowercase else str
    words = sorted({fold(w) for t in texts for w in WORD.findall(t)})
    table = neighbours(words, vocab, embeddings, k)
    rng = random.Random(seed)

    def swap(match: re.Match) -> str:
        word = match.group(0)
        options = table.get(fold(word))
        if not options or rng.random() >= p:
            return word
        new = rng.choice(options)
        return new.capitalize() if lowercase and word[:1].isupper() else new

    return [WORD.sub(swap, t) for t in texts for _ in range(variants)]
