"""Distillation and fine-tuning: every loss term trains, a killed run resumes to identical
weights and never replaces an earlier good output, and bad input is one clear line."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from pocketbert.converters.distill import DistillConfig, run_distill
from pocketbert.converters.distill_loss import LossWeights
from pocketbert.converters.students import StudentSpec
from pocketbert.converters.train_loop import TrainConfig
from pocketbert.core.errors import UserError

FAST = TrainConfig(epochs=1, batch_size=16, max_seq_len=32, checkpoint_every=0)


@pytest.mark.parametrize(
    ("family", "loss"),
    [
        ("squeezebert", LossWeights(ce=1.0)),
        ("squeezebert", LossWeights(ce=0.0, kd=1.0, temperature=4.0)),
        ("mobilebert", LossWeights(ce=0.0, hidden=1.0)),
        (
            "squeezebert",
            LossWeights(ce=0.0, attention=1.0),
        ),  # SqueezeBERT returns scores, not probabilities
        ("mobilebert", LossWeights(ce=1.0, kd=1.0, hidden=1.0, attention=1.0)),
    ],
)
def test_run_distill_writes_a_student_with_any_loss_term(
    family, loss, tiny_models, reviews_csv, tmp_path
):
    cfg = DistillConfig(student=StudentSpec(family), loss=loss, train=FAST)
    summary = run_distill(tiny_models["bert"], reviews_csv, tmp_path / "s", cfg, quiet=True)
    assert summary["history"][0]["loss"] > 0
    assert 0 <= summary["test_accuracy"] <= 1 and summary["examples"]["test"] == 16
    assert (tmp_path / "s" / "model.safetensors").is_file()


def test_two_stage_and_unlabelled_text(tiny_models, reviews_csv, tmp_path):
    from pocketbert.core.texts import BUILTIN

    (tmp_path / "extra.txt").write_text("\n".join(BUILTIN[:16]))
    cfg = DistillConfig(
        student=StudentSpec("squeezebert"),
        two_stage=True,
        unlabelled=str(tmp_path / "extra.txt"),
        augment=2,
        train=TrainConfig(epochs=2, batch_size=16, max_seq_len=32, checkpoint_every=0),
    )
    summary = run_distill(tiny_models["bert"], reviews_csv, tmp_path / "s", cfg, quiet=True)
    stage1, stage2 = summary["loss"]
    assert stage1["ce"] == stage1["kd"] == 0 and stage1["hidden"] > 0
    assert stage2["hidden"] == stage2["attention"] == 0 and stage2["kd"] > 0
    assert summary["examples"]["unlabelled"] == 16 + 2 * summary["examples"]["train"]


def test_two_stages_by_default_when_the_loss_has_both_kinds_of_terms():
    three = TrainConfig(epochs=3)
    stages = DistillConfig(train=three).schedule()  # default loss: ce, kd, hidden, attention
    assert [w.needs_internals for w in stages] == [True, False, False]
    assert stages[0].ce == stages[0].kd == 0 and stages[1].ce == stages[1].kd == 1
    for one_stage in (
        DistillConfig(train=three, two_stage=False),
        DistillConfig(train=three, loss=LossWeights(ce=1.0, kd=1.0)),
        DistillConfig(train=three, loss=LossWeights(ce=0.0, hidden=1.0, attention=1.0)),
        DistillConfig(train=TrainConfig(epochs=1)),
    ):
        assert len(set(one_stage.schedule())) == 1


def test_augmented_text_needs_a_distillation_term(tiny_models, reviews_csv, tmp_path):
    with pytest.raises(UserError, match="augment=-1"):
        DistillConfig(augment=-1)
    cfg = DistillConfig(loss=LossWeights(ce=1.0), augment=1, train=FAST)
    with pytest.raises(UserError, match="needs a distillation term"):
        run_distill(tiny_models["bert"], reviews_csv, tmp_path / "s", cfg, quiet=True)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("two_stage", [False, True])
def test_logit_distillation_runs_the_teacher_once_not_every_epoch(
    two_stage, tiny_models, reviews_csv, tmp_path
):
    import torch

    from pocketbert.converters.distill import load_classifier
    from pocketbert.converters.students import build_student, student_config
    from pocketbert.converters.teacher_cache import teacher_logits
    from pocketbert.converters.train_loop import encode, train
    from pocketbert.core.data import load_data

    teacher, tokenizer, labels, _ = load_classifier(tiny_models["bert"])
    data = load_data(reviews_csv, teacher_labels=labels)
    examples = encode(tokenizer, *data.ids("train"), 32)
    calls = []
    teacher.register_forward_hook(lambda *_: calls.append(1))
    student = build_student(teacher, student_config(teacher.config, StudentSpec("squeezebert")))
    cfg = TrainConfig(epochs=3, batch_size=16, max_seq_len=32, checkpoint_every=0)
    train(
        student,
        teacher,
        examples,
        examples[:8],
        [LossWeights(ce=0, hidden=1) if two_stage else LossWeights(ce=0, kd=1)]
        + [LossWeights(ce=0, kd=1)] * 2,
        cfg,
        tmp_path,
        quiet=True,
        say=lambda _: None,
    )
    live = len(examples) // 16 if two_stage else 0  # an epoch of hidden states: full batches, live
    assert len(calls) == -(-len(examples) // 128) + live  # one pass in batches of 128, not 3 epochs
    # cached logits are the teacher's, in the examples' order, whatever the batching
    cached = torch.load(tmp_path / "teacher_logits.pt")
    ids, mask = torch.tensor([examples[5][0]]), torch.ones(1, len(examples[5][0]), dtype=torch.long)
    assert torch.allclose(
        cached[5], teacher(input_ids=ids, attention_mask=mask).logits[0], atol=1e-5
    )
    assert torch.allclose(cached, teacher_logits(teacher, examples, batch_size=7), atol=1e-5)


def test_finetune_turns_an_encoder_into_a_classifier(tiny_embedder, reviews_csv, tmp_path):
    from pocketbert.converters.finetune import run_finetune

    summary = run_finetune(tiny_embedder, reviews_csv, tmp_path / "t", FAST, quiet=True)
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "positive"} and summary["labels"] == [
        "negative",
        "positive",
    ]


def test_finetune_twice_with_one_seed_gives_the_same_weights(tiny_embedder, reviews_csv, tmp_path):
    """The new head's random init is seeded too: whatever the process drew before."""
    import torch

    from pocketbert.converters.finetune import run_finetune

    for name in ("a", "b"):
        torch.rand(7)  # another draw from the global generator between the two runs
        run_finetune(tiny_embedder, reviews_csv, tmp_path / name, FAST, quiet=True)
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


