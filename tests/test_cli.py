import json
import subprocess
import sys
import zipfile

from pocketbert.bundle import zip_bundle
from pocketbert.cli import main


def test_cli_export_then_run_prints_labels_as_json(tiny_models, tmp_path, capsys):
    out = tmp_path / "b"
    assert (
        main(
            [
                "export",
                str(tiny_models["distilbert"]),
                "--precision",
                "int8-dynamic",
                "-o",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["precision"] == "int8-dynamic" and rows[0]["parity"]["passed"]
    assert main(["run", str(out), "good", "bad", "--json"]) == 0
    preds = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["text"] for p in preds] == ["good", "bad"]
    assert all(p["label"] in p["probabilities"] for p in preds)


def test_run_accepts_a_zipped_bundle(onnx_bundle, tmp_path, capsys):
    z = zip_bundle(onnx_bundle, tmp_path / "bundle.zip")
    assert zipfile.is_zipfile(z)
    assert main(["run", str(z), "hello there"]) == 0
    assert "hello there" in capsys.readouterr().out


def test_console_script_reports_bad_input_in_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pocketbert.cli",
            "export",
            str(tmp_path / "none"),
            "-o",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("pocketbert: error:")
    assert "Traceback" not in proc.stderr
