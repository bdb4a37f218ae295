"""``pocketbert build``: a tiny teacher and tiny data, end to end, cached, resumed after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pocketbert.cli.main import main

STUDENT = {"family": "squeezebert", "size": "tiny"}
FORMATS = ("onnx-int8-dynamic", "fpga-int8-static")  # the fpga program: zcu104's format


def write_recipe(path: Path, teacher: Path, data: Path, **changes) -> Path:
    recipe = {
        "version": 1,
        "teacher": {"model": str(teacher)},
        "data": {"path": str(data)},
        "students": [dict(STUDENT)],
        "distill": {"epochs": 1, "stage1_epochs": 1, "augment": 0, "max_seq_len": 32},
        "export": {
            "formats": ["onnx", "fpga"],
            "precisions": ["int8-dynamic"],
            "per_format": {"fpga": ["int8-static"]},
            "max_seq_len": 32,
        },
        "profile": {"runs": 5, "warmup": 1},
        "devices": [
            {"id": "host", "budgets": {"max_size_mb": 50, "min_kept": 10}},
            {"id": "zcu104", "budgets": {"min_kept": 10}},
        ],
    }
    for key, value in changes.items():
        recipe[key] = value
    path.write_text(yaml.safe_dump(recipe))
    return path


def fixed_figures(report: dict) -> dict:
    """What a build must reproduce exactly, whatever the timing: accuracies, sizes, params,
    the shipped precision, the teacher's accuracy, and the picks (budgets here read no latency)."""
    keys = (
        "bundle",
        "status",
        "precision",
        "params",
        "test_accuracy",
        "test_macro_f1",
        "kept",
        "file_mb",
    )
    return {
        "teacher": report["teacher"]["test_accuracy"],
        "bundles": [{k: b.get(k) for k in keys} for b in report["bundles"]],
        "picks": report["picks"],
    }


@pytest.fixture(scope="module")
def reference(tiny_models, reviews_csv, tmp_path_factory):
    """One finished build (the API), its recipe and its report."""
    import pocketbert

    root = tmp_path_factory.mktemp("build")
    recipe = write_recipe(root / "recipe.yaml", tiny_models["bert"], reviews_csv)
    started = time.perf_counter()
    report = pocketbert.build(recipe, work=root / "work", quiet=True)
    return {
        "recipe": recipe,
        "work": root / "work",
        "report": report,
        "seconds": time.perf_counter() - started,
        "html": Path(report["report_html"]).read_text(encoding="utf-8"),
    }


def test_build_makes_verified_bundles_picks_per_device_and_a_report(reference):
    report = reference["report"]
    assert reference["seconds"] < 120
    names = {b["bundle"] for b in report["bundles"]}
    assert names == {f"{m}-{f}" for m in ("teacher", "squeezebert-tiny") for f in FORMATS}
    for b in report["bundles"]:
        assert b["status"] == "ok" and 0 <= b["test_accuracy"] <= 1 and b["file_mb"] > 0
        manifest = json.loads((Path(b["path"]) / "manifest.json").read_text())
        assert manifest["lineage"]["bundle_test"]["test_accuracy"] == b["test_accuracy"]
        assert manifest["lineage"]["teacher"]["sha256"] == report["teacher"]["sha256"]
    host, fpga = report["devices"]["host"], report["devices"]["zcu104"]
    assert host["method"] == "measured" and fpga["method"] == "estimated"
    assert host["pick"] in names and fpga["pick"] in names
    assert {m["budget"] for m in host["margins"]} == {"max_size_mb", "min_kept"}
    assert all(m["margin"] >= 0 for m in host["margins"])
    caveat = next(w for w in report["warnings"] if w.startswith("zcu104: figures are estimated"))
    assert "systolic array" in caveat and "roofline" not in caveat  # its bundles are fpga only
    on_disk = json.loads(Path(report["report_json"]).read_text())
    assert fixed_figures(on_disk) == fixed_figures(report)
    assert Path(report["report_html"]).read_text().count("<svg") == 2


