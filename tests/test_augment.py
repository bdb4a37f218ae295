"""Augmented text: words swapped for their nearest neighbours in a word-embedding table."""

import torch

from pocketbert.converters.augment import augment, neighbours

VOCAB = {
    w: i
    for i, w in enumerate(["[PAD]", "good", "great", "bad", "awful", "film", "movie", "##s", "a"])
}


def _table() -> torch.Tensor:
    """Embeddings where good~great, bad~awful, film~movie (and '##s', 'a' far from all)."""
    table = torch.zeros(len(VOCAB), 4)
    for words, axis in ((("good", "great"), 0), (("bad", "awful"), 1), (("film", "movie"), 2)):
        for w in words:
            table[VOCAB[w], axis] = 1.0
    table[VOCAB["great"], 3] = 0.1  # not identical to 'good'
    table[VOCAB["##s"], 3] = table[VOCAB["a"], 3] = -1.0
    return table


def test_neighbours_are_the_nearest_whole_words_never_the_word_itself():
    found = neighbours(["good", "film", "unknown"], VOCAB, _table(), k=1)
    assert found == {"good": ["great"], "film": ["movie"]}  # '##s' and 'a' are never candidates


def test_every_known_word_is_swapped_at_p1_and_none_at_p0():
    texts = ["A good film !", "bad , 42 times"]
    swapped = augment(texts, VOCAB, _table(), variants=2, p=1.0, k=1)
    assert swapped == ["A great movie !"] * 2 + ["awful , 42 times"] * 2
    assert augment(texts, VOCAB, _table(), variants=3, p=0.0) == [
        t for t in texts for _ in range(3)
    ]
    assert augment(texts, VOCAB, _table(), variants=0) == []


def test_capitals_kept_and_seeded():
    texts = ["Good film, bad film."] * 20
    one = augment(texts, VOCAB, _table(), variants=2, p=0.5, k=2, seed=3)
    assert one == augment(texts, VOCAB, _table(), variants=2, p=0.5, k=2, seed=3)
    assert one != augment(texts, VOCAB, _table(), variants=2, p=0.5, k=2, seed=4)
    assert all(t.split()[0].capitalize() == t.split()[0] for t in one)
    assert {t.split()[0] for t in one} >= {"Good", "Great"}
    assert any(t != texts[0] for t in one) and any(t == texts[0] for t in one)
