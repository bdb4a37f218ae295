"""What a finished run reports: per-class test scores and lost classes, the speed-up on the
task's own test sentences, the task text in the model directory; and the data that must
not pass silently (a class of a few examples, too little data to distill)."""

import csv
import json
import time

import pytest
import torch
from random_models import write_labelled_csv

from pocketbert.converters.evaluation import compare, latency_on_sentences, speed_fields
from pocketbert.core.data import LabelledData, load_data, stratified_split
from pocketbert.core.data_warnings import rare_class_warnings, small_data_warning
from pocketbert.core.metrics import class_scores
from pocketbert.core.task_text import read_task_text

LABELS = ["a", "b", "rare"]


def test_compare_keeps_macro_f1_and_names_a_class_the_student_lost():
    truth = [0] * 10 + [1] * 10 + [2] * 3
    teacher = class_scores(truth, truth, 3)
    student = class_scores([0] * 10 + [1] * 10 + [1] * 3, truth, 3)  # never predicts "rare"
    got = compare(student, teacher, LABELS)
    assert got["lost_classes"] == ["rare"]
    assert got["accuracy_kept"] == round(20 / 23, 4)
    assert got["macro_f1_kept"] < got["accuracy_kept"]  # accuracy hides the lost class
    assert compare(teacher, teacher, LABELS)["lost_classes"] == []


def test_latency_interleaves_both_models_and_restores_threads(tiny_models):
    from pocketbert.converters.distill import load_classifier

    teacher, tokenizer, _, _ = load_classifier(tiny_models["bert"])
    student, _, _, _ = load_classifier(tiny_models["bert"])
    teacher.register_forward_pre_hook(lambda *_: time.sleep(0.004))  # a slower teacher
    teacher.train()  # put back as it was found
    before = torch.get_num_threads()
    texts = [f"sentence number {i} " + "word " * (i % 9) for i in range(30)]
    timed = latency_on_sentences({"teacher": teacher, "student": student}, tokenizer, texts, 32)
    assert torch.get_num_threads() == before and teacher.training
    fields = speed_fields(timed, threads=1)
    assert fields["latency_sentences"] == 25  # 30, the first 5 untimed
    assert fields["teacher_p50_ms_on_test_sentences"] >= 4.0
    assert fields["speedup_on_test_sentences"] > 1.0


def test_distill_summary_has_per_class_scores_speed_up_and_task_text(
    tiny_models, reviews_csv, tmp_path
):
    from pocketbert.converters.distill import DistillConfig, run_distill
    from pocketbert.converters.distill_loss import LossWeights
    from pocketbert.converters.train_loop import TrainConfig

    cfg = DistillConfig(
        loss=LossWeights(ce=1.0, kd=1.0),
        augment=0,
        train=TrainConfig(epochs=1, batch_size=16, max_seq_len=32, checkpoint_every=0),
    )
    lines = []
    summary = run_distill(tiny_models["bert"], reviews_csv, tmp_path / "s", cfg, say=lines.append)
    written = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert written == summary
    for who in ("", "teacher_"):
        assert set(summary[f"{who}test_f1"]) == {"negative", "positive"}
        assert 0 <= summary[f"{who}test_macro_f1"] <= 1
    assert "macro_f1_kept" in summary and isinstance(summary["lost_classes"], list)
    assert summary["speedup_on_test_sentences"] > 0
    assert summary["teacher_p50_ms_on_test_sentences"] > 0
    assert any(line.startswith("speed-up on") for line in lines)
    assert any(line.startswith("per-class F1") for line in lines)
    assert any("only 128 training rows" in w for w in summary["warnings"])
    task = read_task_text(tmp_path / "s")
    data = load_data(reviews_csv)
    assert task is not None and task.labels == data.labels
    assert {t for t, _ in task.verify} <= {t for t, _ in data.test}
    assert set(task.calibration) <= {t for t, _ in data.train}


def test_a_class_of_a_few_examples_is_named_with_what_the_split_does(tmp_path):
    rows = [(f"common text {i}", "a" if i % 2 else "b") for i in range(200)]
    rows += [(f"rare text {i}", "rare") for i in range(3)]
    data = load_data(write_labelled_csv(tmp_path / "d.csv", rows))
    assert data.counts("train")["rare"] == 3  # the split kept the rare class whole in train
    (line,) = rare_class_warnings(data)
    assert "class 'rare' has only 3 examples (3 train, 0 validation, 0 test)" in line
    assert "keeps a class this small whole in train" in line and "\n" not in line
    seven = [(f"seven {i}", "rare") for i in range(7)]
    seven_data = load_data(write_labelled_csv(tmp_path / "e.csv", rows[:200] + seven))
    (line,) = rare_class_warnings(seven_data)
    assert "rest on 1 and 1 sentences" in line
    # given splits: the line says the given files hold none of it
    given = LabelledData(rows[:-1], rows[:10], rows[10:20], ["a", "b", "rare"], "mem", "0")
    (line,) = rare_class_warnings(given)
    assert "the given validation and test files hold none of it" in line
    assert rare_class_warnings(load_data(write_labelled_csv(tmp_path / "f.csv", rows[:200]))) == []
    # the split really does that: below 6 examples nothing goes to validation or test
    for n, held_out in ((5, 0), (6, 2)):
        _, val, test = stratified_split([(f"t{i}", "x") for i in range(n)], seed=0)
        assert len(val) + len(test) == held_out


def test_too_little_data_to_distill_is_a_warning_with_the_number():
    small = LabelledData([(f"t{i}", "a") for i in range(120)], [], [], ["a"], "mem", "0")
    assert "only 120 training rows" in small_data_warning(small)
    big = LabelledData([(f"t{i}", "a") for i in range(800)], [], [], ["a"], "mem", "0")
    assert small_data_warning(big) is None


def test_finetune_reports_macro_f1_the_rare_class_and_why_it_learned_nothing(
    tiny_embedder, reviews_csv, tmp_path
):
    from pocketbert.converters.finetune import run_finetune
    from pocketbert.converters.train_loop import TrainConfig

    with reviews_csv.open(encoding="utf-8") as fh:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(fh)]
    rows = [(t, "negative") for t, _ in rows[:144]] + [(t, "positive") for t, _ in rows[144:]]
    rows += [("a rare sentence", "odd"), ("another rare one", "odd")]
    cfg = TrainConfig(epochs=1, batch_size=16, max_seq_len=32, checkpoint_every=0)
    summary = run_finetune(
        tiny_embedder, write_labelled_csv(tmp_path / "d.csv", rows), tmp_path / "t", cfg, quiet=True
    )
    assert set(summary["test_f1"]) == {"negative", "odd", "positive"}
    assert 0 <= summary["test_macro_f1"] <= 1
    assert summary["defaults"]["select_by"] == "macro_f1"
    assert summary["warning"].startswith("the teacher's validation accuracy")
    assert "likely cause: too little data (" in summary["warning"]
    assert any("class 'odd' has only 2 examples" in w for w in summary["warnings"])
    assert (tmp_path / "t" / "task_text.json").is_file()


@pytest.mark.parametrize("rows", [150, 1000])
def test_likely_cause_reads_the_run(rows):
    from pocketbert.core.defaults import likely_cause

    cause = likely_cause(rows, steps=rows // 32, losses=[0.69], classes=2, lr=5e-5)
    assert ("too little data" in cause) == (rows < 200)
    assert ("too few optimizer steps (31" in cause) == (rows == 1000)
