"""Every architecture of the table exports, verifies and runs in every format and precision.

The parametrization comes from ``architectures.ARCHITECTURES``: a new entry is walked
here (or by test_conformance.py, which walks conftest.ARCHITECTURES at every precision)
without editing this file. The full matrix is slow (ExecuTorch and TFLite take tens of
seconds per export): ``pytest -m slow tests/test_architectures.py``. The default run keeps
ONNX fp32 + int8-dynamic per architecture and one ExecuTorch and one TFLite case of the
architecture least like BERT (ALBERT: factorized embeddings, one layer shared by all).
"""

import json

import pytest
from conftest import ALL_ARCHITECTURES, ARCHITECTURES, NEW_ARCHITECTURES
from random_models import SIZES

import pocketbert
from pocketbert.bundle import open_bundle
from pocketbert.converters.architectures import ARCHITECTURES as TABLE
from pocketbert.exporter import PRECISIONS

FORMATS = ("onnx", "executorch", "tflite")
DEFAULT = {
    *((a, "onnx", p) for a in NEW_ARCHITECTURES for p in ("fp32", "int8-dynamic")),
    ("albert", "executorch", "fp32"),
    ("albert", "tflite", "fp32"),
}


def _matrix():
    for arch in NEW_ARCHITECTURES:
        for fmt in FORMATS:
            for precision in PRECISIONS:
                marks = () if (arch, fmt, precision) in DEFAULT else (pytest.mark.slow,)
                yield pytest.param(
                    arch, fmt, precision, marks=marks, id=f"{arch}-{fmt}-{precision}"
                )


def test_every_table_architecture_is_walked_by_a_suite_and_has_a_tiny_model():
    assert set(ARCHITECTURES) <= set(TABLE), "conformance walks an architecture not in the table"
    assert set(ARCHITECTURES) | set(NEW_ARCHITECTURES) == set(ALL_ARCHITECTURES) == set(TABLE)
    assert [a for a in TABLE if (a, "tiny") not in SIZES] == []
    assert {a for a, _, _ in DEFAULT} == set(NEW_ARCHITECTURES) | {"albert"}


def test_every_table_architecture_has_a_tokenizer_of_its_own_kind(tiny_models):
    from transformers import AutoConfig, AutoTokenizer

    for arch in NEW_ARCHITECTURES:
        tok = AutoTokenizer.from_pretrained(tiny_models[arch])
        config = AutoConfig.from_pretrained(tiny_models[arch])
        assert tok.is_fast and tok.pad_token_id == config.pad_token_id, arch
        kind = TABLE[arch].tokenizer
        model = tok.backend_tokenizer.model.__class__.__name__
        assert model == {"wordpiece": "WordPiece", "byte-level-bpe": "BPE"}.get(kind, "Unigram")


@pytest.mark.parametrize(("arch", "fmt", "precision"), list(_matrix()))
def test_architecture_exports_a_verified_bundle(arch, fmt, precision, tiny_models, tmp_path):
    out = tmp_path / "bundle"
    (result,) = pocketbert.export(
        tiny_models[arch], out, format=fmt, precision=precision, quiet=True
    )
    m = open_bundle(out).manifest  # hashes checked
    assert (m["architecture"], m["format"], m["precision"]) == (arch, fmt, precision)
    assert m["parity"]["passed"] is True, m["parity"]
    if precision == "fp32":
        assert m["parity"]["max_abs_diff"] <= 1e-4
    else:
        assert m["parity"]["argmax_agreement"] >= 0.98
    preds = pocketbert.load(out, threads=1).predict(["a wonderful film", "a dull film"])
    assert [p["label"] in ("negative", "positive") for p in preds] == [True, True]


@pytest.mark.parametrize("arch", ["roberta", "albert"])
def test_teacher_of_another_family_distils_into_a_student_that_exports(
    arch, tiny_models, reviews_csv, tmp_path
):
    """The student keeps the teacher's vocabulary and tokenizer (byte-level BPE, unigram)."""
    from pocketbert.converters.distill import DistillConfig, run_distill
    from pocketbert.converters.distill_loss import LossWeights
    from pocketbert.converters.students import StudentSpec
    from pocketbert.converters.train_loop import TrainConfig

    train = TrainConfig(epochs=1, batch_size=16, max_seq_len=32, lr=1e-3)
    loss = LossWeights(ce=1.0, kd=1.0, hidden=1.0, attention=1.0)
    cfg = DistillConfig(student=StudentSpec("squeezebert"), loss=loss, train=train)
    summary = run_distill(tiny_models[arch], reviews_csv, tmp_path / "s", cfg, quiet=True)
    assert summary["history"][0]["loss"] > 0
    out = tmp_path / "bundle"
    pocketbert.export(tmp_path / "s", out, format="onnx", precision="fp32", quiet=True)
    bundle = open_bundle(out)
    assert bundle.manifest["parity"]["passed"]
    teacher_vocab = json.loads((tiny_models[arch] / "tokenizer.json").read_text())["model"]
    student_vocab = json.loads((out / "tokenizer.json").read_text())["model"]
    assert student_vocab["type"] == teacher_vocab["type"]
