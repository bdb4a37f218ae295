"""Bundles on emulated board software (qemu-user, Debian arm64 python3.11, the board's
aarch64 wheels), compared with the host's run; the old tflite-runtime 2.14 set; bad input.

The emulated root and the wheel sets are built once into the user cache (POCKETBERT_CACHE /
XDG_CACHE_HOME) and shared by every later run; tests that need qemu or the package index
skip, saying why, where they are missing.
"""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from pocketbert.cli.main import main
from pocketbert.core.errors import UserError

QEMU_MISSING = shutil.which("qemu-aarch64-static") is None
needs_qemu = pytest.mark.skipif(
    QEMU_MISSING, reason="qemu-user-static is not installed (apt-get install qemu-user-static)"
)
OFFLINE_HINTS = ("could not download", "pip could not fetch", "did not fetch")


def check(bundle, board, **kw):
    """check_on_board, skipping the test when the mirror or the package index is out of reach."""
    from pocketbert.boards.check import check_on_board

    try:
        return check_on_board(bundle, board, say=lambda line: None, **kw)
    except UserError as exc:
        if any(h in str(exc) for h in OFFLINE_HINTS):
            pytest.skip(f"no network for the emulated board's packages: {exc}")
        raise


def catalog(tmp_path: Path, **entry) -> Path:
    """The packaged catalog plus one board 'testboard' (rpi5's entry with ``entry`` changes)."""
    data = yaml.safe_load(Path(__file__).parents[1].joinpath("devices.yaml").read_text())
    rpi5 = next(d for d in data["devices"] if d["id"] == "rpi5")
    data["devices"].append({**rpi5, "id": "testboard", **entry})
    path = tmp_path / "devices.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("pocketbert: error: ")
    return err[0]


@needs_qemu
def test_onnx_bundle_runs_on_emulated_rpi5_and_matches_the_host(fp32_bundle):
    r = check(fp32_bundle("onnx"), "rpi5")
    assert r["status"] == "passed", r
    sw = r["software"]
    assert sw["machine"] == "aarch64" and sw["python"].startswith("3.11")
    assert sw["runtime_modules"] == ["onnxruntime"] and not sw["torch_loaded"]
    assert r["parity"]["max_abs_diff"] <= 1e-4
    assert r["parity"]["gate"] == "max_abs_diff <= 0.0001, and mean_cosine >= 0.98"
    assert "not a figure for the board" in r["check_s_is"]


@needs_qemu
@pytest.mark.parametrize(
    "board, precision, runtime, numpy_major",
    [
        ("rpi5", "fp32", "ai_edge_litert", "2"),
        ("rpi4", "fp32", "tflite_runtime", "1"),
    ],
)
def test_tflite_bundle_runs_on_each_boards_own_runtime_and_numpy(
    fp32_bundle, board, precision, runtime, numpy_major
):
    r = check(fp32_bundle("tflite", precision), board)
    assert r["status"] == "passed", r
    assert r["software"]["runtime_modules"] == [runtime]
    assert r["software"]["numpy"].split(".")[0] == numpy_major
    if board == "rpi4":
        assert r["software"]["installed"]["tflite-runtime"] == "2.14.0"


@needs_qemu
def test_int8_static_tflite_does_not_run_on_tflite_runtime_2_14(fp32_bundle):
    """The evidence behind boards.check.REFUSALS: when a release runs the file, this fails."""
    r = check(fp32_bundle("tflite", "int8-static"), "rpi4")
    assert r["status"] == "does not run", r
    assert "Segmentation fault" in r["error"] and "tflite_runtime" in r["error"]
    assert "parity" not in r


@needs_qemu
def test_int8_dynamic_tflite_gives_wrong_outputs_on_tflite_runtime_2_14(fp32_bundle):
    """The evidence behind boards.check.REFUSALS: when a release runs the file right, this fails."""
    r = check(fp32_bundle("tflite", "int8-dynamic"), "rpi4")
    assert r["software"]["installed"]["tflite-runtime"] == "2.14.0"
    assert r["status"] == "failed" and r["parity"]["mean_cosine"] < 0.98, r
    right = check(fp32_bundle("tflite", "int8-dynamic"), "rpi5")  # ai-edge-litert 2.3
    assert right["status"] == "passed" and right["parity"]["mean_cosine"] >= 0.98


