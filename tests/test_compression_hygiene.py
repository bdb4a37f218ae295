"""Transfer-set hygiene: MinHash LSH finds near duplicates (not merely similar text), the
train/test overlap, and a distillation drops them and says how many."""

import pytest

import pocketbert
from pocketbert.converters.transfer_hygiene import Dedup, near_duplicates, overlapping
from pocketbert.core.errors import UserError
from pocketbert.core.texts import BUILTIN

LONG = [
    "the film is a slow , sad and very beautiful portrait of a family that falls apart over one summer",
    "an overlong thriller whose plot twists can be seen coming from a mile away , but the cast is fun",
    "a sharp , funny script and two great lead performances make this the comedy of the year",
]


def test_near_duplicates_are_found_and_the_first_of_each_is_kept():
    edited = LONG[0].replace("very beautiful", "truly beautiful")  # one word changed
    texts = [LONG[0], LONG[1], edited, LONG[2], LONG[1].upper()]
    assert near_duplicates(texts, 0.6) == [2, 4]
    assert near_duplicates(LONG + BUILTIN[:20]) == []  # different sentences stay


def test_overlap_finds_training_rows_that_repeat_a_test_row():
    train = [LONG[1], "completely unrelated words about the weather today in town", LONG[2] + " !"]
    assert overlapping(train, [LONG[2], LONG[1]]) == [0, 2]
    assert overlapping(train, [LONG[0]]) == []
    with pytest.raises(UserError, match=r"similarity in \(0, 1\]"):
        Dedup(threshold=0)


def test_distillation_drops_test_overlap_and_repeated_unlabelled_lines(
    tiny_models, reviews_csv, tmp_path
):
    import csv

    rows = list(csv.reader(reviews_csv.open()))[1:]
    data = tmp_path / "data"
    data.mkdir()
    splits = {"train": rows[:100], "validation": rows[100:130], "test": rows[130:]}
    splits["train"] += splits["test"][:5]  # 5 test rows leaked into training
    for name, part in splits.items():
        with (data / f"{name}.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows([["text", "label"], *part])
    extra = tmp_path / "extra.txt"
    extra.write_text("\n".join([*LONG, LONG[0], splits["test"][7][0], *BUILTIN[:5]]))
    summary = pocketbert.distill(
        tiny_models["bert"], data, tmp_path / "s", student="bert", epochs=1, max_seq_len=32,
        checkpoint_every=0, unlabelled=extra, dedup=0.8, quiet=True,
    )  # fmt: skip
    h = summary["transfer_hygiene"]
    assert h["train_near_test"] >= 5 and h["unlabelled_near_duplicates"] == 1
    assert h["unlabelled_near_test"] == 1 and h["unlabelled_kept"] == len(LONG) + 5
    assert summary["examples"]["train"] == 105 - h["train_near_test"]
