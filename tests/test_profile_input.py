"""What `pocketbert profile` and the agent accept: bare model files, thread counts, estimates,
--out paths; and how a bug is told apart from a device's failure. Through the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from test_devices import run_cli
from test_lab import catalog, entry, sshd, stand_in_adb  # noqa: F401  (sshd: a fixture)

from pocketbert.core.errors import UserError
from pocketbert.profiler.results import ResultsStore
from pocketbert.profiler.run import format_table, profile
from pocketbert.profiler.target import FORMAT_OF_SUFFIX, ID_RANGE


def foreign_onnx(path: Path, seq: int | str = "seq") -> Path:
    """A third party's encoder: three inputs (ids, mask, token types), an embedding table of
    exactly ID_RANGE[1] rows (an id past it fails in onnxruntime), mean-pooled output."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, [1, seq])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    words = numpy_helper.from_array(
        rng.standard_normal((ID_RANGE[1], 8)).astype(np.float32), "words"
    )
    types = numpy_helper.from_array(rng.standard_normal((2, 8)).astype(np.float32), "types")
    axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("Gather", ["words", "input_ids"], ["w"]),
        helper.make_node("Gather", ["types", "token_type_ids"], ["t"]),
        helper.make_node("Add", ["w", "t"], ["e"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axes"], ["m3"]),
        helper.make_node("Mul", ["e", "m3"], ["masked"]),
        helper.make_node("ReduceMean", ["masked"], ["pooled"], axes=[1], keepdims=0),
    ]
    out = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [1, 8])
    graph = helper.make_graph(nodes, "third-party", inputs, [out], [words, types, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def profile_cli(args: list[str], capsys, tmp_path: Path, store: str = "r.jsonl"):
    argv = ["profile", *args, "--runs", "3", "--warmup", "1", "--results", str(tmp_path / store)]
    return run_cli(argv, capsys)


# --- bare model files ----------------------------------------------------------------------


def test_profile_measures_a_bare_onnx_file_with_inputs_from_its_own_signature(tmp_path, capsys):
    model = foreign_onnx(tmp_path / "minilm-int8.onnx")
    code, out, err = profile_cli(
        [str(model), "--device", "host", "--seq-len", "16", "--json"], capsys, tmp_path
    )
    assert code == 0 and "Traceback" not in err, err
    (record,) = json.loads(out)
    assert (record["status"], record["method"], record["source"]) == (
        "ok",
        "measured",
        "foreign file",
    )
    assert record["bundle_sha256"] == record["model_sha256"] == sha(model)
    assert record["seq_len"] == record["effective_seq_len"] == 16 and record["precision"] is None
    assert [r["source"] for r in ResultsStore(tmp_path / "r.jsonl")] == ["foreign file"]


def test_profile_pads_a_static_shape_bare_file_and_says_so(tmp_path, capsys):
    model = foreign_onnx(tmp_path / "static.onnx", seq=32)
    code, out, err = profile_cli(
        [str(model), "--device", "host", "--seq-len", "16", "--json"], capsys, tmp_path
    )
    (record,) = json.loads(out)
    assert code == 0 and (record["seq_len"], record["effective_seq_len"]) == (16, 32), err
    assert "static-shape file: seq 16 runs padded to 32" in record["warnings"]
    code, out, _ = profile_cli([str(model), "--device", "host", "--json"], capsys, tmp_path)
    assert code == 0 and json.loads(out)[0]["seq_len"] == 32  # its own length when none is asked


def test_profile_asks_for_seq_len_when_a_bare_file_is_dynamic(tmp_path, capsys):
    model = foreign_onnx(tmp_path / "dyn.onnx")
    code, out, err = profile_cli([str(model), "--device", "host", "--quiet"], capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "'dyn.onnx' is a bare model file whose sequence length is dynamic; give --seq-len" in err


def test_profile_refuses_a_corrupt_bare_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x01garbage that is not a protobuf graph" * 10)
    code, _, err = profile_cli(
        [str(bad), "--device", "host", "--seq-len", "8", "--quiet"], capsys, tmp_path
    )
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "broken.onnx" in err and "bug" not in err


def test_profile_refuses_a_file_that_is_neither_bundle_nor_model(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, _, err = profile_cli([str(notes), "--device", "host"], capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "'" + str(notes) + "' is neither a bundle nor a model file" in err and ".pte" in err
    assert not (tmp_path / "r.jsonl").exists()


def test_bare_file_travels_to_a_phone_as_a_one_file_directory(tmp_path):
    model = foreign_onnx(tmp_path / "third-party.onnx")
    phone = tmp_path / "phone"
    path = catalog(
        tmp_path,
        entry(
            "ph",
            "adb-python",
            adb=str(stand_in_adb(tmp_path)),
            workdir=str(phone),
            python=sys.executable,
        ),
    )
    (record,) = profile(
        [model], ["ph"], runs=3, seq_lens=[12], catalog=path, store=None, quiet=True
    )
    assert record["status"] == "ok", record.get("error")
    assert (record["transport"], record["source"], record["seq_len"]) == (
        "adb-python",
        "foreign file",
        12,
    )
    (home,) = phone.iterdir()  # named by a hash of the file, never by the user's name
    assert home.name.startswith("bundle-")
    assert sorted(p.name for p in home.iterdir()) == ["bundle", "record.json"]
    assert [p.name for p in (home / "bundle").iterdir()] == ["third-party.onnx"]


def test_bare_file_travels_over_ssh_as_a_one_file_directory(sshd, tmp_path):  # noqa: F811
    model = foreign_onnx(tmp_path / "third-party.onnx")
    path = catalog(tmp_path, entry("pi", "ssh", **sshd))
    (record,) = profile(
        [model], ["pi"], runs=3, seq_lens=[12], catalog=path, store=None, quiet=True
    )
    assert record["status"] == "ok", record.get("error")
    assert (record["transport"], record["source"]) == ("ssh", "foreign file")
    (home,) = Path(sshd["workdir"]).iterdir()  # named by a hash, never by the user's name
    assert home.name.startswith("bundle-")
    assert sorted(p.name for p in home.iterdir()) == ["bundle", "record.json"]
    assert [p.name for p in (home / "bundle").iterdir()] == ["third-party.onnx"]


def test_estimate_counts_a_bare_onnx_file(tmp_path):
    model = foreign_onnx(tmp_path / "third-party.onnx")
    (record,) = profile([model], ["zcu104-ps"], seq_lens=[16], store=None, quiet=True)
    assert (record["status"], record["method"], record["source"]) == (
        "ok",
        "estimated",
        "foreign file",
    )
    (failed,) = profile([model], ["zcu104-ps"], store=None, quiet=True)
    assert failed["status"] == "failed" and "give --seq-len to estimate it" in failed["error"]


def test_bare_files_are_recognised_by_every_exported_suffix():
    from pocketbert.converters import EXPORTERS

    assert {info.suffix: name for name, info in EXPORTERS.items()} == FORMAT_OF_SUFFIX


# --- estimates are checked like measurements; the store says what it wrote ---------------


def test_estimate_refuses_a_format_the_device_does_not_run(onnx_bundle, tmp_path, capsys):
    code, out, err = profile_cli(
        [str(onnx_bundle), "--device", "pixel4", "--estimate", "--quiet"], capsys, tmp_path
    )
    assert code == 2 and err.count("\n") == 1
    assert "device pixel4 runs tflite, executorch files; this bundle is onnx" in err
    assert "1 record(s) appended to " + str((tmp_path / "r.jsonl").resolve()) in err


def test_profile_says_how_many_records_it_appended_and_where(onnx_bundle, tmp_path, capsys):
    code, out, _ = profile_cli(
        [str(onnx_bundle), "--device", "zcu104-ps", "rpi4", "--estimate"], capsys, tmp_path
    )
    assert code == 0 and f"2 record(s) appended to {(tmp_path / 'r.jsonl').resolve()}" in out
    code, out, _ = run_cli(
        ["profile", str(onnx_bundle), "--device", "zcu104-ps", "--results", ""], capsys
    )
    assert code == 0 and "appended" not in out


# --- the table and the warnings say which bundle -------------------------------------------


def test_table_prints_long_bundle_names_whole_and_warnings_name_bundle_and_seq(
    onnx_bundle, tmp_path, capsys
):
    names = ["executorch-int8-dynamic", "executorch-int8-static"]
    for name in names:
        shutil.copytree(onnx_bundle, tmp_path / name)
    code, out, _ = profile_cli(
        [*(str(tmp_path / n) for n in names), "--device", "host", "--seq-len", "8"]
        + ["--until-stable", "1e-9", "--max-rounds", "1"],
        capsys,
        tmp_path,
    )
    table = out.splitlines()
    assert code == 0 and [line.split()[2] for line in table[1:3]] == names
    assert len({line.index("p50") if "p50" in line else 0 for line in table[:1]}) == 1
    for name in names:
        assert f"warning: host {name} seq 8: not stable after 1 rounds" in out


def test_format_table_columns_fit_their_widest_cell():
    base = {"status": "failed", "method": None, "seq_len": 128, "threads": 4, "error": "e"}
    records = [
        {**base, "device": "a-very-long-device-name", "bundle": "/x/b"},
        {**base, "device": "h", "bundle": "/x/a-bundle-name-of-forty-characters-long"},
    ]
    lines = format_table(records).splitlines()
    assert (
        "a-very-long-device-name" in lines[1]
        and "a-bundle-name-of-forty-characters-long" in lines[2]
    )
    assert lines[1].index("128") == lines[2].index("128")  # the seq column lines up


# --- thread counts ---------------------------------------------------------------------------


def test_profile_takes_several_thread_counts(onnx_bundle, tmp_path, capsys):
    code, out, _ = profile_cli(
        [str(onnx_bundle), "--device", "host", "--threads", "1", "2", "--seq-len", "8", "--json"],
        capsys,
        tmp_path,
    )
    assert code == 0 and [(r["threads"], r["status"]) for r in json.loads(out)] == [
        (1, "ok"),
        (2, "ok"),
    ]


@pytest.mark.parametrize("threads", ["0", "-2", "100000"])
def test_profile_refuses_a_bad_thread_count_before_any_work(onnx_bundle, tmp_path, capsys, threads):
    code, out, err = profile_cli(
        [str(onnx_bundle), "--device", "host", "--threads", "1", threads], capsys, tmp_path
    )
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert f"--threads {threads}" in err and "give 1 to" in err
    assert not (tmp_path / "r.jsonl").exists()


def test_profile_api_refuses_a_bad_thread_count(onnx_bundle):
    import pocketbert

    with pytest.raises(UserError, match="--threads 100000 is out of range"):
        pocketbert.profile([onnx_bundle], ["host"], threads=100000, store=None)
    with pytest.raises(UserError, match="must be a whole number"):
        pocketbert.profile([onnx_bundle], ["host"], threads=[2.5], store=None)


def test_profile_checks_threads_against_a_remote_device_s_cores(onnx_bundle, tmp_path, capsys):
    path = catalog(tmp_path, {**entry("quad", "adb"), "cpu": {"cores": 4}})
    code, _, err = profile_cli(
        [str(onnx_bundle), "--device", "quad", "--threads", "17", "--devices", str(path)],
        capsys,
        tmp_path,
    )
    assert code == 2 and "--threads 17 is out of range for device quad; give 1 to 16" in err


def test_agent_refuses_a_bad_thread_count(onnx_bundle, capsys):
    code, out, err = run_cli(["agent", str(onnx_bundle), "--threads", "100000"], capsys)
    record = json.loads(out)
    assert code == 2 and record["status"] == "failed" and "--threads 100000" in record["error"]


# --- agent --out: only a file it creates itself -------------------------------------------


def test_agent_refuses_an_out_path_that_is_a_symlink(onnx_bundle, tmp_path, capsys):
    victim = tmp_path / "VICTIM"
    victim.write_text("precious\n")
    (tmp_path / "record.json").symlink_to(victim)
    code, out, err = run_cli(
        ["agent", str(onnx_bundle), "--runs", "2", "--out", str(tmp_path / "record.json")], capsys
    )
    assert code == 2 and "Traceback" not in err and out.count("\n") == 1
    assert "is a symbolic link" in json.loads(out)["error"]
    assert victim.read_text() == "precious\n"


def test_agent_replaces_a_hard_linked_out_file_without_writing_through_it(
    onnx_bundle, tmp_path, capsys
):
    victim = tmp_path / "VICTIM"
    victim.write_text("precious\n")
    out_path = tmp_path / "record.json"
    os.link(victim, out_path)  # what a hostile bundle's tar could hold
    code, out, _ = run_cli(
        ["agent", str(onnx_bundle), "--runs", "2", "--out", str(out_path)], capsys
    )
    assert code == 0 and victim.read_text() == "precious\n"
    assert json.loads(out_path.read_text()) == json.loads(out)
    assert out_path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("where", ["missing", "read-only"])
def test_agent_out_that_cannot_be_written_is_one_line_and_exit_2(
    onnx_bundle, tmp_path, capsys, where
):
    if where == "missing":
        out_path = tmp_path / "no" / "such" / "record.json"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out_path = ro / "record.json"
        if os.access(ro, os.W_OK):  # root ignores modes: /sys refuses new files even to root
            out_path = Path("/sys/pocketbert-record.json")
    code, out, err = run_cli(
        ["agent", str(onnx_bundle), "--runs", "2", "--out", str(out_path)], capsys
    )
    assert code == 2 and "Traceback" not in err and out.count("\n") == 1
    record = json.loads(out)
    assert record["status"] == "failed" and str(out_path) in record["error"]
    assert not out_path.exists()


# --- a bug is not a device's failure ---------------------------------------------------------


def test_bug_while_estimating_is_a_bug_record_and_exit_1_after_the_other_records(
    onnx_bundle, tmp_path, monkeypatch, capsys
):
    from pocketbert.lab import emulated

    def broken_counter(path, seq, heads):
        return {}["no such key"]  # a bug in pocketbert's own code

    monkeypatch.setitem(emulated.COUNTERS, "onnx", broken_counter)
    code, out, err = profile_cli(
        [str(onnx_bundle), "--device", "host", "zcu104-ps"], capsys, tmp_path
    )
    assert code == 1
    assert "pocketbert: device zcu104-ps: internal error KeyError" in err
    assert "this is a bug in pocketbert" in err and "Traceback" in err  # a bug keeps its traceback
    records = {r["device"]: r for r in ResultsStore(tmp_path / "r.jsonl")}
    assert records["host"]["status"] == "ok"
    bug = records["zcu104-ps"]
    assert (bug["status"], bug["bug"], bug["error_type"]) == ("error", True, "KeyError")
    assert "broken_counter" in bug["traceback"] and "BUG" in out


def test_bug_in_the_agent_process_is_not_reported_as_the_device_failing(
    onnx_bundle, tmp_path, monkeypatch
):
    # the real local transport and agent process, with a bug planted in the agent's statistics
    (tmp_path / "sitecustomize.py").write_text(
        "import pocketbert.profiler.stats as stats\n"
        "def summarize(samples):\n    return 1 / 0\n"
        "stats.summarize = summarize\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    (record,) = profile([onnx_bundle], ["host"], runs=2, store=None, quiet=True)
    assert (record["status"], record["bug"], record["error_type"]) == (
        "error",
        True,
        "ZeroDivisionError",
    )
    assert "dropped out" not in record["error"] and "summarize" in record["traceback"]


def test_agent_prints_a_bug_record_and_exits_1_on_a_bug(onnx_bundle, tmp_path, monkeypatch):
    import subprocess

    (tmp_path / "sitecustomize.py").write_text(
        "import pocketbert.profiler.stats as stats\nstats.summarize = lambda samples: 1 / 0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "pocketbert.profiler.agent", str(onnx_bundle), "--runs", "2"],
        capture_output=True,
        text=True,
        env=env,
    )
    record = json.loads(proc.stdout)
    assert proc.returncode == 1 and record["bug"] is True and record["status"] == "error"
    assert "ZeroDivisionError" in proc.stderr


def test_bug_in_the_agent_on_a_board_is_a_bug_record_not_a_dropout(sshd, onnx_bundle, tmp_path):  # noqa: F811
    python = tmp_path / "python-with-a-bug"
    python.write_text(
        f"#!{sys.executable}\nimport sys\nimport pocketbert.profiler.stats as stats\n"
        "stats.summarize = lambda samples: 1 / 0\n"
        "from pocketbert.profiler.agent import main\nsys.exit(main(sys.argv[3:]))\n"
    )
    python.chmod(0o755)
    path = catalog(tmp_path, entry("pi-bug", "ssh", **{**sshd, "python": str(python)}))
    (record,) = profile([onnx_bundle], ["pi-bug"], runs=2, catalog=path, store=None, quiet=True)
    assert (record["status"], record["bug"], record["error_type"]) == (
        "error",
        True,
        "ZeroDivisionError",
    )
