"""Bad input: one line naming what is wrong and what would be right, exit 2, nothing written."""

import json
import shutil

import pytest

from pocketbert import runtimes
from pocketbert.cli import main
from pocketbert.core.errors import UserError


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    return code, errors, err


def assert_user_error(capsys, out, *argv, says):
    code, errors, err = run_cli(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err
    assert len(errors) == 1 and says in errors[0], err
    assert not out.exists()


def test_export_fails_cleanly_when_model_dir_is_missing(tmp_path, capsys):
    out = tmp_path / "out"
    assert_user_error(capsys, out, "export", tmp_path / "nope", "-o", out, says="no config.json")


def test_export_fails_cleanly_when_config_is_corrupt(tmp_path, capsys, tiny_models):
    model = tmp_path / "model"
    shutil.copytree(tiny_models["bert"], model)
    (model / "config.json").write_text("{not json")
    out = tmp_path / "out"
    assert_user_error(capsys, out, "export", model, "-o", out, says="could not read model")


def test_export_fails_cleanly_when_weights_are_corrupt(tmp_path, capsys, tiny_models):
    model = tmp_path / "model"
    shutil.copytree(tiny_models["bert"], model)
    (model / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    out = tmp_path / "out"
    assert_user_error(capsys, out, "export", model, "-o", out, says="could not load weights")


def test_export_fails_cleanly_when_architecture_is_unsupported(tmp_path, capsys):
    model = tmp_path / "gpt"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    out = tmp_path / "out"
    assert_user_error(capsys, out, "export", model, "-o", out, says="'gpt2' is not supported")


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--format", "coreml", "unknown format 'coreml'"),
        ("--precision", "int4", "unknown precision 'int4'"),
    ],
)
def test_export_fails_cleanly_when_choice_is_unknown(
    flag, value, says, tmp_path, capsys, tiny_models
):
    out = tmp_path / "out"
    assert_user_error(capsys, out, "export", tiny_models["bert"], flag, value, "-o", out, says=says)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("missing.txt", None, "does not exist"),
        ("binary.txt", b"\xff\xfe\x00\x81" * 10, "cannot read"),
        ("table.csv", b"id,label\n1,0\n", "no text column"),
        ("lines.jsonl", b'{"text": "ok"}\nnot json\n', "line 2 is not JSON"),
        ("empty.txt", b"\n\n", "holds no text"),
    ],
)
def test_export_fails_cleanly_when_calibration_is_unreadable(
    name, content, says, tmp_path, capsys, tiny_models
):
    cal = tmp_path / name
    if content is not None:
        cal.write_bytes(content)
    out = tmp_path / "out"
    argv = (
        "export",
        tiny_models["bert"],
        "--precision",
        "int8-static",
        "--calibration",
        cal,
        "-o",
        out,
    )
    assert_user_error(capsys, out, *argv, says=says)


def test_run_refuses_bundle_whose_files_do_not_match_manifest(onnx_bundle, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    shutil.copytree(onnx_bundle, bundle)
    (bundle / "labels.json").write_text('["a", "b"]')
    code, errors, _ = run_cli(capsys, "run", bundle, "hello")
    assert code == 2 and "does not match its manifest sha256" in errors[0]


def test_runtime_refuses_corrupt_model_file(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(UserError, match="not a loadable ONNX model"):
        runtimes.load(bad)


def test_runtime_refuses_unknown_suffix(tmp_path):
    f = tmp_path / "model.mlmodel"
    f.write_bytes(b"x")
    with pytest.raises(UserError, match="no runtime loads '.mlmodel' files"):
        runtimes.load(f)


def test_export_refuses_to_replace_a_directory_that_is_not_a_bundle(tmp_path, capsys, tiny_models):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, errors, _ = run_cli(capsys, "export", tiny_models["bert"], "-o", out)
    assert code == 2 and "exists and is not a bundle" in errors[0]
    assert (out / "notes.txt").read_text() == "keep me"


def test_failed_parity_gate_writes_no_bundle(tmp_path, tiny_models, monkeypatch):
    import pocketbert
    from pocketbert.converters.quantization import Fp32

    unreachable = Fp32(max_abs_diff=0.0)  # fp32 differs from torch by ~1e-7: never 0
    out = tmp_path / "out"
    with pytest.raises(UserError, match="failed the parity gate"):
        pocketbert.export(tiny_models["bert"], out, precision=unreachable, quiet=True)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    results = pocketbert.export(
        tiny_models["bert"], out, precision=unreachable, quiet=True, allow_parity_failure=True
    )
    assert results[0].parity["passed"] is False and (out / "manifest.json").is_file()
