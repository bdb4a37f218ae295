"""The build recipe: the packaged default loads; each wrong field is one line naming the file,
the field's path and what would be right, exit 2, before any work (no work directory)."""

import pytest
import yaml

from pocketbert.cli.main import main
from pocketbert.recipe import DEFAULT_RECIPE, load_recipe


def test_the_packaged_recipe_is_the_default_build():
    r = load_recipe()
    assert r.source == str(DEFAULT_RECIPE)
    assert r.teacher == "examples:all-MiniLM-L6-v2" and r.finetune is not None
    assert [s.family for s in r.students] == ["squeezebert", "mobilebert"]
    assert set(r.formats) == {"onnx", "executorch", "tflite", "fpga"}
    assert r.precisions_for("fpga") == ("int8-static",)
    assert r.precisions_for("onnx") == ("int8-dynamic",)
    assert [d.id for d in r.devices] == ["host", "rpi5", "pixel4", "zcu104"]


def _base(tmp_path):
    (tmp_path / "data.csv").write_text("text,label\na,x\nb,y\n")
    return {
        "version": 1,
        "teacher": {"model": "examples:all-MiniLM-L6-v2", "finetune": {"epochs": 1}},
        "data": {"path": "data.csv"},
        "students": [{"family": "squeezebert"}],
        "export": {"formats": ["onnx"], "precisions": ["int8-dynamic"]},
        "devices": ["host"],
    }


def test_relative_paths_are_read_from_the_recipe_folder_and_bare_ids_are_devices(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_base(tmp_path)))
    r = load_recipe(path)
    assert r.data == str((tmp_path / "data.csv").resolve())
    assert r.devices[0].id == "host" and r.devices[0].measure == "auto"
    assert r.students[0].size == "small"


CASES = [  # (change to the base recipe, the field path named, a word of the remedy)
    (lambda r: r.update(colour="red"), "r.yaml: colour:", "choose from"),
    (lambda r: r.update(version=2), "r.yaml: version:", "reads version 1"),
    (lambda r: r.pop("version"), "r.yaml: version:", "required"),
    (
        lambda r: r["students"].append({"family": "bort"}),
        "students[1].family:",
        "mobilebert, squeezebert",
    ),
    (lambda r: r["students"].append({"family": "squeezebert"}), "students:", "once"),
    (lambda r: r["students"][0].update(size="huge"), "students[0].size:", "medium, small, tiny"),
    (lambda r: r["students"][0].update(knobs={"wings": 2}), "students[0].knobs:", "layers"),
    (lambda r: r.update(devices=["toaster"]), "devices[0].id:", "pixel4"),
    (lambda r: r.update(devices=[{"id": "pixel4"}]), "devices:", "export.formats"),
    (
        lambda r: r.update(devices=[{"id": "zcu104", "measure": "measured"}]),
        "devices[0].measure:",
        "estimated",
    ),
    (
        lambda r: r.update(devices=[{"id": "host", "budgets": {"max_latency_ms": -3}}]),
        "devices[0].budgets.max_latency_ms:",
        "above 0",
    ),
    (
        lambda r: r.update(devices=[{"id": "host", "budgets": {"min_kept": 120}}]),
        "devices[0].budgets.min_kept:",
        "0-100",
    ),
    (
        lambda r: r.update(devices=[{"id": "host", "budgets": {"max_ram": 1}}]),
        "devices[0].budgets.max_ram:",
        "max_memory_mb",
    ),
    (lambda r: r["export"].update(precisions=["int4"]), "export.precisions[0]:", "int8-static"),
    (
        lambda r: r["export"].update(per_format={"fpga": ["int8-static"]}),
        "export.per_format.fpga:",
        "not in export.formats (onnx)",
    ),
    (
        lambda r: r["export"].update(formats=["onnx", "fpga"], per_format={"fpga": "fp32"}),
        "export.per_format.fpga[0]:",
        "int8-static",
    ),
    (lambda r: r["export"].update(max_seq_len="long"), "export.max_seq_len:", "whole number"),
    (lambda r: r["export"].update(max_seq_len=4), "export.max_seq_len:", "8 to 4096"),
    (lambda r: r.update(distill={"epochs": 0}), "distill:", "epochs must be"),
    (lambda r: r.update(distill={"student": "bert"}), "distill.student:", "choose from"),
    (lambda r: r["teacher"].update(model="no/such/dir"), "teacher.model:", "does not exist"),
    (lambda r: r["data"].update(path="missing.csv"), "data.path:", "does not exist"),
    (lambda r: r["data"].update(path="examples:imdb"), "data.path:", "examples:rotten_tomatoes"),
    (lambda r: r.update(students="squeezebert"), "students:", "list"),
]


@pytest.mark.parametrize("change, where, remedy", CASES)
def test_a_wrong_field_is_one_line_naming_its_path_before_any_work(
    change, where, remedy, tmp_path, monkeypatch, capsys
):
    recipe = _base(tmp_path)
    change(recipe)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(path), "--work", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pocketbert: error: "), err
    assert where in err[0] and remedy in err[0], err[0]
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("text", ["version: [1\n", "- just\n- a list\n", ""])
def test_a_recipe_that_is_not_a_yaml_mapping_is_refused(text, tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    assert main(["build", str(path), "--work", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "r.yaml" in err[0] and "mapping" in err[0]
