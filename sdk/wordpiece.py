"""A pure-Python fast path for BERT's uncased WordPiece, exact on plain ASCII text.

``tokenizers`` spends 15-35 us per short sentence (normalizer, offsets, the Encoding
object); on a student that runs in ~200 us that is a tenth of ``predict()``. For a
tokenizer.json that is exactly BERT's recipe (BertNormalizer with lowercasing, the
BertPreTokenizer, WordPiece, [CLS] A [SEP]), ASCII text needs no Unicode tables: lowercase,
split into runs of letters/digits and single punctuation marks, then greedy longest-match
pieces, memoized per word. Text outside that (non-ASCII, control characters, an added
token such as "[MASK]" written in it) returns None and goes through ``tokenizers``.
"""

from __future__ import annotations

import re
from typing import Any

# ASCII control characters that BertNormalizer's clean_text drops (tab, LF, CR are spaces)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# after lowercasing: runs of letters and digits, or one punctuation mark (every printable
# ASCII character that is neither is punctuation to BERT's pre-tokenizer)
_WORDS = re.compile(r"[a-z0-9]+|[^a-z0-9 \t\n\r]")
_CACHE_WORDS = 50_000


class BertWordPiece:
    """Token ids of [CLS] text [SEP], truncated to ``max_len`` tokens as tokenizers does."""

    def __init__(self, spec: dict[str, Any], max_len: int, ends: tuple[int, int]) -> None:
        model = spec["model"]
        self.vocab: dict[str, int] = model["vocab"]
        self.unk = self.vocab[model["unk_token"]]
        self.prefix = model.get("continuing_subword_prefix", "##")
        self.max_chars = model.get("max_input_chars_per_word", 100)
        self.cls, self.sep = ends
        self.room = max_len - 2
        added = [t["content"] for t in spec.get("added_tokens") or []]
        self._added = re.compile("|".join(map(re.escape, added)), re.I) if added else None
        self._pieces: dict[str, list[int]] = {}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], max_len: int) -> BertWordPiece | None:
        """The fast path for this tokenizer.json, or None when it is not BERT's recipe."""
        try:
            norm, pre, model = spec["normalizer"], spec["pre_tokenizer"], spec["model"]
            ends = _special_ids(spec["post_processor"])
            ok = (
                norm["type"] == "BertNormalizer"
                and norm.get("lowercase") is True
                and norm.get("clean_text") is True
                and pre["type"] == "BertPreTokenizer"
                and model["type"] == "WordPiece"
                and model["unk_token"] in model["vocab"]
                and ends is not None
                and max_len >= 3
            )
        except (KeyError, TypeError):
            return None
        return cls(spec, max_len, ends) if ok else None

    def ids(self, text: str) -> list[int] | None:
        """[CLS] + pieces + [SEP], or None when ``text`` needs the full tokenizer."""
        if not text.isascii() or _CONTROL.search(text):
            return None
        if self._added is not None and self._added.search(text):
            return None
        pieces = self._pieces
        out = [self.cls]
        for word in _WORDS.findall(text.lower()):
            got = pieces.get(word)
            if got is None:
                got = self._word(word)
                if len(pieces) >= _CACHE_WORDS:
                    pieces.clear()
                pieces[word] = got
            out.extend(got)
        del out[self.room + 1 :]
        out.append(self.sep)
        return out

    def _word(self, word: str) -> list[int]:
        """Greedy longest-match-first pieces of one word (all of it [UNK] if any part fails)."""
        if len(word) > self.max_chars:
            return [self.unk]
        vocab, out, start = self.vocab, [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in vocab:
                    out.append(vocab[piece])
                    start = end
                    break
            else:
                return [self.unk]
        return out


def _special_ids(post: dict[str, Any] | None) -> tuple[int, int] | None:
    """([CLS] id, [SEP] id) of a post-processor that makes [CLS] A [SEP] of one text."""
    if not post:
        return None
    if post.get("type") == "BertProcessing":
        return post["cls"][1], post["sep"][1]
    if post.get("type") != "TemplateProcessing":
        return None
    single = post.get("single") or []
    shape = [next(iter(item)) for item in single]
    if shape != ["SpecialToken", "Sequence", "SpecialToken"]:
        return None
    specials = post.get("special_tokens") or {}
    ends = []
    for item in (single[0], single[2]):
        ids = specials.get(item["SpecialToken"]["id"], {}).get("ids") or []
        if len(ids) != 1:
            return None
        ends.append(ids[0])
    return ends[0], ends[1]
