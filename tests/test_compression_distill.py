"""Compression inside distillation: every method applied to a student that is then
distilled, recorded in the summary with the bytes it saved, and the result exports in
every format and passes the parity gate; bad input is exit 2 with nothing written."""

import json

import pytest

import pocketbert
from pocketbert.bundle import open_bundle
from pocketbert.cli import main
from pocketbert.converters.compress_configs import PruneStructure
from pocketbert.converters.model import load_model
from pocketbert.core.errors import UserError

ALL = dict(
    prune_heads=0.5,
    prune_neurons=0.5,
    low_rank=8,
    factorize_embeddings=8,
    prune_vocabulary=1,
)
FAST = dict(epochs=1, batch_size=16, max_seq_len=32, checkpoint_every=0, quiet=True)


@pytest.fixture(scope="module")
def compressed(tiny_models, reviews_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("compressed") / "student"
    summary = pocketbert.distill(
        tiny_models["bert"], reviews_csv, out, student="bert", size="medium", **FAST, **ALL
    )
    return out, summary


def test_every_method_is_applied_then_distilled_and_recorded(compressed, tiny_models):
    out, summary = compressed
    methods = [r["method"] for r in summary["compression"]]
    assert methods == ["prune_structure", "low_rank", "factorize_embeddings", "prune_vocabulary"]
    for r in summary["compression"]:
        assert r["params_after"] < r["params_before"]
        assert r["saved_bytes_fp32"] == 4 * r["saved_bytes_int8"] > 0
    assert summary["history"][0]["loss"] > 0  # distilled after compression
    vocab = summary["compression"][-1]
    assert 0 <= vocab["test_oov_rate"] < 1 and vocab["vocab_after"] < vocab["vocab_before"]
    loaded = load_model(out)
    model, tok = loaded.module.model, loaded.tokenizer
    assert len(tok) == vocab["vocab_after"] == model.config.vocab_size
    assert model.config.intermediate_size == summary["compression"][0]["intermediate_size"]
    params = sum(p.numel() for p in model.parameters())
    assert summary["student_params"] == params == summary["compression"][-1]["params_after"]
    teacher = load_model(tiny_models["bert"]).module.model
    assert params < sum(p.numel() for p in teacher.parameters())
    saved = json.loads((out / "summary.json").read_text())
    assert saved["compression"] == summary["compression"]


@pytest.mark.parametrize(
    ("fmt", "precision"),
    [
        ("onnx", "fp32"),
        ("onnx", "int8-dynamic"),
        ("tflite", "fp32"),
        ("fpga", "int8-static"),
        pytest.param("executorch", "fp32", marks=pytest.mark.slow),
    ],
)
def test_compressed_student_exports_and_passes_the_parity_gate(
    compressed, fmt, precision, tmp_path
):
    out, _ = compressed
    bundle = tmp_path / "bundle"
    (result,) = pocketbert.export(out, bundle, format=fmt, precision=precision, quiet=True)
    manifest = open_bundle(bundle).manifest
    assert manifest["parity"]["passed"] is True, manifest["parity"]
    if precision == "fp32":
        assert manifest["parity"]["max_abs_diff"] <= 1e-4
    if fmt != "fpga":
        preds = pocketbert.load(bundle, threads=1).predict(["a wonderful film"])
        assert preds[0]["label"] in ("negative", "positive")


def test_structured_pruning_of_a_squeezebert_student_is_refused_before_training(
    tiny_models, reviews_csv, tmp_path
):
    with pytest.raises(UserError, match="supports bert, mobilebert"):
        pocketbert.distill(
            tiny_models["bert"], reviews_csv, tmp_path / "s", student="squeezebert",
            prune_heads=0.5, **FAST,
        )  # fmt: skip
    assert not (tmp_path / "s").exists()
    assert PruneStructure(neurons=0.5).batches is None


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--prune-heads", "1.0"], "below 1"),
        (["--prune-heads", "0.75"], "removes every one of the"),
        (["--low-rank", "500"], "rank 500 is larger than layer"),
        (["--factorize-embeddings", "0"], "whole number >= 1"),
    ],
)
def test_bad_compression_flags_exit_2_in_one_line_with_nothing_written(
    flags, words, tiny_models, reviews_csv, tmp_path, capsys
):
    out = tmp_path / "student"
    args = ["distill", "--teacher", str(tiny_models["bert"]), "--student", "bert"]
    args += ["--data", str(reviews_csv), "-o", str(out), "--epochs", "1", "--max-seq-len", "32"]
    args += ["--quiet"]
    assert main([*args, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".student*"))
