"""Training input that must never pass silently: unlabelled rows, an output that overlaps an
input, a thread count out of range, a damaged cache or checkpoint, a chance-level teacher;
and the typed verbs (options objects, real signatures, no heavy imports)."""

import csv
import inspect
import json
import shutil
import subprocess
import sys

import pytest
from random_models import write_labelled_csv

import pocketbert
from pocketbert.cli.main import main
from pocketbert.core.data import LabelledData
from pocketbert.core.data_warnings import chance_warning
from pocketbert.core.errors import UserError
from pocketbert.core.progress import PlainBar, progress_bar
from pocketbert.training import DistillOptions, FinetuneOptions

FAST = ["--epochs", "1", "--max-seq-len", "32", "--batch-size", "16", "--checkpoint-every", "0"]


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _reviews(reviews_csv):
    with reviews_csv.open(encoding="utf-8") as fh:
        return [(r["text"], r["label"]) for r in csv.DictReader(fh)]


# --- typed verbs ---------------------------------------------------------------------------


def test_import_pocketbert_loads_no_torch_transformers_or_runtime():
    heavy = ("torch", "transformers", "onnxruntime", "executorch", "ai_edge_litert", "accelerate")
    code = (
        "import sys, pocketbert, pocketbert.training; "
        "pocketbert.DistillOptions(student='mobilebert', loss='kd=1', threads=1); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_verbs_show_their_real_parameters_to_help_and_ides():
    distill = inspect.signature(pocketbert.distill).parameters
    assert list(distill)[:4] == ["teacher", "data", "out", "options"]
    assert distill["options"].annotation == "DistillOptions | None"
    for name in ("student", "loss", "epochs", "threads", "drop_unlabelled", "cache_dir"):
        assert distill[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert distill["epochs"].default is None and distill["student"].default == "squeezebert"
    finetune = inspect.signature(pocketbert.finetune).parameters
    assert finetune["epochs"].default is None and finetune["lr"].default is None  # the rule's
    assert "student" not in finetune
    export = inspect.signature(pocketbert.export).parameters
    assert {"format", "precision", "max_seq_len", "calibration", "quiet"} <= set(export)
    assert "threads" in inspect.signature(pocketbert.load).parameters
    assert "options" in inspect.signature(pocketbert.profile).parameters
    assert set(pocketbert.__all__) >= {
        "DistillOptions",
        "FinetuneOptions",
        "distill",
        "export",
        "finetune",
        "load",
        "profile",
    }


def test_options_object_and_keywords_are_the_same_config():
    from pocketbert.converters.students import StudentSpec

    base = DistillOptions(student="mobilebert", loss="kd=1,hidden=0.5", knobs={"layers": 2})
    assert base.loss == {"ce": 0.0, "kd": 1.0, "hidden": 0.5, "attention": 0.0, "temperature": 2.0}
    config = base.distill_config()
    assert config.student == StudentSpec("mobilebert", "small", layers=2)
    assert config.loss.hidden == 0.5 and config.train.epochs is None  # chosen from the data
    assert FinetuneOptions(lr=5e-5).train_config().lr == 5e-5
    assert {f for f in StudentSpec.__dataclass_fields__} - {"family", "size"} == set(
        pocketbert.training.KNOBS
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threads": 0}, "--threads 0 is out of range"),
        ({"threads": 100_000}, "--threads 100000 is out of range"),
        ({"epochs": 0}, "epochs must be a whole number >= 1"),
        ({"loss": "kd=-1"}, "loss weights must be numbers >= 0"),
        ({"student": "albert"}, "unknown student 'albert'"),
        ({"knobs": {"depth": 2}}, "unknown student knob"),
        ({"augment": -1}, "augment=-1"),
        ({"focal": 2}, "unknown option\\(s\\) focal for DistillOptions"),
    ],
)
def test_bad_options_are_user_errors_before_any_work(options, message, tmp_path):
    with pytest.raises(UserError, match=message):
        pocketbert.distill(
            tmp_path / "missing", tmp_path / "missing.csv", tmp_path / "o", **options
        )
    assert list(tmp_path.iterdir()) == []


# --- the CLI -------------------------------------------------------------------------------


def test_cli_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pocketbert {pocketbert.__version__}"


@pytest.mark.parametrize("threads", ["-1", "0", "100000"])
@pytest.mark.parametrize("verb", ["distill", "finetune"])
def test_cli_threads_out_of_range_is_one_line_when_training(
    verb, threads, tiny_models, reviews_csv, tmp_path, capsys
):
    model = ["--teacher", tiny_models["bert"]] if verb == "distill" else [tiny_models["bert"]]
    argv = [verb, *model, "--data", reviews_csv, "-o", tmp_path / "o", "--threads", threads]
    code, _, err = _cli(capsys, *argv)
    assert code == 2 and f"--threads {threads} is out of range" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "case", ["output-is-teacher", "output-contains-data", "inside-teacher", "cache-inside-output"]
)
def test_cli_distill_refuses_an_output_that_overlaps_an_input(
    case, tiny_models, reviews_csv, tmp_path, capsys
):
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_models["bert"], teacher)
    before = {p.name: p.read_bytes() for p in teacher.iterdir()}
    data = reviews_csv
    extra = []
    if case == "output-is-teacher":
        out = teacher
    elif case == "output-contains-data":
        out = tmp_path / "work"
        out.mkdir()
        data = shutil.copy(reviews_csv, out / "reviews.csv")
        (out / "summary.json").write_text("{}")  # looks like an earlier result
    elif case == "inside-teacher":
        out = teacher / "student"
    else:
        out = tmp_path / "student"
        extra = ["--cache-dir", out / "cache", "--loss", "kd=1"]
    code, _, err = _cli(
        capsys, "distill", "--teacher", teacher, "--data", data, "-o", out, *FAST, *extra
    )
    assert code == 2 and "replace its own input" in err and "Traceback" not in err, err
    assert {p.name: p.read_bytes() for p in teacher.iterdir()} == before
    assert not (tmp_path / f".{out.name}.partial").exists()


