"""Labelled data: formats, the seeded stratified split, and bad input."""

import importlib.util
import json
import subprocess
import sys
from collections import Counter

import pytest

from pocketbert.core.data import label_order, load_data, stratified_split
from pocketbert.core.errors import UserError
from pocketbert.core.texts import BUILTIN

ROWS = [(t, "positive" if i % 2 else "negative") for i, t in enumerate(BUILTIN)]


def _csv(path, rows, header=("text", "label"), sep=","):
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=sep)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_tsv_jsonl_read_the_same_examples(tmp_path):
    a = load_data(_csv(tmp_path / "d.csv", ROWS))
    b = load_data(_csv(tmp_path / "d.tsv", ROWS, sep="\t"))
    (tmp_path / "d.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in ROWS)
    )
    c = load_data(tmp_path / "d.jsonl")
    assert a.train == b.train == c.train and a.test == b.test == c.test
    assert a.labels == ["negative", "positive"]
    assert len(a.train) + len(a.validation) + len(a.test) == len(ROWS)


def test_split_is_seeded_and_stratified():
    rows = [(f"text {i}", str(i % 3)) for i in range(300)]
    first, again = stratified_split(rows, seed=0), stratified_split(rows, seed=0)
    assert first == again
    assert first != stratified_split(rows, seed=1)
    train, val, test = first
    assert (len(train), len(val), len(test)) == (240, 30, 30)
    assert Counter(y for _, y in val) == {"0": 10, "1": 10, "2": 10}


def test_multiline_csv_text_and_named_columns(tmp_path):
    rows = [(f"line one\nline two {i}", f"{i % 2}") for i in range(20)]
    data = load_data(_csv(tmp_path / "d.csv", rows, header=("review", "sentiment")))
    assert data.labels == ["0", "1"]
    assert any("\n" in t for t, _ in data.train)
    other = load_data(
        _csv(tmp_path / "e.csv", rows, header=("body", "y")), text_column="body", label_column="y"
    )
    assert len(other.train) == len(data.train)


def test_directory_of_split_files_keeps_its_split(tmp_path):
    _csv(tmp_path / "train.csv", ROWS[:40])
    _csv(tmp_path / "dev.csv", ROWS[40:50])
    _csv(tmp_path / "test.csv", ROWS[50:])
    data = load_data(tmp_path)
    assert data.train == ROWS[:40] and data.validation == ROWS[40:50] and data.test == ROWS[50:]


def test_numeric_labels_sort_numerically_and_teacher_labels_win():
    assert label_order({"10", "2", "1"}) == ["1", "2", "10"]
    assert label_order({"positive", "negative"}, ["positive", "negative"]) == [
        "positive",
        "negative",
    ]
    assert label_order({"a", "b"}, ["LABEL_0", "LABEL_1"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (
            "text,label\nfine film,positive\nbad film,\n",
            ".csv",
            "1 row\\(s\\) with no label in column 'label' \\(empty, nan or null: row 3\\)",
        ),
        ("text,label\n", ".csv", "holds no examples"),
        ("words,label\na,b\n", ".csv", "has no text column"),
        ("text,label\na,pos\nb,pos\n", ".csv", "only one label"),
        ('{"text": "a", "label": "x"}\nnot json\n', ".jsonl", "line 2 is not JSON"),
        ("a,b", ".parquet", "unknown suffix"),
    ],
)
def test_bad_data_is_one_line_user_error(tmp_path, content, suffix, message):
    path = tmp_path / f"d{suffix}"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as info:
        load_data(path)
    assert "\n" not in str(info.value)


def test_unreadable_or_missing_data_is_user_error(tmp_path):
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(UserError, match="UTF-8"):
        load_data(tmp_path / "bin.csv")
    with pytest.raises(UserError, match="does not exist"):
        load_data(tmp_path / "missing.csv")


def test_inconsistent_labels_are_user_errors(tmp_path):
    _csv(tmp_path / "train.csv", ROWS[:40])
    _csv(tmp_path / "test.csv", [("x", "neutral"), *ROWS[40:]])
    with pytest.raises(UserError, match="never occur in train"):
        load_data(tmp_path)
    with pytest.raises(UserError, match="not among the teacher's labels"):
        load_data(_csv(tmp_path / "d.csv", ROWS), teacher_labels=["bad", "good"])


@pytest.mark.skipif(
    importlib.util.find_spec("datasets") is not None, reason="datasets is installed"
)
def test_datasets_directory_without_datasets_package_is_user_error(tmp_path):
    (tmp_path / "dataset_dict.json").write_text('{"splits": ["train"]}')
    with pytest.raises(UserError, match="install the 'datasets' package"):
        load_data(tmp_path)


def test_data_module_does_not_import_torch():
    code = "import sys, pocketbert.core.data; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("suffix", "missing"),
    [(".csv", "nan"), (".csv", "NaN"), (".csv", ""), (".jsonl", "NaN"), (".jsonl", "null")],
)
def test_missing_labels_are_refused_or_dropped_never_a_class_when_cell_is(
    tmp_path, suffix, missing
):
    rows = [(t, "nan" if i in (3, 8, 9) else y) for i, (t, y) in enumerate(ROWS)]
    path = tmp_path / f"d{suffix}"
    if suffix == ".csv":
        _csv(path, [(t, missing if y == "nan" else y) for t, y in rows])
    else:  # NaN and null as json.dumps writes them
        cell = {"NaN": "NaN", "null": "null"}[missing]
        path.write_text(
            "".join(
                f'{{"text": {json.dumps(t)}, "label": {cell if y == "nan" else json.dumps(y)}}}\n'
                for t, y in rows
            )
        )
    first = 5 if suffix == ".csv" else 4  # CSV rows count the header
    with pytest.raises(UserError, match=f"3 row.*no label.*row {first}, .*--drop-unlabelled"):
        load_data(path)
    data = load_data(path, drop_unlabelled=True)
    assert data.labels == ["negative", "positive"] and data.dropped == 3
    assert len(data.train) + len(data.validation) + len(data.test) == len(ROWS) - 3
    assert sum(data.counts().values()) == len(data.train)
    assert "3 unlabelled rows dropped" in data.describe()
