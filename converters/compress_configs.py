"""The compression methods' configs: frozen dataclasses checked when made, without torch.

Each is handled by the method registered for it (``converters.methods``):
``LowRank`` and ``FactorizeEmbeddings`` by ``converters.low_rank``, ``PruneStructure`` by
``converters.structured_prune``, ``PruneVocabulary`` by ``converters.vocab_prune``.
``pocketbert.DistillOptions`` builds them from its fields (``compress_methods``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pocketbert.core.errors import UserError, choices

LOW_RANK_TARGETS = ("attention", "ffn")


def _whole(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{what} {value!r}: give a whole number >= 1")


@dataclass(frozen=True)
class LowRank:
    """Each Linear of ``targets`` (attention: Q, K, V and its output; ffn: both FFN
    Linears) in the encoder's layers becomes two, at ``rank`` or at the smallest rank
    keeping ``energy`` (0-1) of its squared singular values."""

    rank: int | None = None
    energy: float | None = None
    targets: tuple[str, ...] = ("ffn",)

    def __post_init__(self) -> None:
        if (self.rank is None) == (self.energy is None):
            raise UserError("low-rank factorization needs a rank (e.g. 64) or an energy (0-1)")
        if self.rank is not None:
            _whole(self.rank, "low-rank rank")
        if self.energy is not None and not (
            isinstance(self.energy, int | float) and 0 < self.energy < 1
        ):
            raise UserError(f"low-rank energy {self.energy}: give a fraction between 0 and 1")
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        object.__setattr__(self, "targets", targets)
        bad = sorted(set(targets) - set(LOW_RANK_TARGETS)) or ([] if targets else ["none"])
        if bad:
            raise UserError(
                f"low-rank target(s) {', '.join(bad)}: choose from: {choices(LOW_RANK_TARGETS)}"
            )


@dataclass(frozen=True)
class FactorizeEmbeddings:
    """The word-embedding table as ``vocab x size`` and a ``size -> width`` projection."""

    size: int = 128

    def __post_init__(self) -> None:
        _whole(self.size, "factorized embedding size")


@dataclass(frozen=True)
class PruneStructure:
    """Remove ``heads`` (0-1) of each layer's attention heads and ``neurons`` (0-1) of its
    FFN neurons; ``batches``: dicts of input_ids, attention_mask and labels to rank on."""

    heads: float = 0.0
    neurons: float = 0.0
    batches: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("heads", "neurons"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise UserError(
                    f"pruning ratio {name}={value!r}: give a fraction of each layer's {name} "
                    "to remove, 0 or more and below 1"
                )
        if not (self.heads or self.neurons):
            raise UserError("structured pruning needs a heads or neurons ratio above 0")


@dataclass(frozen=True)
class PruneVocabulary:
    """Keep the word-embedding rows ``keep`` (ids of the original vocabulary, ascending);
    ``min_count``: how often a token must occur in the text to be kept; ``characters``:
    keep the vocabulary's single ASCII characters too (unseen words split, not [UNK])."""

    keep: tuple[int, ...] | None = None
    min_count: int = 1
    characters: bool = True

    def __post_init__(self) -> None:
        _whole(self.min_count, "vocabulary min_count")
        if self.keep is not None:
            keep = tuple(int(i) for i in self.keep)
            if list(keep) != sorted(set(keep)):
                raise UserError("vocabulary keep ids must be ascending and distinct")
            object.__setattr__(self, "keep", keep)


@dataclass(frozen=True)
class ShareLayers:
    """Cross-layer weight sharing (ALBERT / Subformer style): each run of ``group_size``
    consecutive layers uses one set of weights (the group's first layer's to start)."""

    group_size: int = 2

    def __post_init__(self) -> None:
        _whole(self.group_size, "layer-sharing group size")
        if self.group_size < 2:
            raise UserError("layer-sharing group size 1 shares nothing; give 2 or more")