CHILD = """
import sys, warnings, logging
warnings.filterwarnings("ignore"); logging.disable(logging.WARNING)
from pocketbert.converters.distill import DistillConfig, run_distill
from pocketbert.converters.distill_loss import LossWeights
from pocketbert.converters.students import StudentSpec
from pocketbert.converters.train_loop import TrainConfig
teacher, data, out, resume, logits_only = sys.argv[1:6]
loss = LossWeights(ce=1.0, kd=1.0) if logits_only == "1" else LossWeights(ce=1, kd=1, hidden=1, attention=1)
cfg = DistillConfig(student=StudentSpec("squeezebert"), loss=loss, augment=0,
                    train=TrainConfig(epochs=2, batch_size=8, max_seq_len=32, checkpoint_every=3, seed=7))
run_distill(teacher, data, out, cfg, resume=resume == "1", quiet=True)
"""


def _child(teacher, data, out, logits_only, resume=False):
    flags = ["1" if resume else "0", "1" if logits_only else "0"]
    args = [sys.executable, "-c", CHILD, str(teacher), str(data), str(out), *flags]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize(
    "logits_only",
    [False, pytest.param(True, marks=pytest.mark.slow)],  # the second: pytest -m slow
    ids=["teacher-each-step", "cached-logits"],
)
def test_resume_after_sigkill_ends_with_identical_weights(
    tiny_models, reviews_csv, tmp_path, logits_only
):
    teacher = tiny_models["bert"]
    reference = _child(teacher, reviews_csv, tmp_path / "reference", logits_only)
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()[-2000:]
    expected = load_file(tmp_path / "reference" / "model.safetensors")

    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"earlier": "good"}')  # an earlier good result
    child = _child(teacher, reviews_csv, out, logits_only)
    latest = tmp_path / ".out.partial" / "checkpoints" / "latest"
    deadline = time.monotonic() + 300
    while not latest.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert (out / "summary.json").read_text() == '{"earlier": "good"}'

    resumed = _child(teacher, reviews_csv, out, logits_only, resume=True)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    got = load_file(out / "model.safetensors")
    assert got.keys() == expected.keys()
    assert all((got[k] == expected[k]).all() for k in expected)
    assert not (tmp_path / ".out.partial").exists()


def test_resume_refuses_a_checkpoint_of_another_run(tiny_models, reviews_csv, tmp_path):
    out = tmp_path / "s"
    with pytest.raises(UserError, match="nothing to resume"):
        run_distill(
            tiny_models["bert"],
            reviews_csv,
            out,
            DistillConfig(train=FAST),
            resume=True,
            quiet=True,
        )
    work = tmp_path / ".s.partial"
    work.mkdir()
    (work / "run.json").write_text(json.dumps({"seed": "another run"}))
    with pytest.raises(UserError, match="from another run"):
        run_distill(
            tiny_models["bert"],
            reviews_csv,
            out,
            DistillConfig(train=FAST),
            resume=True,
            quiet=True,
        )


def test_teacher_and_student_with_different_tokenizers_is_user_error(
    tiny_models, reviews_csv, tmp_path
):
    from random_models import save_random_model

    from pocketbert.examples import minilm_path

    other = save_random_model("bert", tmp_path / "other", tokenizer_from=minilm_path())
    with pytest.raises(UserError, match="different tokenizer"):
        run_distill(
            tiny_models["bert"],
            reviews_csv,
            tmp_path / "s",
            DistillConfig(student=str(other), train=FAST),
            quiet=True,
        )


