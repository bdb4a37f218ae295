"""The torch-free task text record and classification metrics."""

import json

import pytest

from pocketbert.core.data import LabelledData
from pocketbert.core.errors import UserError
from pocketbert.core.metrics import class_scores, kept, lost_classes
from pocketbert.core.task_text import FILE, read_task_text, write_task_text


def test_macro_f1_shows_a_class_accuracy_hides():
    truth = [0] * 49 + [1] * 49 + [2] * 2
    never_two = [0] * 49 + [1] * 49 + [0] * 2
    scores = class_scores(never_two, truth, 3)
    assert scores["accuracy"] == pytest.approx(0.98)
    assert scores["f1"][2] == 0.0
    assert scores["macro_f1"] < 0.67
    perfect = class_scores(truth, truth, 3)
    assert perfect["macro_f1"] == 1.0 and perfect["support"] == [49, 49, 2]
    assert lost_classes(scores, perfect, ["a", "b", "c"]) == ["c"]
    assert kept(0.9, 0.0) is None and kept(0.45, 0.9) == 0.5


def test_task_text_keeps_calibration_and_verification_apart(tmp_path):
    train = [(f"train {i}", "pos" if i % 2 else "neg") for i in range(700)]
    test = [(f"test {i}", "pos" if i % 3 else "neg") for i in range(50)] + [("train 3", "pos")]
    data = LabelledData(train, [], test, ["neg", "pos"], "x.csv", "0" * 64)
    write_task_text(tmp_path, data, seed=1)
    record = read_task_text(tmp_path)
    assert len(record.calibration) == 512 and len(set(record.calibration)) == 512
    assert record.labelled and record.labels == ["neg", "pos"]
    verify_texts = {t for t, _ in record.verify}
    assert not verify_texts & set(record.calibration)
    assert len(verify_texts) == 50 + ("train 3" not in record.calibration)
    assert read_task_text(tmp_path / "elsewhere") is None


def test_a_damaged_task_text_record_is_one_line(tmp_path):
    (tmp_path / FILE).write_text(json.dumps({"version": 1, "calibration": 3}))
    with pytest.raises(UserError, match="not a task text record"):
        read_task_text(tmp_path)