def test_a_second_build_does_no_work(reference, capsys):
    started = time.perf_counter()
    assert main(["build", str(reference["recipe"]), "--work", str(reference["work"])]) == 0
    assert time.perf_counter() - started < 10
    report = json.loads((reference["work"] / "report.json").read_text())
    assert {s["status"] for s in report["timing"]["steps"]} == {"cached"}
    assert fixed_figures(report) == fixed_figures(reference["report"])


def test_a_changed_student_knob_reruns_only_its_branch(
    reference, tiny_models, reviews_csv, tmp_path, capsys
):
    changed = write_recipe(
        tmp_path / "recipe.yaml",
        tiny_models["bert"],
        reviews_csv,
        students=[{**STUDENT, "knobs": {"layers": 1}}],
    )
    assert (
        main(["build", str(changed), "--work", str(reference["work"]), "--dry-run", "--json"]) == 0
    )
    plan = {s["step"]: s["status"] for s in json.loads(capsys.readouterr().out)["plan"]}
    todo = sorted(n for n, s in plan.items() if s == "to do")
    assert todo == [
        "distill squeezebert-tiny-layers1",
        "evaluate squeezebert-tiny-layers1-fpga-int8-static",
        "evaluate squeezebert-tiny-layers1-onnx-int8-dynamic",
        "export squeezebert-tiny-layers1-fpga-int8-static",
        "export squeezebert-tiny-layers1-onnx-int8-dynamic",
        "profile host squeezebert-tiny-layers1-fpga-int8-static",
        "profile host squeezebert-tiny-layers1-onnx-int8-dynamic",
        "profile zcu104 squeezebert-tiny-layers1-fpga-int8-static",
    ]
    assert plan["export teacher-onnx-int8-dynamic"] == "cached"


