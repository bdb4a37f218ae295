"""The device catalog: shipped entries, schema errors, look-ups, lookup order and `pocketbert devices`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pocketbert.core.errors import UserError
from pocketbert.devices import default_path, get_devices, load_devices
from pocketbert.profiler.results import ResultsStore

SHIPPED = ("host", "rpi4", "rpi5", "pixel4", "pixel9", "zcu104")


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the real CLI entry point; its exit code, stdout and stderr."""
    from pocketbert.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def write_catalog(path: Path, entries: list[dict]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"devices": entries}))
    return path


def test_catalog_holds_every_shipped_device_with_its_figures():
    catalog = load_devices()
    assert set(SHIPPED) <= set(catalog)
    for device in catalog.values():
        if device.kind == "fpga":  # described by its fabric: the fpga model's resources
            from pocketbert.lab.fpga_model import REQUIRED, Accelerator

            assert device.can_estimate and set(REQUIRED) <= set(device.fpga), device.id
            assert Accelerator.from_device(device).pes > 0
        elif device.kind != "host":
            assert device.can_estimate, device.id
            assert device.peak_gops_int8 and device.ram_gb and device.cpu.get("ghz"), device.id


def test_catalog_uses_only_registered_transports(tmp_path):
    import yaml

    from pocketbert.lab import TRANSPORTS

    # the shipped file itself, not what the loader let through
    shipped = yaml.safe_load(default_path().read_text())["devices"]
    assert {d["transport"] for d in shipped} <= set(TRANSPORTS)
    # and the loader is what keeps an unregistered transport out
    path = write_catalog(tmp_path / "d.yaml", [{**GOOD, "transport": "carrier-pigeon"}])
    with pytest.raises(
        UserError,
        match=f"'transport' is 'carrier-pigeon'; choose one of: {', '.join(sorted(TRANSPORTS))}$",
    ):
        load_devices(path)


def test_repository_catalog_is_the_packaged_one():
    # run from the repository root, ./devices.yaml is the one used: it must not drift
    root = Path(__file__).resolve().parents[1] / "devices.yaml"
    if root.is_file():
        assert root.read_bytes() == default_path().read_bytes()


def test_catalog_entries_cite_their_sources():
    text = default_path().read_text()
    for device_id in SHIPPED[1:]:
        block = text.split(f"id: {device_id}\n", 1)[1].split("- id:", 1)[0]
        assert "#" in block, f"{device_id} has no source comment"


GOOD = {
    "id": "b1",
    "kind": "board",
    "transport": "local",
    "formats": ["onnx"],
    "runtimes": ["onnxruntime"],
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "toaster"}, "kind"),
        ({"transport": "pigeon"}, "transport"),
        ({"peak_gflops_fp32": -3}, "peak_gflops_fp32"),
        ({"formats": ["onnx", "coreml"]}, "formats"),
        ({"colour": "red"}, "colour"),
        ({"transport": "ssh"}, "connect"),
        ({"transport": "emulated"}, "transport"),
    ],
)
def test_load_devices_names_the_bad_field_when_an_entry_breaks_the_schema(tmp_path, change, field):
    path = write_catalog(tmp_path / "devices.yaml", [{**GOOD, **change}])
    with pytest.raises(UserError, match=f"device #1 \\(b1\\): '{field}'"):
        load_devices(path)


def test_load_devices_reports_missing_field(tmp_path):
    entry = {k: v for k, v in GOOD.items() if k != "runtimes"}
    with pytest.raises(UserError, match="'runtimes' is missing"):
        load_devices(write_catalog(tmp_path / "d.yaml", [entry]))


def test_load_devices_rejects_duplicate_ids_and_non_yaml(tmp_path):
    with pytest.raises(UserError, match="appears twice"):
        load_devices(write_catalog(tmp_path / "d.yaml", [GOOD, GOOD]))
    (tmp_path / "bad.yaml").write_text("devices: [\n  - id: x\n  kind: [")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_devices(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- id: x\n")
    with pytest.raises(UserError, match="top-level 'devices:' list"):
        load_devices(tmp_path / "list.yaml")


def test_get_devices_lists_known_ids_when_id_is_unknown():
    with pytest.raises(UserError, match="unknown device 'pixel99'; known devices: host, .*rpi4"):
        get_devices(["host", "pixel99"], load_devices())


def test_devices_cli_prints_table_and_json(capsys):
    code, out, _ = run_cli(["devices"], capsys)
    assert code == 0 and "pixel4" in out and "GFLOP/s" in out
    code, out, _ = run_cli(["devices", "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and {r["id"] for r in rows} >= set(SHIPPED)


def test_devices_cli_exits_2_with_one_line_when_catalog_is_malformed(tmp_path, capsys):
    path = write_catalog(tmp_path / "d.yaml", [{**GOOD, "kind": "toaster"}])
    code, out, err = run_cli(["devices", "--devices", str(path)], capsys)
    assert code == 2 and out == ""
    assert (
        err.count("\n") == 1
        and "'kind' is 'toaster'; choose one of: board, fpga, host, phone" in err
    )


# --- the catalog: --devices, then ./devices.yaml, then the packaged one --------------------


def _lab_catalog(directory: Path, **change) -> Path:
    return write_catalog(directory / "devices.yaml", [{**GOOD, "id": "bench1", **change}])


def test_devices_yaml_in_the_current_directory_is_used_and_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = _lab_catalog(tmp_path)
    code, out, err = run_cli(["devices"], capsys)
    assert code == 0 and "bench1" in out and "pixel4" not in out
    assert err == f"devices: {path} (found in the current directory)\n"
    code, out, _ = run_cli(["devices", "--json"], capsys)
    assert [(r["id"], r["catalog"]) for r in json.loads(out)] == [("bench1", str(path))]


def test_profile_records_name_the_catalog_they_used(onnx_bundle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = _lab_catalog(tmp_path)
    argv = ["profile", str(onnx_bundle), "--device", "bench1", "--runs", "3", "--json"]
    code, out, err = run_cli([*argv, "--results", str(tmp_path / "r.jsonl")], capsys)
    assert code == 0 and json.loads(out)[0]["catalog"] == str(path) and "devices:" not in err
    assert [r["catalog"] for r in ResultsStore(tmp_path / "r.jsonl")] == [str(path)]


def test_broken_devices_yaml_in_the_current_directory_is_an_error_not_skipped(
    onnx_bundle, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    path = _lab_catalog(tmp_path, kind="toaster")
    for argv in (["devices"], ["profile", str(onnx_bundle), "--device", "host"]):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
        assert f"{path}: device #1 (bench1): 'kind' is 'toaster'" in err


def test_packaged_catalog_is_used_and_named_without_a_local_one(tmp_path, monkeypatch, capsys):
    from pocketbert.devices import default_path

    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["devices"], capsys)
    assert code == 0 and "pixel4" in out
    assert err == f"devices: {default_path()} (the packaged catalog)\n"
    code, _, err = run_cli(["devices", "--quiet"], capsys)
    assert code == 0 and err == ""


def test_devices_flag_wins_over_the_local_catalog(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _lab_catalog(tmp_path, kind="toaster")  # broken, but not the one asked for
    other = tmp_path / "lab"
    other.mkdir()
    path = _lab_catalog(other, id="bench2")
    code, out, err = run_cli(["devices", "--devices", str(path)], capsys)
    assert code == 0 and "bench2" in out and err == f"devices: {path} (given with --devices)\n"
