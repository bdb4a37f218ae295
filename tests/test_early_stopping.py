"""Best-epoch selection and early stopping: the model ends with the best validation epoch's
weights, stops after ``patience`` epochs without a better score, never picks a first-stage
epoch, and a resumed run keeps the same choice."""

import pytest
import torch

from pocketbert.converters import train_loop
from pocketbert.converters.distill_loss import LossWeights
from pocketbert.converters.train_loop import TrainConfig, train


@pytest.fixture(scope="module")
def classifier_data(tiny_models, reviews_csv):
    from pocketbert.converters.distill import load_classifier
    from pocketbert.core.data import load_data

    teacher, tokenizer, labels, _ = load_classifier(tiny_models["bert"])
    data = load_data(reviews_csv, teacher_labels=labels)
    examples = train_loop.encode(tokenizer, *data.ids("train"), 32)
    return teacher, examples[:48], examples[48:64]


def _student(teacher):
    from pocketbert.converters.students import StudentSpec, build_student, student_config

    return build_student(teacher, student_config(teacher.config, StudentSpec("bert")))


class Scripted:
    """Validation scores given in advance; records the student's weights at each epoch end."""

    def __init__(self, monkeypatch, scores):
        self.scores, self.weights = list(scores), []
        real = train_loop.predictions

        def predictions(model, examples, batch_size=128, accelerator=None):
            self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            return real(model, examples, batch_size, accelerator)

        def class_scores(pred, true, classes):
            score = self.scores[len(self.weights) - 1]
            return {"accuracy": score, "macro_f1": score / 2}

        monkeypatch.setattr(train_loop, "predictions", predictions)
        monkeypatch.setattr(train_loop, "class_scores", class_scores)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train(student, teacher, examples, val, schedule, work, resume=False, **cfg):
    config = TrainConfig(batch_size=8, max_seq_len=32, checkpoint_every=0, lr=5e-4, **cfg)
    return train(
        student,
        teacher,
        examples,
        val,
        schedule,
        config,
        work,
        resume=resume,
        quiet=True,
        say=lambda _: None,
    )


def test_a_worse_later_epoch_stops_the_run_and_the_best_weights_come_back(
    classifier_data, monkeypatch, tmp_path
):
    teacher, examples, val = classifier_data
    script = Scripted(monkeypatch, [0.60, 0.90, 0.70, 0.50, 0.95, 0.99])
    student = _student(teacher)
    result = _train(student, None, examples, val, [LossWeights(ce=1.0)] * 6, tmp_path, patience=2)
    assert result.best_epoch == 2 and result.stopped_early
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]  # epochs 5 and 6 never ran
    assert [r["val_accuracy"] for r in result.history] == [0.6, 0.9, 0.7, 0.5]
    assert not _same(script.weights[1], script.weights[3])  # training moved the weights
    assert _same(student.state_dict(), script.weights[1])  # ... and epoch 2's came back

    # resumed after the stop: nothing more is trained, the same epoch is kept
    again = _student(teacher)
    result = _train(
        again, None, examples, val, [LossWeights(ce=1.0)] * 6, tmp_path, resume=True, patience=2
    )
    assert len(script.weights) == 4 and result.best_epoch == 2
    assert _same(again.state_dict(), script.weights[1])


def test_patience_zero_runs_every_epoch_and_still_keeps_the_best(
    classifier_data, monkeypatch, tmp_path
):
    teacher, examples, val = classifier_data
    script = Scripted(monkeypatch, [0.5, 0.8, 0.6, 0.55])
    student = _student(teacher)
    schedule = [LossWeights(ce=1.0)] * 4
    result = _train(
        student, None, examples, val, schedule, tmp_path, patience=0, select_by="macro_f1"
    )
    assert len(result.history) == 4 and not result.stopped_early and result.best_epoch == 2
    assert _same(student.state_dict(), script.weights[1])


def test_the_first_stage_is_never_the_best_epoch(classifier_data, monkeypatch, tmp_path):
    teacher, examples, val = classifier_data
    script = Scripted(monkeypatch, [0.99, 0.40, 0.70, 0.60])  # stage 1 scores highest
    student = _student(teacher)
    stage1 = LossWeights(ce=0.0, hidden=1.0, attention=1.0)
    stage2 = LossWeights(ce=1.0, kd=1.0)
    result = _train(student, teacher, examples, val, [stage1] + [stage2] * 3, tmp_path)
    assert result.best_epoch == 3 and result.history[0]["stage"] == 1
    assert _same(student.state_dict(), script.weights[2])


def test_the_summary_records_the_history_and_the_epoch_kept(tiny_models, reviews_csv, tmp_path):
    import json

    from pocketbert.converters.finetune import run_finetune

    cfg = TrainConfig(epochs=3, batch_size=16, max_seq_len=32, checkpoint_every=0, patience=1)
    summary = run_finetune(tiny_models["bert"], reviews_csv, tmp_path / "t", cfg, quiet=True)
    written = json.loads((tmp_path / "t" / "summary.json").read_text())
    history = written["history"]
    assert 1 <= len(history) <= 3 and written["best_epoch"] in [r["epoch"] for r in history]
    best = max(history, key=lambda r: r["val_accuracy"])
    assert written["best_epoch"] == best["epoch"]  # the first of the best (ties: earliest)
    assert written["stopped_early"] == (len(history) < 3)
    assert {"val_accuracy", "val_macro_f1", "loss"} <= set(history[0])
    assert summary["train"]["patience"] == 1 and written["defaults"]["lr"] == 5e-5