def _build_until(recipe: Path, work: Path, marker: str, after_s: float) -> None:
    """Start the build in a process, kill -9 it ``after_s`` seconds after ``marker`` shows."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pocketbert.cli", "build", str(recipe), "--work", str(work)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    for line in proc.stderr:
        if marker in line:
            time.sleep(after_s)
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"


def test_kill_during_distill_and_during_export_then_the_same_command_finishes_alike(
    reference, tmp_path
):
    work = tmp_path / "work"

    def done(step: str) -> bool:
        return any((p / "result.json").is_file() for p in (work / "steps").glob(f"{step}-*"))

    _build_until(reference["recipe"], work, "distill squeezebert-tiny …", 0.5)
    assert not done("distill-squeezebert-tiny"), "killed too late: the distillation had finished"
    _build_until(reference["recipe"], work, "export squeezebert-tiny-onnx-int8-dynamic …", 0.1)
    assert done("distill-squeezebert-tiny") and not done(
        "export-squeezebert-tiny-onnx-int8-dynamic"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pocketbert.cli",
            "build",
            str(reference["recipe"]),
            "--work",
            str(work),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert fixed_figures(report) == fixed_figures(reference["report"])
    leftovers = [p for p in work.rglob("*") if ".partial" in p.name]
    assert leftovers == []


def test_a_budget_nothing_meets_is_exit_2_after_the_report_says_by_how_much(
    reference, tiny_models, reviews_csv, tmp_path, capsys
):
    strict = write_recipe(
        tmp_path / "recipe.yaml",
        tiny_models["bert"],
        reviews_csv,
        devices=[{"id": "host", "budgets": {"max_size_mb": 0.001}}],
    )
    assert main(["build", str(strict), "--work", str(reference["work"]), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_size_mb by" in err[0] and "host" in err[0]
    report = json.loads((reference["work"] / "report.json").read_text())
    misses = [m for c in report["devices"]["host"]["candidates"] for m in c["misses"]]
    assert misses and all(m["budget"] == "max_size_mb" and m["by"] > 0 for m in misses)


def test_an_unreachable_device_marks_its_rows_failed_and_the_report_is_written(
    reference, tiny_models, reviews_csv, tmp_path, monkeypatch, capsys
):
    catalog = yaml.safe_load(Path(__file__).parents[1].joinpath("devices.yaml").read_text())
    catalog["devices"].append(
        {
            **next(d for d in catalog["devices"] if d["id"] == "rpi5"),
            "id": "gone",
            "connect": {"host": "127.0.0.1", "port": 9, "user": "nobody", "python": "python3"},
        }
    )
    (tmp_path / "devices.yaml").write_text(yaml.safe_dump(catalog))
    monkeypatch.chdir(tmp_path)
    recipe = write_recipe(
        tmp_path / "recipe.yaml",
        tiny_models["bert"],
        reviews_csv,
        devices=["host", {"id": "gone", "measure": "measured"}],
    )
    assert main(["build", str(recipe), "--work", str(reference["work"])]) == 2
    assert "gone" in capsys.readouterr().err
    report = json.loads((reference["work"] / "report.json").read_text())
    rows = report["devices"]["gone"]["candidates"]
    assert rows and all(r["status"] == "failed" and r["error"] for r in rows)
    assert report["devices"]["host"]["pick"]


def test_data_with_labels_the_teacher_lacks_is_refused_before_any_work(
    tiny_models, tmp_path, capsys
):
    from random_models import write_labelled_csv

    data = write_labelled_csv(
        tmp_path / "d.csv", [(f"text {i}", ["cat", "dog"][i % 2]) for i in range(40)]
    )
    recipe = write_recipe(tmp_path / "recipe.yaml", tiny_models["bert"], data)
    assert main(["build", str(recipe), "--work", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "cat, dog are not the teacher's" in err and "Traceback" not in err
    assert not (tmp_path / "w" / "steps").exists()


def test_a_work_directory_of_another_recipe_version_is_refused(reference, tmp_path, capsys):
    work = tmp_path / "w"
    work.mkdir()
    (work / "build.json").write_text(json.dumps({"version": 0}))
    assert main(["build", str(reference["recipe"]), "--work", str(work)]) == 2
    assert "recipe version 0" in capsys.readouterr().err


def test_explain_prints_the_chain_that_made_a_bundle(reference, capsys):
    bundle = next(b for b in reference["report"]["bundles"] if b["model"] != "teacher")["path"]
    assert main(["run", bundle, "--explain"]) == 0
    out = capsys.readouterr().out
    for word in (
        "recipe",
        "teacher",
        "data",
        "squeezebert tiny",
        "export   onnx int8-dynamic",
        "bundle   test accuracy",
    ):
        assert word in out


def test_the_report_opens_in_headless_chromium_with_every_row_and_the_plots_drawn(
    reference, tmp_path
):
    from headless_chromium import chromium, count_color, open_page

    if chromium() is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    report = reference["report"]
    page = tmp_path / "report.html"
    page.write_text(
        reference["html"], encoding="utf-8"
    )  # as the build wrote it (later tests rewrite it)
    dom, errors = open_page(page, tmp_path / "shot.png", size=(1100, 1600))
    assert errors == []
    for b in report["bundles"]:
        assert dom.count(f">{b['bundle']}<") >= 1 + len(
            report["devices"]
        )  # the table + each device's
    assert dom.count("<svg") == len(report["devices"]) and "<circle" in dom and "<polygon" in dom
    # the measured markers' fill: #0b63c5 at 55% over the plot's #fafbfc
    measured_blue = count_color(tmp_path / "shot.png", (118, 167, 222), tolerance=30)
    estimated_orange = count_color(tmp_path / "shot.png", (0xC2, 0x41, 0x0C), tolerance=40)
    assert measured_blue > 50 and estimated_orange > 20, (measured_blue, estimated_orange)


def test_explain_on_a_bundle_exported_alone_says_it_has_no_lineage(onnx_bundle, capsys):
    assert main(["run", str(onnx_bundle), "--explain"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records no lineage" in err[0]
