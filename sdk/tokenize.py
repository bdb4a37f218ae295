"""Text -> model feeds with the bundle's own tokenizer.json (no torch, no transformers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pocketbert.core.errors import UserError
from pocketbert.wordpiece import BertWordPiece


class Encoder:
    """Encode texts to batch-1 feeds {input_ids, attention_mask} of int64.

    ``pad_to`` set: every feed is right-padded (or truncated) to exactly that length, as
    static-shape model files need. Otherwise each text keeps its natural length, at
    least ``min_len`` and at most ``max_len`` tokens.
    """

    def __init__(
        self,
        tokenizer_json: str | Path,
        max_len: int,
        *,
        pad_to: int | None = None,
        min_len: int = 3,
    ) -> None:
        from tokenizers import Tokenizer

        try:  # one read of the file, for tokenizers and for the fast path's spec
            text = Path(tokenizer_json).read_text(encoding="utf-8")
            self.tokenizer = Tokenizer.from_str(text)
        except Exception as exc:  # tokenizers raises a bare Exception for bad files
            raise UserError(
                f"'{tokenizer_json}' is not a readable tokenizer.json ({exc}); re-export the bundle"
            ) from exc
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_len)
        self.max_len, self.pad_to, self.min_len = max_len, pad_to, min_len
        self.fast = BertWordPiece.from_spec(json.loads(text), max_len)

    def ids(self, text: str) -> list[int]:
        """The text's token ids, truncated to ``max_len`` (the fast path where it is exact)."""
        if self.fast is not None:
            ids = self.fast.ids(text)
            if ids is not None:
                return ids
        return self.tokenizer.encode(text).ids

    def feed(self, text: str) -> dict[str, np.ndarray]:
        ids = self.ids(text)
        length = self.pad_to or max(len(ids), self.min_len)
        input_ids = np.zeros((1, length), dtype=np.int64)
        mask = np.zeros((1, length), dtype=np.int64)
        n = min(len(ids), length)
        input_ids[0, :n] = ids[:n]
        mask[0, :n] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def feeds(self, texts: list[str]) -> list[dict[str, np.ndarray]]:
        return [self.feed(t) for t in texts]