@needs_qemu
def test_verify_on_prints_a_line_per_board_and_exits_2_when_one_cannot_run(fp32_bundle, capsys):
    bundle = fp32_bundle("tflite", "int8-static")
    code = main(["verify", str(bundle), "--on", "rpi5", "rpi4", "--quiet"])
    out = capsys.readouterr()
    if code == 2 and any(h in out.err for h in OFFLINE_HINTS):
        pytest.skip("no network for the emulated board's packages")
    lines = out.out.strip().splitlines()
    assert code == 2 and len(lines) == 2
    assert lines[0].startswith("rpi5   passed") and "not a board timing" in lines[0]
    assert lines[1].startswith("rpi4   does not run")
    err = out.err.strip().splitlines()
    assert len(err) == 1 and "does not run on rpi4's software" in err[0]


@pytest.mark.parametrize("precision", ["int8-dynamic", "int8-static"])
def test_build_refuses_int8_tflite_for_a_board_on_tflite_runtime_2_14(
    tiny_models, reviews_csv, tmp_path, capsys, precision
):
    recipe = {
        "version": 1,
        "teacher": {"model": str(tiny_models["bert"])},
        "data": {"path": str(reviews_csv)},
        "students": [{"family": "squeezebert", "size": "tiny"}],
        "export": {"formats": ["tflite"], "precisions": [precision], "max_seq_len": 32},
        "devices": [{"id": "rpi4"}],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["build", str(path), "--work", str(tmp_path / "w"), "--dry-run"]) == 2
    line = one_error_line(capsys)
    assert "rpi4 runs tflite-runtime 2.14.0" in line and f"drop {precision}" in line


