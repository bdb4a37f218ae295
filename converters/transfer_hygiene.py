"""Transfer-set hygiene: near-duplicate text found by MinHash LSH, dropped with counts.

    drop = near_duplicates(unlabelled)                  # indices repeating an earlier line
    hits = overlapping(train_texts, test_texts)         # train rows that nearly are test rows

A text is the set of its word 3-grams (lower-cased; shorter texts: their words as one
shingle); ``PERMUTATIONS`` seeded hashes give its MinHash signature, split into ``BANDS``
bands; texts sharing a band are candidates, kept as near duplicates when their estimated
Jaccard similarity is at least ``threshold`` (0.8: e.g. the same review with a word or
two changed). The hashes are numpy and seeded, so a run drops the same rows every time.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from pocketbert.core.errors import UserError

PERMUTATIONS = 128
BANDS = 32  # 4 rows a band: pairs at Jaccard 0.8 become candidates with p > 0.999
PRIME = (1 << 31) - 1  # (a * x + b) mod PRIME with x, a, b < PRIME: fits uint64
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Dedup:
    """Near-duplicate removal at estimated Jaccard ``threshold`` (0-1] of word 3-grams."""

    threshold: float = 0.8

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not (
            isinstance(self.threshold, int | float) and 0 < self.threshold <= 1
        ):
            raise UserError(f"dedup threshold {self.threshold!r}: give a similarity in (0, 1]")


def _shingles(text: str) -> set[int]:
    words = _WORD.findall(text.lower())
    grams = [" ".join(words[i : i + 3]) for i in range(max(len(words) - 2, 1))]
    return {zlib.crc32(g.encode()) for g in grams}


_rng = np.random.default_rng(0)
_A = _rng.integers(1, PRIME, PERMUTATIONS, dtype=np.uint64)
_B = _rng.integers(0, PRIME, PERMUTATIONS, dtype=np.uint64)


def signatures(texts: list[str]) -> np.ndarray:
    """[len(texts), PERMUTATIONS] MinHash signatures (uint64)."""
    a, b = _A, _B
    out = np.empty((len(texts), PERMUTATIONS), dtype=np.uint64)
    for i, text in enumerate(texts):
        x = np.fromiter(_shingles(text) or {0}, dtype=np.uint64) % np.uint64(PRIME)
        out[i] = ((x[:, None] * a[None, :] + b[None, :]) % np.uint64(PRIME)).min(axis=0)
    return out


def _buckets(sig: np.ndarray) -> list[dict[bytes, list[int]]]:
    rows = PERMUTATIONS // BANDS
    tables: list[dict[bytes, list[int]]] = []
    for band in range(BANDS):
        table: dict[bytes, list[int]] = defaultdict(list)
        for i, row in enumerate(sig[:, band * rows : (band + 1) * rows]):
            table[row.tobytes()].append(i)
        tables.append(table)
    return tables


def near_duplicates(texts: list[str], threshold: float = 0.8) -> list[int]:
    """Indices of texts that nearly repeat an earlier one (the first of each is kept)."""
    sig = signatures(texts)
    dropped: set[int] = set()
    for table in _buckets(sig):
        for members in table.values():
            for pos, j in enumerate(members[1:], start=1):
                if j in dropped:
                    continue
                if any(
                    i not in dropped and (sig[i] == sig[j]).mean() >= threshold
                    for i in members[:pos]
                ):
                    dropped.add(j)
    return sorted(dropped)


def overlapping(texts: list[str], against: list[str], threshold: float = 0.8) -> list[int]:
    """Indices of ``texts`` that nearly repeat any text of ``against``."""
    if not texts or not against:
        return []
    sig = signatures(list(against) + list(texts))
    n = len(against)
    hits: set[int] = set()
    for table in _buckets(sig):
        for members in table.values():
            old = [i for i in members if i < n]
            for j in (m for m in members if m >= n and m - n not in hits):
                if any((sig[i] == sig[j]).mean() >= threshold for i in old):
                    hits.add(j - n)
    return sorted(hits)


def clean(
    train, test_texts: list[str], unlabelled: list[str], cfg: Dedup
) -> tuple[list, list[str], dict]:
    """(train rows, unlabelled text) without near duplicates of the test split or of each
    other's earlier lines; and the counts dropped."""
    train_hits = set(overlapping([t for t, _ in train], test_texts, cfg.threshold))
    kept_train = [row for i, row in enumerate(train) if i not in train_hits]
    repeats = set(near_duplicates(unlabelled, cfg.threshold))
    leaks = set(overlapping(unlabelled, test_texts, cfg.threshold))
    kept_text = [t for i, t in enumerate(unlabelled) if i not in repeats | leaks]
    return (
        kept_train,
        kept_text,
        {
            "threshold": cfg.threshold,
            "train_near_test": len(train_hits),
            "unlabelled_near_duplicates": len(repeats),
            "unlabelled_near_test": len(leaks - repeats),
            "unlabelled_kept": len(kept_text),
        },
    )
