"""What open_bundle and load check before a bundle runs, and what a zipped bundle leaves
behind (nothing). Bad bundles get one line and exit 2 through `pocketbert run`."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from test_security import cli_error, copy_bundle, edit_manifest

import pocketbert
from pocketbert.bundle import open_bundle, write_tokenizer, zip_bundle
from pocketbert.cli import main
from pocketbert.core.errors import UserError
from pocketbert.predict import ParityWarning


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """$TMPDIR (and tempfile's cached choice of it) pointed at an empty folder."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    return temp


def extractions(temp: Path) -> list[str]:
    return sorted(p.name for p in temp.glob("pocketbert-bundle-*"))


def onnx_graph(path: Path, output: str) -> Path:
    """A hand-made ONNX model taking input_ids + attention_mask: ``token_ids`` returns the
    int64 ids (a foreign tokenizer graph), ``three_logits`` a float [1, 3]."""
    from onnx import TensorProto, helper, save

    ins = [
        helper.make_tensor_value_info(n, TensorProto.INT64, [1, "seq"])
        for n in ("input_ids", "attention_mask")
    ]
    if output == "token_ids":
        nodes = [helper.make_node("Add", ["input_ids", "attention_mask"], ["output"])]
        out = helper.make_tensor_value_info("output", TensorProto.INT64, [1, "seq"])
        init = []
    else:
        init = [helper.make_tensor("w", TensorProto.FLOAT, [1, 3], [1.0, 2.0, 3.0])]
        nodes = [
            helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["m"], ["r"], axes=[1], keepdims=1),
            helper.make_node("Mul", ["r", "w"], ["output"]),
        ]
        out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph(nodes, "g", ins, [out], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return path


# -- 4. zipped bundles -----------------------------------------------------------------------


def test_run_of_a_zip_three_times_leaves_no_extraction_behind(onnx_bundle, tmp_path, temp_dir):
    z = zip_bundle(onnx_bundle, tmp_path / "bundle.zip")
    for _ in range(3):
        assert main(["run", str(z), "hello there"]) == 0
    gc.collect()
    assert extractions(temp_dir) == []
    with pocketbert.load(z) as predictor:
        assert extractions(temp_dir) != [] and predictor.predict("fine")[0]["label"]
    assert extractions(temp_dir) == []
    env = {"TMPDIR": str(temp_dir), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pocketbert.cli", "run", str(z), "hi"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert extractions(temp_dir) == []  # removed at interpreter exit too


def _corrupt_member(z: Path, name: str) -> None:
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo(name)
    data = bytearray(z.read_bytes())
    header = 30 + len(info.filename.encode()) + len(info.extra)
    data[info.header_offset + header + info.compress_size // 2] ^= 0xFF
    z.write_bytes(bytes(data))


def test_run_of_a_zip_with_a_corrupt_member_fails_in_one_line_and_leaves_nothing(
    onnx_bundle, tmp_path, temp_dir, capsys
):
    z = zip_bundle(onnx_bundle, tmp_path / "bundle.zip")
    _corrupt_member(z, "model.onnx")
    err = cli_error(capsys, "run", z, "hello")
    assert "the member model.onnx is corrupt" in err or "model.onnx does not match" in err
    assert list(temp_dir.iterdir()) == []


def test_zip_member_that_differs_from_the_manifest_is_refused(onnx_bundle, tmp_path, temp_dir):
    z = tmp_path / "bundle.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(onnx_bundle.iterdir()):
            zf.writestr(p.name, b'["x", "y"]' if p.name == "labels.json" else p.read_bytes())
    with pytest.raises(UserError, match="labels.json does not match its manifest sha256"):
        open_bundle(z)
    assert list(temp_dir.iterdir()) == []


def test_zip_with_its_bundle_in_a_folder_opens(onnx_bundle, tmp_path, temp_dir):
    z = tmp_path / "bundle.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(onnx_bundle.iterdir()):
            zf.write(p, f"it's a b;touch PWNED;'x/{p.name}")
    with open_bundle(z) as bundle:
        assert bundle.root.name == "bundle" and bundle.labels == ["negative", "positive"]
    assert extractions(temp_dir) == []


# -- 11. bad manifests and swapped models: one line, exit 2 ----------------------------------


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (
            {"max_seq_len": "abc"},
            "max_seq_len 'abc' in manifest.json is not an integer in 1..65536",
        ),
        ({"max_seq_len": -1}, "max_seq_len -1 in manifest.json is not an integer"),
        ({"max_seq_len": True}, "max_seq_len True"),
        ({"files": ["model.onnx"]}, "'files' in manifest.json must map each file name"),
        ({"files": {"model.onnx": "abc"}}, "sha256 of model.onnx is 'abc', not 64 hex digits"),
        ({"task": "ner"}, "task 'ner' in manifest.json is not one of: classification, embedding"),
        ({"manifest_version": 9}, "written by a newer pocketbert"),
    ],
)
def test_run_refuses_a_malformed_manifest_in_one_line(onnx_bundle, tmp_path, capsys, changes, says):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    edit_manifest(bundle, rehash=False, **changes)
    assert says in cli_error(capsys, "run", bundle, "hello")


def test_run_refuses_an_empty_labels_list_in_one_line(onnx_bundle, tmp_path, capsys):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    (bundle / "labels.json").write_text("[]")
    edit_manifest(bundle, rehash=True)
    assert "labels.json lists 0 label(s)" in cli_error(capsys, "run", bundle, "hello")


def test_run_refuses_a_swapped_model_with_the_wrong_output_size(onnx_bundle, tmp_path, capsys):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    onnx_graph(bundle / "model.onnx", "three_logits")
    edit_manifest(bundle, rehash=True)
    err = cli_error(capsys, "run", bundle, "hello")
    assert "the model gives 3 value(s) per text (shape [1, 3]) but labels.json lists 2" in err


def test_load_refuses_a_foreign_model_whose_output_is_token_ids(onnx_bundle, tmp_path, capsys):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    onnx_graph(bundle / "model.onnx", "token_ids")
    (bundle / "labels.json").write_text("[]")
    output = {"name": "output", "dtype": "float32", "kind": "embedding"}
    edit_manifest(bundle, rehash=True, task="embedding", output=output)
    err = cli_error(capsys, "run", bundle, "hello")
    assert "the model's first output is tensor(int64), not floating point" in err


def test_load_refuses_a_manifest_whose_inputs_the_model_does_not_take(onnx_bundle, tmp_path):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    inputs = [{"name": "input_ids"}, {"name": "token_type_ids"}]
    edit_manifest(bundle, rehash=True, inputs=inputs)
    with pytest.raises(UserError, match=r"takes inputs \(input_ids, attention_mask\) but the"):
        pocketbert.load(bundle)


# -- 23. a bundle that failed its parity gate ------------------------------------------------


def test_run_warns_in_one_line_when_the_bundle_failed_its_parity_gate(
    onnx_bundle, tmp_path, capsys
):
    bundle = copy_bundle(onnx_bundle, tmp_path)
    m = json.loads((bundle / "manifest.json").read_text())
    edit_manifest(bundle, rehash=True, parity={**m["parity"], "passed": False})
    with pytest.warns(ParityWarning, match=r"failed its parity gate .*max_abs_diff="):
        pocketbert.load(bundle)
    assert main(["run", str(bundle), "hello"]) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("pocketbert: warning: bundle") and "max_abs_diff <= 0.0001" in line
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParityWarning)
        pocketbert.load(onnx_bundle)  # a bundle that passed: no warning


# -- 13. the bundle's tokenizer.json carries the bundle's own settings ------------------------


def test_write_tokenizer_replaces_the_sources_truncation_and_padding(tiny_models, tmp_path):
    from tokenizers import Tokenizer

    source = Tokenizer.from_file(str(tiny_models["bert"] / "tokenizer.json"))
    source.enable_truncation(128)
    source.enable_padding(length=128)
    src = tmp_path / "src.json"
    source.save(str(src))
    long_text = " ".join(["hello"] * 600)

    written = Tokenizer.from_file(str(write_tokenizer(src, tmp_path / "tok.json", 512)))
    assert written.truncation["max_length"] == 512 and written.padding is None
    assert len(written.encode(long_text).ids) == 512
    assert len(written.encode("hello").ids) < 10

    padded = Tokenizer.from_file(str(write_tokenizer(src, tmp_path / "p.json", 512, pad_to=512)))
    assert padded.padding["length"] == 512 and len(padded.encode("hello").ids) == 512
