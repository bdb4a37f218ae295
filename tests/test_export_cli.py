"""``pocketbert export`` outputs: one run's bundles per directory, nothing left behind, one line.

Failures inside a job are injected by registering an exporter handler that raises, the
way a converter would (a UserError for bad input, anything else for a bug); every other
job runs the real exporter.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile

import pytest

import pocketbert
from pocketbert.bundle import open_bundle
from pocketbert.cli import main
from pocketbert.converters import EXPORTERS
from pocketbert.converters.quantization import Fp32, Int8Dynamic, Int8Static
from pocketbert.core.errors import UserError


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    """A TMPDIR of the test's own, to see that a run leaves nothing in it."""
    tmp = tmp_path / "TMPDIR"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _inject(monkeypatch, config_type, exc: BaseException) -> None:
    """The onnx exporter, except that ``config_type``'s handler raises ``exc``."""

    def failing(*args):
        print("converter output before the failure", file=sys.stderr)
        raise exc

    info = EXPORTERS["onnx"]
    handles = {**info.handles, config_type: failing}
    monkeypatch.setitem(EXPORTERS, "onnx", dataclasses.replace(info, handles=handles))


def _cli(capfd, *argv):
    code = main([str(a) for a in argv])
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def test_export_json_lists_every_job_when_one_fails(tiny_models, tmp_path, capfd, monkeypatch):
    _inject(monkeypatch, Int8Static, UserError("the converter refused this model"))
    out = tmp_path / "set"
    code, stdout, stderr = _cli(
        capfd, "export", tiny_models["bert"], "--precision", "all", "--json", "-o", out
    )
    assert code == 2
    rows = json.loads(stdout)
    assert [(r["precision"], r["status"]) for r in rows] == [
        ("fp32", "written"),
        ("int8-dynamic", "written"),
        ("int8-static", "failed"),
    ]
    assert rows[0]["bundle"] == str(out / "onnx-fp32") and rows[0]["parity"]["passed"]
    assert rows[2]["bundle"] is None and rows[2]["error"] == "the converter refused this model"
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stderr.startswith("pocketbert: error: 1 of 3 exports failed")
    assert "2 verified bundle(s) written to" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["onnx-fp32", "onnx-int8-dynamic"]


def test_export_keeps_running_the_other_jobs_when_one_has_a_bug(
    tiny_models, tmp_path, capfd, monkeypatch, tmpdir_env
):
    _inject(monkeypatch, Int8Dynamic, TypeError("unexpected keyword 'axis'"))
    out = tmp_path / "set"
    code, stdout, stderr = _cli(
        capfd, "export", tiny_models["bert"], "--precision", "all", "--json", "-o", out
    )
    assert code == 1
    assert "this is a bug in pocketbert" in stderr
    rows = json.loads(stdout)
    assert [r["status"] for r in rows] == ["written", "bug", "written"]
    log = tmp_path / "set.onnx-int8-dynamic.log"
    assert rows[1]["log"] == str(log) and "TypeError: unexpected keyword 'axis'" in rows[1]["error"]
    assert "converter output before the failure" in log.read_text()
    assert sorted(p.name for p in out.iterdir()) == ["onnx-fp32", "onnx-int8-static"]
    assert list(tmpdir_env.iterdir()) == []


def test_single_export_bug_is_reported_as_a_bug_with_its_log(tiny_models, tmp_path, monkeypatch):
    _inject(monkeypatch, Fp32, KeyError("input_ids"))
    out = tmp_path / "b"
    with pytest.raises(RuntimeError, match=r"onnx fp32 export failed .*converter log: .*b\.log"):
        pocketbert.export(tiny_models["bert"], out, quiet=True)
    assert not out.exists() and (tmp_path / "b.log").is_file()