def test_encoder_teacher_and_label_mismatch_are_user_errors(tiny_embedder, tiny_models, tmp_path):
    rows = [(f"text {i}", ("a", "b", "c")[i % 3]) for i in range(30)]
    path = tmp_path / "three.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([("text", "label"), *rows])
    with pytest.raises(UserError, match="not a classifier"):
        run_distill(tiny_embedder, path, tmp_path / "s", quiet=True)
    with pytest.raises(UserError, match="not among the teacher's labels"):
        run_distill(tiny_models["bert"], path, tmp_path / "s", quiet=True)


def test_output_that_is_not_a_pocketbert_result_is_never_replaced(
    tiny_models, reviews_csv, tmp_path
):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not an earlier pocketbert result"):
        run_distill(tiny_models["bert"], reviews_csv, tmp_path / "mine", quiet=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def _cli(*argv):
    import argparse

    from pocketbert.cli import distill as cli_distill

    parser = argparse.ArgumentParser(prog="pocketbert")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true")
    common.add_argument("--json", action="store_true")
    cli_distill.add_parsers(parser.add_subparsers(dest="command", required=True), common)
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_distill_dry_run_and_bad_input(tiny_models, reviews_csv, tmp_path, capsys):
    assert (
        _cli(
            "distill", "--teacher", str(tiny_models["bert"]), "--student", "mobilebert", "--dry-run"
        )
        == 0
    )
    assert "GFLOPs at seq 128" in capsys.readouterr().out
    with pytest.raises(UserError, match="unknown loss term"):
        _cli(
            "distill",
            "--teacher",
            str(tiny_models["bert"]),
            "--data",
            str(reviews_csv),
            "-o",
            str(tmp_path / "o"),
            "--loss",
            "ce=1,focal=2",
        )
    with pytest.raises(UserError, match="unknown student 'albert'"):
        _cli(
            "distill",
            "--teacher",
            str(tiny_models["bert"]),
            "--data",
            str(reviews_csv),
            "-o",
            str(tmp_path / "o"),
            "--student",
            "albert",
        )
    assert (
        _cli(
            "distill",
            "--teacher",
            str(tiny_models["bert"]),
            "--data",
            str(reviews_csv),
            "-o",
            str(tmp_path / "o"),
            "--epochs",
            "1",
            "--max-seq-len",
            "32",
            "--json",
            "--loss",
            "kd=1",
            "--augment",
            "1",
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["student_family"] == "squeezebert"
    assert summary["examples"]["unlabelled"] == summary["examples"]["train"]  # one variant each


def test_unwritable_cache_dir_is_user_error_before_any_output(tiny_models, reviews_csv, tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    cfg = DistillConfig(
        loss=LossWeights(kd=1.0), train=FAST, cache_dir=str(tmp_path / "a-file" / "c")
    )
    with pytest.raises(UserError, match="cache directory"):
        run_distill(tiny_models["bert"], reviews_csv, tmp_path / "s", cfg, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_students_on_the_same_text_share_the_teachers_logits(tiny_models, reviews_csv, tmp_path):
    cfg = DistillConfig(loss=LossWeights(kd=1.0), train=FAST, cache_dir=str(tmp_path / "cache"))
    written = []
    for family in ("squeezebert", "mobilebert"):
        run_distill(
            tiny_models["bert"],
            reviews_csv,
            tmp_path / family,
            DistillConfig(**{**cfg.__dict__, "student": StudentSpec(family)}),
            quiet=True,
        )
        written.append({p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()})
    assert len(written[0]) == 1 and written[1] == written[0]  # the second run read, not wrote


@pytest.mark.parametrize(
    ("family", "freeze", "frozen"),
    [
        ("squeezebert", None, True),  # the rule: its table is the teacher's own
        ("mobilebert", None, False),  # the rule: its table is a projection, so it trains
        ("squeezebert", False, False),
        ("mobilebert", True, True),
    ],
)
def test_word_embeddings_freeze_by_the_rule_or_the_flag_and_the_rest_trains(
    family, freeze, frozen, tiny_models, reviews_csv, tmp_path
):
    from pocketbert.converters.distill import load_classifier
    from pocketbert.converters.students import build_student, student_config

    teacher, *_ = load_classifier(tiny_models["bert"])
    start = build_student(teacher, student_config(teacher.config, StudentSpec(family)), seed=0)
    table = start.get_input_embeddings().weight.detach().clone()
    head = start.classifier.weight.detach().clone()
    cfg = DistillConfig(student=StudentSpec(family), train=FAST, freeze_embeddings=freeze)
    summary = run_distill(tiny_models["bert"], reviews_csv, tmp_path / "s", cfg, quiet=True)
    weights = load_file(tmp_path / "s" / "model.safetensors")
    got = next(v for k, v in weights.items() if k.endswith("word_embeddings.weight"))
    assert not (weights["classifier.weight"] == head).all()  # the rest trains either way
    assert summary["history"][0]["loss"] > 0
    assert got.shape == table.shape and bool((got == table).all()) is frozen
    assert summary["frozen_embeddings"] is frozen
