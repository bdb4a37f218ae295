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


def test_builtin_set_is_real_varied_english():
    assert len(BUILTIN) >= 48 and len(set(BUILTIN)) == len(BUILTIN)


def test_review_sentences_are_a_fixed_sample_of_clean_imdb_sentences():
    import pytest

    from pocketbert.core.errors import UserError
    from pocketbert.examples import review_sentences

    first, again = review_sentences(200, seed=3), review_sentences(200, seed=3)
    assert first == again and len(set(first)) == 200
    assert all(4 <= len(s.split()) <= 50 and "<br" not in s for s in first)
    with pytest.raises(UserError, match="review sentences"):
        review_sentences(10**7)