def _plan(tiny_models, reviews_csv, tmp_path, devices):
    from pocketbert.build_plan import plan
    from pocketbert.core.progress import Progress
    from pocketbert.pipeline import Build
    from pocketbert.recipe import load_recipe

    recipe = {
        "version": 1,
        "teacher": {"model": str(tiny_models["bert"])},
        "data": {"path": str(reviews_csv)},
        "students": [{"family": "squeezebert", "size": "tiny"}],
        "export": {"formats": ["onnx", "executorch"], "precisions": ["fp32"], "max_seq_len": 32},
        "devices": devices,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    b = Build(load_recipe(path), tmp_path / "w", Progress(quiet=True))
    plan(b, data_root=tmp_path / "data")
    return b


def test_build_plans_an_emulated_check_per_board_bundle(
    tiny_models, reviews_csv, tmp_path, monkeypatch
):
    import pocketbert.build_plan

    monkeypatch.setattr(pocketbert.build_plan, "_qemu_installed", lambda: True)
    b = _plan(tiny_models, reviews_csv, tmp_path, [{"id": "rpi5"}, {"id": "host"}])
    emulate = [s.name for s in b.steps.values() if s.kind == "emulate"]
    exported = [s.name.removeprefix("export ") for s in b.steps.values() if s.kind == "export"]
    onnx = [n for n in exported if "-onnx-" in n]
    assert onnx and emulate == [f"emulate rpi5 {n}" for n in onnx]  # .pte: a note; host: no board
    assert all(b.steps[e].after == (f"evaluate {e.split(' ', 2)[2]}",) for e in emulate)
    assert any(
        "ExecuTorch bundles are not checked under emulation" in n for n in b.context["notes"]
    )


def test_build_skips_the_emulated_check_with_a_note_when_qemu_is_missing(
    tiny_models, reviews_csv, tmp_path, monkeypatch
):
    import pocketbert.build_plan

    monkeypatch.setattr(pocketbert.build_plan, "_qemu_installed", lambda: False)
    b = _plan(tiny_models, reviews_csv, tmp_path, [{"id": "rpi5"}])
    assert not [s for s in b.steps.values() if s.kind == "emulate"]
    assert any("apt-get install qemu-user-static" in n for n in b.context["notes"])


def test_verify_says_what_to_install_when_qemu_is_missing(fp32_bundle, capsys, monkeypatch):
    import pocketbert.boards.root

    monkeypatch.setattr(pocketbert.boards.root.shutil, "which", lambda name: None)
    assert main(["verify", str(fp32_bundle("onnx")), "--on", "rpi5"]) == 2
    assert "`apt-get install qemu-user-static`" in one_error_line(capsys)


@pytest.mark.parametrize(
    "board, expected",
    [
        ("rpi9", "no device 'rpi9' in the catalog; choose one of:"),
        ("pixel4", "lists no software: entry in devices.yaml"),
        ("host", "lists no software: entry"),
    ],
)
def test_verify_on_a_device_that_cannot_be_emulated_is_one_line(
    fp32_bundle, capsys, board, expected
):
    assert main(["verify", str(fp32_bundle("onnx")), "--on", board]) == 2
    assert expected in one_error_line(capsys)


def test_a_board_on_a_python_the_root_does_not_have_is_one_line(fp32_bundle, tmp_path, capsys):
    path = catalog(tmp_path, software={"python": "3.9"})
    if QEMU_MISSING:
        pytest.skip("qemu-user-static is not installed: that line comes first")
    assert (
        main(["verify", str(fp32_bundle("onnx")), "--on", "testboard", "--devices", str(path)]) == 2
    )
    assert "a board on Python 3.9 cannot be emulated here" in one_error_line(capsys)


def test_a_format_the_board_does_not_run_is_one_line(fp32_bundle, tmp_path, capsys):
    path = catalog(tmp_path, formats=["tflite"])
    assert (
        main(["verify", str(fp32_bundle("onnx")), "--on", "testboard", "--devices", str(path)]) == 2
    )
    assert "testboard does not run onnx bundles" in one_error_line(capsys)


def test_executorch_bundles_are_said_not_to_be_emulated():
    from pocketbert.boards.wheels import requirements

    with pytest.raises(UserError, match="ExecuTorch bundles are not checked under emulation"):
        requirements("executorch", {"python": "3.11"})


def test_a_board_runtime_with_no_aarch64_wheel_is_one_line_and_leaves_nothing(
    fp32_bundle, tmp_path, capsys, monkeypatch
):
    if QEMU_MISSING:
        pytest.skip("qemu-user-static is not installed: that line comes first")
    cache = _private_cache(tmp_path, monkeypatch)
    path = catalog(tmp_path, software={"python": "3.11", "onnx": ["tflite-runtime==2.10.0"]})
    code = main(
        ["verify", str(fp32_bundle("onnx")), "--on", "testboard", "--devices", str(path), "--quiet"]
    )
    line = one_error_line(capsys)
    if any(h in line for h in OFFLINE_HINTS):
        pytest.skip(f"no network: {line}")
    assert code == 2
    assert "tflite-runtime==2.10.0 has no aarch64 wheel for CPython 3.11" in line
    assert not list(cache.glob("wheels-*")) and not list(cache.glob(".wheels-*tmp*"))


def _private_cache(tmp_path: Path, monkeypatch) -> Path:
    """A cache of this test's own, holding a copy of the shared emulated root if one is built."""
    from pocketbert.boards.root import emulation_dir

    shared = emulation_dir()
    monkeypatch.setenv("POCKETBERT_CACHE", str(tmp_path / "cache"))
    emulation_dir().mkdir(parents=True)
    root = next(shared.glob("debian-*[0-9]"), None) if shared.is_dir() else None
    if root is not None:
        shutil.copytree(root, emulation_dir() / root.name, symlinks=True)
    return emulation_dir()


def test_a_corrupt_root_is_rebuilt_and_says_so(tmp_path, monkeypatch):
    from pocketbert.boards import root as qemu_root

    _private_cache(tmp_path, monkeypatch)
    said: list[str] = []
    try:
        root = qemu_root.ensure_root(say=said.append)
    except UserError as exc:
        pytest.skip(f"no network for the Debian mirror: {exc}")
    assert (root / "sys/devices/system/cpu/possible").read_text() == ""  # the cpuinfo trap
    assert qemu_root.check_tree(root) is None
    python = root / "usr/lib/python3.11/os.py"
    python.write_text(python.read_text()[:100])  # truncated, as a killed copy would leave it
    assert "corrupt" in qemu_root.check_tree(root)
    said.clear()
    try:
        assert qemu_root.ensure_root(say=said.append) == root
    except UserError as exc:
        pytest.skip(f"no network for the Debian mirror: {exc}")
    assert "is corrupt" in said[0] and "rebuilding it" in said[0]
    assert said[1].startswith("building the emulated aarch64 root")
    assert qemu_root.check_tree(root) is None and not list(root.parent.glob(".*tmp*"))


def test_a_root_build_that_fails_midway_leaves_nothing(tmp_path, monkeypatch):
    from pocketbert.boards import root as qemu_root

    monkeypatch.setenv("POCKETBERT_CACHE", str(tmp_path / "cache"))
    real, calls = qemu_root.fetch, []

    def flaky(url: str) -> bytes:
        calls.append(url)
        if url.endswith(".deb") and len([c for c in calls if c.endswith(".deb")]) > 3:
            raise UserError(f"could not download {url} (connection reset)")
        return real(url)

    monkeypatch.setattr(qemu_root, "fetch", flaky)
    with pytest.raises(UserError) as caught:
        qemu_root.ensure_root(say=lambda line: None)
    if "connection reset" not in str(caught.value):
        pytest.skip(f"no network for the Debian mirror: {caught.value}")
    left = [p.name for p in qemu_root.emulation_dir().iterdir() if not p.name.endswith(".lock")]
    assert left == []


def test_devices_yaml_software_entries_are_checked(tmp_path, capsys):
    path = catalog(tmp_path, software={"python": "3.11", "onnx": "onnxruntime"})
    assert main(["devices", "--devices", str(path)]) == 2
    assert "'software' onnx must be a list of pip requirements" in one_error_line(capsys)


def test_rpi4_lists_tflite_runtime_2_14_with_numpy_1():
    from pocketbert.devices import load_devices

    rpi4 = load_devices(Path(__file__).parents[1] / "devices.yaml")["rpi4"]
    assert rpi4.software == {"python": "3.11", "tflite": ["tflite-runtime==2.14.0", "numpy<2"]}
    assert json.dumps(rpi4.software)  # JSON-able: build steps hash it


@needs_qemu
def test_the_build_step_checks_a_board_bundle_and_says_when_it_does_not_run(fp32_bundle, tmp_path):
    from types import SimpleNamespace

    from pocketbert.build_steps import emulate
    from pocketbert.core.progress import Progress

    runs = {}
    for precision, board in (("fp32", "rpi4"), ("int8-static", "rpi4")):
        folder = tmp_path / precision
        shutil.copytree(fp32_bundle("tflite", precision), folder / "bundle")
        run = SimpleNamespace(
            step=SimpleNamespace(reads={"device": board}, after=(f"evaluate b-{precision}",)),
            result=lambda name: {"status": "ok", "bundle": "bundle"},
            folder=lambda name, folder=folder: folder,
            build=SimpleNamespace(progress=Progress(quiet=True)),
        )
        runs[precision] = emulate(run)
    if runs["fp32"]["status"] == "not checked":
        pytest.skip(f"not checked here: {runs['fp32']['warnings']}")
    assert runs["fp32"]["status"] == "passed" and runs["fp32"]["warnings"] == []
    assert runs["fp32"]["record"]["software"]["installed"]["tflite-runtime"] == "2.14.0"
    bad = runs["int8-static"]
    assert bad["status"] == "does not run"
    assert bad["warnings"][0].startswith("rpi4 b-int8-static: does not run on the board's software")


def test_a_bundle_that_does_not_run_on_a_board_is_never_its_pick():
    from types import SimpleNamespace

    from pocketbert.recipe import Budgets
    from pocketbert.selection import select

    steps = {
        f"profile rpi4 {n}": SimpleNamespace(
            name=f"profile rpi4 {n}",
            kind="profile",
            reads={"device": "rpi4"},
            after=(f"evaluate {n}",),
        )
        for n in ("a", "b")
    }
    ok = {"status": "ok", "method": "estimated", "p50_ms": 1.0, "p90_ms": 1.0, "memory_mb": None}
    results = {
        "evaluate a": {"test_accuracy": 0.9, "file_mb": 1.0},
        "evaluate b": {"test_accuracy": 0.8, "file_mb": 1.0},
        "profile rpi4 a": {"row": ok},
        "profile rpi4 b": {"row": ok},
        "emulate rpi4 a": {"status": "does not run", "warnings": ["rpi4 a: does not run ..."]},
        "finetune": {"summary": {"test_accuracy": 0.9}},
    }
    chosen = select(SimpleNamespace(steps=steps, results=results), "rpi4", Budgets())
    assert chosen["pick"] == "b"
    a = next(c for c in chosen["candidates"] if c["bundle"] == "a")
    assert a["status"] == "failed" and "does not run" in a["error"]
