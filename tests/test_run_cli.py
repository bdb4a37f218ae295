"""``pocketbert run``: texts from a file, JSON Lines, progress, threads checked first."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import pocketbert
from pocketbert.cli import main

cli_main_module = importlib.import_module("pocketbert.cli.main")  # the module, not main()

TEXTS = ["a fine film", "dull, and far too long", "what a ride"]


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def embedding_bundle(tiny_embedder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run-cli") / "embedder"
    pocketbert.export(tiny_embedder, out, format="onnx", precision="fp32", quiet=True)
    return out


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl"])
def test_run_reads_texts_from_input_file_when_given_one(onnx_bundle, tmp_path, capsys, suffix):
    path = tmp_path / f"texts{suffix}"
    if suffix == ".txt":
        path.write_text("\n".join(TEXTS) + "\n")
    elif suffix == ".csv":
        path.write_text("id,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(TEXTS)))
    else:
        path.write_text("".join(json.dumps({"text": t, "n": 1}) + "\n" for t in TEXTS))
    code, out, err = _cli(capsys, "run", onnx_bundle, "--input", path, "--json")
    assert code == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]  # JSON Lines: one object per text
    assert [r["text"] for r in rows] == TEXTS
    assert all(r["label"] in ("negative", "positive") for r in rows)


def test_run_puts_argument_texts_before_file_texts(onnx_bundle, tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("from the file\n")
    code, out, _ = _cli(capsys, "run", onnx_bundle, "from argv", "--input", path)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].endswith("  from argv")
    assert lines[1].endswith("  from the file")


def test_run_refuses_in_one_line_when_given_neither_texts_nor_input(onnx_bundle, capsys):
    code, out, err = _cli(capsys, "run", onnx_bundle)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--input FILE" in err and err.startswith("pocketbert: error:")


@pytest.mark.parametrize("threads", ["0", "-1", "100000"])
def test_run_refuses_thread_count_before_loading_the_bundle(tmp_path, capsys, threads):
    missing = tmp_path / "no-such-bundle"  # the threads are refused before this is opened
    code, _, err = _cli(capsys, "run", missing, "hello", "--threads", threads)
    assert code == 2 and f"--threads {threads} is out of range" in err


def test_run_writes_embeddings_as_json_lines_rounded_to_six_decimals(embedding_bundle, capsys):
    code, out, _ = _cli(capsys, "run", embedding_bundle, *TEXTS, "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    values = [x for r in rows for x in r["embedding"]]
    assert values and all(round(x, 6) == x for x in values)
    assert any(x != round(x, 4) for x in values)  # kept to 6, not fewer


def test_run_shows_progress_on_stderr_unless_quiet_or_json(
    onnx_bundle, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(cli_main_module, "RUN_CHUNK", 10)
    monkeypatch.setattr(cli_main_module, "RUN_PROGRESS_EVERY_S", 0.0)
    path = tmp_path / "many.txt"
    path.write_text("".join(f"review number {i}\n" for i in range(35)))
    code, out, err = _cli(capsys, "run", onnx_bundle, "--input", path)
    assert code == 0 and len(out.splitlines()) == 35
    assert err.splitlines()[0].startswith("[10/35] texts") and "[35/35] texts" in err
    for flag in ("--quiet", "--json"):
        code, out, err = _cli(capsys, "run", onnx_bundle, "--input", path, flag)
        assert code == 0 and len(out.splitlines()) == 35 and err == ""


@pytest.mark.parametrize("fmt", ["tflite", "executorch"])
def test_run_json_leaves_stderr_empty_when_runtime_prints_from_cpp(fp32_bundle, fmt):
    bundle = fp32_bundle(fmt)  # XNNPACK's INFO line, ExecuTorch's cpuinfo lines, unless silenced
    proc = subprocess.run(
        [sys.executable, "-m", "pocketbert.cli", "run", str(bundle), *TEXTS, "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(proc.stdout.splitlines()) == len(TEXTS)
