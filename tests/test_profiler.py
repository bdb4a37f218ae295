"""Local profiling: fresh-process measurement of every format, statistics, hygiene, the store."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from test_devices import run_cli

from pocketbert.core.errors import UserError
from pocketbert.profiler import hygiene
from pocketbert.profiler.results import ResultsStore
from pocketbert.profiler.run import profile
from pocketbert.profiler.stats import median_ci, relative_ci, summarize


def _formats() -> list[str]:
    """Every registered format the host device runs (devices.yaml decides; the fpga
    emulator is measured here once the host entry lists ``fpga``)."""
    from pocketbert.converters import EXPORTERS
    from pocketbert.devices import load_devices

    return sorted(f for f in EXPORTERS if f in load_devices()["host"].formats)


@pytest.fixture(scope="module", params=_formats())
def format_bundle(request, fp32_bundle):
    precision = "int8-static" if request.param == "fpga" else "fp32"  # no fp32 integer program
    return fp32_bundle(request.param, precision)  # shared with the runtime contract and run tests


def test_profile_measures_bundle_in_fresh_process_for_every_format(format_bundle, tmp_path):
    store = tmp_path / "results.jsonl"
    (record,) = profile(
        [format_bundle], ["host"], runs=12, warmup=2, seq_lens=[16], store=store, quiet=True
    )
    assert (
        record["status"] == "ok" and record["method"] == "measured" and record["device"] == "host"
    )
    assert len(record["samples_ms"]) == 12
    lat = record["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["ci95_median"][0] <= lat["p50"] <= lat["ci95_median"][1]
    assert record["load_ms"] > 0 and record["first_run_ms"] > 0
    mem = record["memory"]
    assert mem["peak_rss_mb"] >= mem["runtime_only_rss_mb"] > 0 and mem["file_mb"] > 0
    assert record["machine"]["cpu_model"] and record["machine"]["cores"]
    assert [json.loads(line)["bundle_sha256"] for line in store.read_text().splitlines()] == [
        record["bundle_sha256"]
    ]


def test_profile_measures_a_bare_model_file_of_every_format(format_bundle, tmp_path):
    from pocketbert.bundle import open_bundle

    bare = tmp_path / f"third-party{open_bundle(format_bundle).model_path.suffix}"
    shutil.copyfile(open_bundle(format_bundle).model_path, bare)
    (record,) = profile([bare], ["host"], runs=3, warmup=1, seq_lens=[16], store=None, quiet=True)
    assert (record["status"], record["source"], record["seq_len"]) == ("ok", "foreign file", 16)
    assert record["bundle_sha256"] == record["model_sha256"]


def test_median_ci_brackets_the_median_and_narrows_with_more_samples():
    lo, hi = median_ci(list(range(1, 101)))
    assert lo < 50.5 < hi and (lo, hi) == (40, 61)
    wide = median_ci([float(x % 20) for x in range(40)])
    narrow = median_ci([float(x % 20) for x in range(4000)])
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)


def test_summarize_gives_percentiles_mean_and_std():
    s = summarize([float(x) for x in range(1, 101)])
    assert (s["p50"], s["p90"], s["p99"], s["mean"]) == (50.5, 90.1, 99.01, 50.5)
    assert s["std"] == pytest.approx(29.0115, abs=1e-3)
    assert relative_ci(s) == pytest.approx((61 - 40) / 2 / 50.5, abs=1e-4)


def test_hygiene_warns_about_busy_cpu_governor_and_spread():
    machine = {"busy_cores_before": 0.8, "governor": ["powersave"]}
    summary = {"p50": 1.0, "p90": 1.5, "ci95_median": [0.8, 1.2]}
    text = " ".join(hygiene.warnings_for(machine, summary))
    assert (
        "0.80 cores busy" in text
        and "powersave" in text
        and "p90 is 50%" in text
        and "±20.0%" in text
    )
    quiet = {"busy_cores_before": 0.0, "governor": ["performance"]}
    assert hygiene.warnings_for(quiet, {"p50": 1.0, "p90": 1.01, "ci95_median": [0.99, 1.01]}) == []


def test_results_store_only_ever_appends(tmp_path):
    store = ResultsStore(tmp_path / "r.jsonl")
    store.append({"device": "a"})
    first = store.path.read_bytes()
    store.append({"device": "b"})
    assert store.path.read_bytes().startswith(first)
    assert [r["device"] for r in store] == ["a", "b"]


def test_until_stable_pools_fresh_process_rounds(onnx_bundle):
    (record,) = profile(
        [onnx_bundle],
        ["host"],
        runs=6,
        warmup=1,
        until_stable=1e-9,
        max_rounds=2,
        store=None,
        quiet=True,
    )
    assert record["rounds"] == 2 and len(record["samples_ms"]) == 12
    assert any("not stable after 2 rounds" in w for w in record["warnings"])


def test_agent_never_imports_torch(onnx_bundle):
    code = (
        "import sys; from pocketbert.profiler.agent import measure; import pocketbert.lab; "
        f"r = measure({str(onnx_bundle)!r}, runs=3, warmup=1); "
        "bad = [m for m in ('torch', 'transformers', 'pocketbert.converters') if m in sys.modules]; "
        "print(r['status'], bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "ok []"


def test_agent_says_what_to_install_when_runtime_is_missing(onnx_bundle, monkeypatch, capsys):
    from pocketbert.profiler import agent

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(
        UserError, match="not installed on this device; install it there: pip install onnxruntime"
    ):
        agent.measure(onnx_bundle, runs=2)
    assert agent.main([str(onnx_bundle), "--runs", "2"]) == 2
    assert json.loads(capsys.readouterr().out)["status"] == "failed"


def test_profile_cli_exits_2_when_bundle_is_corrupt(onnx_bundle, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(onnx_bundle, bad)
    with (bad / "model.onnx").open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    code, out, err = run_cli(
        ["profile", str(bad), "--device", "host", "--results", str(tmp_path / "r")], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "does not match its manifest sha256" in err
    assert not (tmp_path / "r").exists()


def test_profile_cli_unknown_device_lists_known_ones(onnx_bundle, tmp_path, capsys):
    code, _, err = run_cli(
        ["profile", str(onnx_bundle), "--device", "nokia3310", "--results", str(tmp_path / "r")],
        capsys,
    )
    assert code == 2 and "unknown device 'nokia3310'; known devices: host, pixel4" in err


def test_profile_cli_reports_format_the_device_cannot_run_and_keeps_other_results(
    onnx_bundle, tmp_path, capsys
):
    store = tmp_path / "r.jsonl"
    argv = [
        "profile",
        str(onnx_bundle),
        "--device",
        "host",
        "pixel4",
        "--runs",
        "5",
        "--quiet",
        "--results",
        str(store),
    ]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1
    assert (
        "device pixel4 runs tflite, executorch files; this bundle is onnx" in err
        and "1 result(s) kept" in err
    )
    records = list(ResultsStore(store))
    assert [(r["device"], r["status"]) for r in records if r["device"] == "host"] == [
        ("host", "ok")
    ]
    assert [(r["device"], r["status"]) for r in records if r["device"] == "pixel4"] == [
        ("pixel4", "failed")
    ]
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:3]}
    assert rows == {"host": "measured", "pixel4": "failed"} and "FAILED" in out


def test_profile_cli_json_output_is_machine_readable(onnx_bundle, tmp_path, capsys):
    argv = [
        "profile",
        str(onnx_bundle),
        "--device",
        "host",
        "--runs",
        "4",
        "--seq-len",
        "8",
        "16",
        "--json",
        "--results",
        str(tmp_path / "r"),
    ]
    code, out, _ = run_cli(argv, capsys)
    records = json.loads(out)
    assert code == 0 and [r["seq_len"] for r in records] == [8, 16]
    assert all(r["method"] == "measured" and r["device"] == "host" for r in records)


def test_agent_cli_prints_one_json_record(onnx_bundle, capsys):
    code, out, _ = run_cli(["agent", str(onnx_bundle), "--runs", "3", "--seq-len", "8"], capsys)
    record = json.loads(out)
    assert code == 0 and record["method"] == "measured" and len(record["samples_ms"]) == 3