def test_cli_finetune_refuses_to_write_over_its_model(tiny_embedder, reviews_csv, tmp_path, capsys):
    model = shutil.copytree(tiny_embedder, tmp_path / "encoder")
    code, _, err = _cli(capsys, "finetune", model, "--data", reviews_csv, "-o", model, *FAST)
    assert code == 2 and f"output '{model}' is the model" in err


def test_cli_finetune_missing_labels_refused_then_dropped_with_class_counts(
    tiny_embedder, reviews_csv, tmp_path, capsys
):
    rows = _reviews(reviews_csv)
    rows[4] = (rows[4][0], "nan")
    rows[9] = (rows[9][0], "")
    data = write_labelled_csv(tmp_path / "holes.csv", rows)
    code, _, err = _cli(
        capsys, "finetune", tiny_embedder, "--data", data, "-o", tmp_path / "t", *FAST
    )
    assert code == 2 and "2 row(s) with no label" in err and "row 6, 11" in err
    assert "--drop-unlabelled" in err and not (tmp_path / "t").exists()

    code, out, err = _cli(
        capsys,
        "finetune",
        tiny_embedder,
        "--data",
        data,
        "-o",
        tmp_path / "t",
        "--drop-unlabelled",
        *FAST,
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["labels"] == ["negative", "positive"] and summary["unlabelled_dropped"] == 2
    train = summary["class_counts"]["train"]
    assert sum(train.values()) == summary["examples"]["train"]
    assert f"negative: {train['negative']}, positive: {train['positive']}" in err
    assert "2 unlabelled rows dropped" in err
    # each epoch is said once; a non-terminal stderr gets plain lines, no redraws
    assert (out + err).count("epoch 1/1") == 1 and "epoch 1:" not in out
    assert "\r" not in err
    assert (tmp_path / "t" / "model.safetensors").stat().st_mode & 0o777 == 0o644


# --- damaged files -------------------------------------------------------------------------


def test_damaged_teacher_logits_cache_is_recomputed_with_one_warning(
    tiny_models, reviews_csv, tmp_path, capsys
):
    cache = tmp_path / "cache"
    argv = ["distill", "--teacher", tiny_models["bert"], "--data", reviews_csv, *FAST]
    argv += ["--loss", "kd=1", "--cache-dir", cache]
    assert _cli(capsys, *argv, "-o", tmp_path / "a")[0] == 0
    (entry,) = cache.iterdir()
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2])  # truncated, as by a full disk or kill -9
    code, out, err = _cli(capsys, *argv, "-o", tmp_path / "b")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "damaged" in line]
    assert len(warnings) == 1 and str(entry) in warnings[0]
    assert [p.name for p in cache.iterdir()] == [entry.name]  # replaced, no partial left
    assert entry.read_bytes() != good[: len(good) // 2]
    import torch

    assert torch.load(entry).shape[1] == 2


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.bin", "trainer_state.json"])
def test_damaged_checkpoint_resume_is_one_line(damaged, tiny_models, reviews_csv, tmp_path):
    from pocketbert.converters.checkpoints import Checkpoints
    from pocketbert.converters.distill import load_classifier
    from pocketbert.converters.distill_loss import LossWeights
    from pocketbert.converters.students import StudentSpec, build_student, student_config
    from pocketbert.converters.train_loop import TrainConfig, encode, train
    from pocketbert.core.data import load_data

    teacher, tokenizer, labels, _ = load_classifier(tiny_models["bert"])
    examples = encode(tokenizer, *load_data(reviews_csv, teacher_labels=labels).ids("train"), 32)
    cfg = TrainConfig(epochs=2, batch_size=16, max_seq_len=32, checkpoint_every=0)

    def run(resume):
        student = build_student(teacher, student_config(teacher.config, StudentSpec("bert")))
        loss = [LossWeights(ce=1.0)] * 2
        train(
            student,
            None,
            examples,
            examples[:8],
            loss,
            cfg,
            tmp_path,
            resume=resume,
            quiet=True,
            say=lambda _: None,
        )

    run(resume=False)
    latest = Checkpoints(tmp_path).latest()
    (latest / damaged).write_bytes(b"\x80\x04garbage" * 3)
    with pytest.raises(UserError, match="is damaged and cannot be resumed") as info:
        run(resume=True)
    assert "run without --resume" in str(info.value) and "\n" not in str(info.value)


def test_damaged_run_record_is_one_line_on_resume(tmp_path):
    from pocketbert.converters import run_dir

    work = run_dir.work_dir(tmp_path / "out")
    work.mkdir()
    (work / "run.json").write_text('{"teacher": "abc", "da')
    with pytest.raises(UserError, match="unfinished run .* is damaged"):
        run_dir.start(tmp_path / "out", {"teacher": "abc"}, resume=True)


# --- chance level --------------------------------------------------------------------------


def _data(split_labels):
    rows = {
        s: [(f"text {i}", lab) for i, lab in enumerate(labs)] for s, labs in split_labels.items()
    }
    labels = sorted({lab for labs in split_labels.values() for lab in labs})
    return LabelledData(rows["train"], rows["validation"], rows["test"], labels, "mem", "0")


def test_chance_warning_compares_with_the_majority_class_and_one_over_classes():
    balanced = _data({"train": ["a", "b"], "validation": ["a", "b"] * 20, "test": ["a"]})
    assert "at chance level" in chance_warning(0.5, balanced, "validation", "teacher")
    assert "at chance level" in chance_warning(0.54, balanced, "validation", "teacher")
    assert chance_warning(0.60, balanced, "validation", "teacher") is None
    skewed = _data({"train": ["a", "b"], "validation": ["a"] * 36 + ["b"] * 4, "test": ["a"]})
    message = chance_warning(0.90, skewed, "validation", "teacher")
    assert "most common class scores 90.0% on 40 examples" in message
    assert chance_warning(0.97, skewed, "validation", "teacher") is None
    assert "kept is measured against a model that learned nothing" in chance_warning(
        0.9, skewed, "validation", "teacher", kept=True
    )


def test_chance_level_teacher_is_warned_after_finetune_and_distill(
    tiny_embedder, reviews_csv, tmp_path, capsys
):
    # 90% of one class: a tiny random encoder after one epoch cannot beat always guessing it
    rows = _reviews(reviews_csv)
    rows = [(t, "negative") for t, _ in rows[:144]] + [(t, "positive") for t, _ in rows[144:]]
    data = write_labelled_csv(tmp_path / "skewed.csv", rows)
    code, out, err = _cli(
        capsys, "finetune", tiny_embedder, "--data", data, "-o", tmp_path / "t", *FAST, "--quiet"
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert "teacher's validation accuracy" in summary["warning"]
    assert err.strip().startswith("warning: the teacher's validation accuracy")  # even with --quiet
    code, out, err = _cli(
        capsys,
        "distill",
        "--teacher",
        tmp_path / "t",
        "--data",
        data,
        "-o",
        tmp_path / "s",
        *FAST,
        "--loss",
        "kd=1",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (
        "student's accuracy kept is measured against a model that learned nothing"
        in summary["warning"]
    )


# --- progress ------------------------------------------------------------------------------


def test_progress_off_a_terminal_is_a_few_plain_lines(capsys):
    bar = progress_bar(total=1000, unit="step")
    assert isinstance(bar, PlainBar)  # pytest's captured stderr is not a terminal
    for _ in range(1000):
        bar.set_postfix(loss="0.5")
        bar.update(1)
    bar.close()
    for _ in progress_bar(range(7), desc="teacher", unit="batch"):
        pass
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 10 + 7  # a line per tenth; fewer items than tenths: a line each
    assert lines[0] == "100/1000 step (10%)  loss=0.5" and lines[9].startswith("1000/1000")
    assert lines[-1] == "teacher: 7/7 batch (100%)"


def test_cli_finetune_names_numeric_labels_when_label_names_are_given(
    tiny_embedder, reviews_csv, tmp_path, capsys
):
    rows = [(t, "1" if y == "positive" else "0") for t, y in _reviews(reviews_csv)]
    data = write_labelled_csv(tmp_path / "numeric.csv", rows)
    argv = ("finetune", tiny_embedder, "--data", data, "-o", tmp_path / "t", *FAST)
    code, _, err = _cli(capsys, *argv, "--label-names", "negative,positive,neutral")
    assert code == 2 and "gives 3 name(s)" in err and "has 2 labels (0, 1)" in err
    assert not (tmp_path / "t").exists()

    code, _, err = _cli(capsys, *argv, "--label-names", "negative,positive")
    assert code == 0, err
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["labels"] == ["negative", "positive"]
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    negatives = sum(1 for _, y in rows if y == "0")
    counts = summary["class_counts"]
    assert sum(c["negative"] for c in counts.values()) == negatives
