from pocketbert.core.texts import BUILTIN, read_texts


def test_read_texts_takes_txt_csv_tsv_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    (tmp_path / "a.csv").write_text('label,text\n1,"hello, world"\n0,bye\n')
    (tmp_path / "a.tsv").write_text("text\tlabel\nx y\t1\n")
    (tmp_path / "a.jsonl").write_text('{"text": "first"}\n\n{"text": "second", "label": 1}\n')
    assert read_texts(tmp_path / "a.txt") == ["one", "two"]
    assert read_texts(tmp_path / "a.csv") == ["hello, world", "bye"]
    assert read_texts(tmp_path / "a.tsv") == ["x y"]
    assert read_texts(tmp_path / "a.jsonl", limit=1) == ["first"]


STOPWORDS = {
    *("the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with"),
    *("is", "was", "are", "were", "be", "been", "it", "this", "that", "i", "my", "we"),
    *("our", "you", "your", "he", "she", "they", "them", "his", "her", "its", "not", "no"),
    *("so", "as", "by", "from", "than", "then", "there", "what", "why", "which", "who"),
    *("when", "all", "every", "more", "most", "very"),
}
POSITIVE = {
    "delight",
    "warm",
    "funny",
    "best",
    "loved",
    "superb",
    "charming",
    "wonderful",
    "lovely",
    "beautifully",
    "tender",
    "fascinating",
    "stunning",
    "friendly",
    "clean",
}
NEGATIVE = {
    "wooden",
    "clichéd",
    "crashes",
    "terrible",
    "slow",
    "cold",
    "tedious",
    "wastes",
    "confusing",
    "missing",
    "cheap",
    "exhausting",
    "lazy",
    "damaged",
    "rushed",
}


def _words(sentence):
    return [w.strip(".,;:?!'\"").lower() for w in sentence.split()]


def test_builtin_set_is_real_varied_english():
    words = [_words(s) for s in BUILTIN]
    flat = [w for ws in words for w in ws]
    lengths = sorted(len(ws) for ws in words)
    assert len(BUILTIN) >= 48 and len(set(BUILTIN)) == len(BUILTIN)  # no duplicates
    assert len({s.lower().rstrip(".?!") for s in BUILTIN}) == len(BUILTIN)  # nor near ones
    # varied: a large vocabulary, short and long sentences, no one opening for all
    assert len(set(flat)) >= 0.5 * len(flat) and len(set(flat)) >= 300
    assert len(set(lengths)) >= 5 and lengths[-1] - lengths[0] >= 5
    assert (
        max(sum(ws[0] == w for ws in words) for w in {ws[0] for ws in words}) <= len(BUILTIN) // 2
    )
    # English: function words make up a fair share, as in any English prose (not a word list)
    share = sum(w in STOPWORDS for w in flat) / len(flat)
    assert 0.2 <= share <= 0.6, share
    assert sum(any(w in STOPWORDS for w in ws) for ws in words) >= 0.9 * len(words)
    assert all(s[0].isupper() and s[-1] in ".?!" for s in BUILTIN)  # whole sentences
    # reviews of both sentiments, and sentences that are not reviews (questions, requests)
    assert sum(bool(POSITIVE & set(ws)) for ws in words) >= 8
    assert sum(bool(NEGATIVE & set(ws)) for ws in words) >= 8
    assert sum(s.endswith("?") for s in BUILTIN) >= 3


def test_review_sentences_are_a_fixed_sample_of_clean_imdb_sentences():
    import pytest

    from pocketbert.core.errors import UserError
    from pocketbert.examples import review_sentences

    first, again = review_sentences(200, seed=3), review_sentences(200, seed=3)
    assert first == again and len(set(first)) == 200
    assert all(4 <= len(s.split()) <= 50 and "<br" not in s for s in first)
    with pytest.raises(UserError, match="review sentences"):
        review_sentences(10**7)