def test_export_replaces_the_whole_set_when_rerun_into_it(tiny_models, tmp_path, tmpdir_env):
    out = tmp_path / "set"
    pocketbert.export(tiny_models["bert"], out, precision=["fp32", "int8-dynamic"], quiet=True)
    assert sorted(p.name for p in out.iterdir()) == ["onnx-fp32", "onnx-int8-dynamic"]
    unreachable = Fp32(max_abs_diff=0.0)  # a real gate failure: fp32 differs by ~1e-7
    configs = [unreachable, Int8Static(calibration_samples=8)]
    with pytest.raises(UserError) as exc:
        pocketbert.export(tiny_models["distilbert"], out, precision=configs, quiet=True)
    message = str(exc.value)
    assert message.startswith("1 of 2 exports failed (onnx fp32: failed the parity gate")
    assert message.endswith(f"1 verified bundle(s) written to {out}")
    assert len(message) < 200 and "\n" not in message
    assert [p.name for p in out.iterdir()] == ["onnx-int8-static"]  # nothing of the first run
    manifest = open_bundle(out / "onnx-int8-static").manifest
    assert manifest["architecture"] == "distilbert"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TMPDIR", "set"]
    assert list(tmpdir_env.iterdir()) == []


def test_export_refuses_a_directory_that_is_not_a_bundle_set_when_exporting_several(
    tiny_models, tmp_path, capfd
):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, stderr = _cli(capfd, "export", tiny_models["bert"], "--precision", "all", "-o", out)
    assert code == 2 and stderr.count("\n") == 1
    assert "is not a set of pocketbert bundles" in stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("name", "fmt", "says"),
    [
        ("sst2.pte", "executorch", "-o {d}/sst2.pte names a model file (executorch); a bundle"),
        ("sst2.onnx", "onnx", "give -o {d}/sst2 (writes {d}/sst2/model.onnx) or -o {d}/sst2.zip"),
        ("sst2.pte", "onnx", "names a model file (executorch) and --format is onnx"),
    ],
)
def test_export_refuses_a_model_file_suffix_when_given_as_output(
    name, fmt, says, tiny_models, tmp_path, capfd
):
    out = tmp_path / name
    code, _, stderr = _cli(capfd, "export", tiny_models["bert"], "--format", fmt, "-o", out)
    assert code == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert says.format(d=tmp_path) in stderr
    assert list(tmp_path.iterdir()) == []


def test_export_writes_a_zipped_bundle_when_output_ends_in_zip(
    tiny_models, tmp_path, capfd, tmpdir_env
):
    out = tmp_path / "sst2.zip"
    code, stdout, _ = _cli(capfd, "export", tiny_models["bert"], "-o", out, "--json")
    assert code == 0 and json.loads(stdout)[0]["bundle"] == str(out)
    assert out.is_file() and open_bundle(out).manifest["format"] == "onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TMPDIR", "sst2.zip"]
    code, _, stderr = _cli(capfd, "export", tiny_models["bert"], "--precision", "all", "-o", out)
    assert code == 2 and "a .zip holds one bundle and 3 exports were asked for" in stderr


def test_export_removes_partials_of_dead_processes_when_it_starts(tiny_models, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".b.partial-{dead.pid}-x1"
    alive = tmp_path / f".b.partial-{os.getppid()}-x2"  # a live process's work: kept
    for d in (stale, alive, tmp_path / ".b.old"):
        d.mkdir()
        (d / "model.onnx").write_bytes(b"half")
    pocketbert.export(tiny_models["bert"], tmp_path / "b", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "b"]


def test_export_stderr_is_empty_when_json_is_asked_for(tiny_models, tmp_path):
    """At the file-descriptor level: the Python API (quiet) and then the CLI with --json."""
    tmp = tmp_path / "TMPDIR"
    tmp.mkdir()
    model, api, cli = str(tiny_models["bert"]), str(tmp_path / "api"), str(tmp_path / "cli")
    script = (
        "import pocketbert\n"
        "from pocketbert.cli import main\n"
        f"pocketbert.export({model!r}, {api!r}, quiet=True)\n"
        f"argv = ['export', {model!r}, '--format', 'onnx', '-o', {cli!r}, '--json']\n"
        "raise SystemExit(main(argv))"
    )
    env = {**os.environ, "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(proc.stdout)[0]["status"] == "written"
    assert list(tmp.iterdir()) == []


def test_export_leaves_nothing_behind_when_interrupted(
    tiny_models, tmp_path, capfd, monkeypatch, tmpdir_env
):
    _inject(monkeypatch, Int8Dynamic, KeyboardInterrupt())  # Ctrl-C during the conversion
    out = tmp_path / "set"
    code, _, stderr = _cli(capfd, "export", tiny_models["bert"], "--precision", "all", "-o", out)
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TMPDIR"]  # not even the fp32 bundle
    assert list(tmpdir_env.iterdir()) == []
