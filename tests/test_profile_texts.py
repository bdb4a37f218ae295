"""`pocketbert profile --texts FILE`: predict() end to end on each sentence at its own length,
beside the fixed-length figure; here, over the loopback sshd, through a stand-in adb, and the
bad inputs it refuses in one line."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from test_devices import run_cli
from test_lab import catalog, entry, sshd, stand_in_adb  # noqa: F401  (sshd: a fixture)

from pocketbert.profiler.run import format_table, profile

SENTENCES = [
    "Good film.",
    "The plot made no sense at all, and the acting was wooden from start to finish, sadly; "
    "I wanted my two hours back long before the second half began to drag.",
    "Fine.",
    "A warm, funny and surprisingly moving story about a family.",
]


@pytest.fixture
def texts_file(tmp_path) -> Path:
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(SENTENCES) + "\n\n")  # blank lines are not sentences
    return path


def own_lengths(bundle: Path, texts: list[str]) -> list[int]:
    """Each sentence's token count by the bundle's own tokenizer.json (at least 3, at most
    the bundle's length), independently of the profiler."""
    from tokenizers import Tokenizer

    manifest = json.loads((bundle / "manifest.json").read_text())
    tok = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    return [max(3, min(len(tok.encode(t).ids), manifest["max_seq_len"])) for t in texts]


def profile_cli(args: list[str], capsys, tmp_path: Path):
    store = tmp_path / "r.jsonl"
    argv = ["profile", *args, "--runs", "3", "--warmup", "1", "--results", str(store)]
    return (*run_cli(argv, capsys), store)


def check_texts_record(texts: dict, bundle: Path, source: Path) -> None:
    lengths = own_lengths(bundle, SENTENCES)
    assert texts["n"] == texts["n_file"] == len(SENTENCES)
    assert texts["tokens"] == lengths and len(set(lengths)) > 2  # each at its own length
    assert texts["padded_to"] is None
    assert texts["median_tokens"] == float(np.median(lengths))
    assert texts["p90_tokens"] == float(np.percentile(lengths, 90))
    assert texts["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert texts["file"] == str(source)
    assert len(texts["ms"]) == len(SENTENCES) and min(texts["ms"]) > 0
    assert texts["p50_ms"] == pytest.approx(float(np.median(texts["ms"])), abs=1e-3)
    assert texts["p50_ms"] <= texts["p90_ms"]


def test_profile_texts_times_each_sentence_at_its_own_length_beside_the_padded_figure(
    onnx_bundle, texts_file, tmp_path, capsys
):
    code, out, err, store = profile_cli(
        [str(onnx_bundle), "--device", "host", "--texts", str(texts_file), "--texts-passes", "2"],
        capsys,
        tmp_path,
    )
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert "p50 ms" in header and "text p50 ms" in header and "tokens p50/p90" in header
    (record,) = [json.loads(line) for line in store.read_text().splitlines()]
    assert record["status"] == "ok" and record["seq_len"] == 128  # the fixed, padded figure
    assert record["latency_ms"]["p50"] > 0
    texts = record["texts"]
    assert texts["passes"] == 2
    check_texts_record(texts, onnx_bundle, texts_file)
    assert f"{texts['p50_ms']:.3f}" in row and f"{texts['median_tokens']:g}/" in row


def test_profile_texts_feeds_the_model_each_sentence_s_own_length(onnx_bundle, tmp_path):
    """In the agent's process: the model sees exactly the tokenized lengths, never padding."""
    from pocketbert import runtimes
    from pocketbert.profiler.agent import measure

    path = tmp_path / "s.txt"
    path.write_text("\n".join(SENTENCES))
    fed: list[int] = []
    real_load = runtimes.load

    def recording_load(*args, **kwargs):
        session = real_load(*args, **kwargs)
        run = session.run
        session.run = lambda feeds: (fed.append(feeds["input_ids"].shape[1]), run(feeds))[1]
        return session

    runtimes.load = recording_load
    try:
        record = measure(onnx_bundle, runs=2, warmup=0, texts=path, text_passes=3)
    finally:
        runtimes.load = real_load
    lengths = own_lengths(onnx_bundle, SENTENCES)
    timed = fed[-3 * len(SENTENCES) :]  # the three passes come last
    assert timed == lengths * 3
    assert record["texts"]["tokens"] == lengths


def test_profile_texts_reads_a_csv_text_column_and_runs_once_per_thread_count(
    onnx_bundle, tmp_path
):
    import csv

    path = tmp_path / "task.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "text"])
        writer.writerows((i % 2, s) for i, s in enumerate(SENTENCES))
    records = profile(
        [onnx_bundle], ["host"], runs=2, warmup=0, seq_lens=[16, 32], texts=path, store=None,
        quiet=True,
    )  # fmt: skip
    assert [r["seq_len"] for r in records] == [16, 32]
    assert "texts" in records[0] and "texts" not in records[1]  # lengths are the sentences' own
    check_texts_record(records[0]["texts"], onnx_bundle, path)
    assert "text p50 ms" in format_table(records).splitlines()[0]


def test_profile_texts_samples_a_long_file_down_to_the_limit(onnx_bundle, tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("\n".join(f"{s} number {i}" for i in range(30) for s in SENTENCES[:1]))
    (record,) = profile(
        [onnx_bundle], ["host"], runs=2, warmup=0, texts=path, text_limit=7, text_passes=1,
        store=None, quiet=True,
    )  # fmt: skip
    assert (record["texts"]["n"], record["texts"]["n_file"]) == (7, 30)


def test_profile_texts_over_ssh_ships_the_sentences_with_the_bundle(
    sshd,  # noqa: F811
    onnx_bundle,
    texts_file,
    tmp_path,
):
    path = catalog(tmp_path, entry("pi", "ssh", **sshd))
    (record,) = profile(
        [onnx_bundle], ["pi"], runs=2, warmup=0, texts=texts_file, catalog=path, store=None,
        quiet=True,
    )  # fmt: skip
    assert record["status"] == "ok", record.get("error")
    assert record["transport"] == "ssh"
    check_texts_record(record["texts"], onnx_bundle, texts_file)
    (home,) = Path(sshd["workdir"]).iterdir()
    assert sorted(p.name for p in home.iterdir()) == ["bundle", "record.json", "texts.txt"]
    assert (home / "texts.txt").read_text().splitlines() == SENTENCES


def test_profile_texts_through_adb_pushes_the_sentences(onnx_bundle, texts_file, tmp_path):
    phone = tmp_path / "phone"
    adb = stand_in_adb(tmp_path)
    path = catalog(
        tmp_path, entry("ph", "adb-python", adb=str(adb), workdir=str(phone), python=sys.executable)
    )
    (record,) = profile(
        [onnx_bundle], ["ph"], runs=2, warmup=0, texts=texts_file, catalog=path, store=None,
        quiet=True,
    )  # fmt: skip
    assert record["status"] == "ok", record.get("error")
    check_texts_record(record["texts"], onnx_bundle, texts_file)


def test_estimate_with_texts_says_sentences_are_measured_only(onnx_bundle, texts_file):
    (record,) = profile(
        [onnx_bundle], ["rpi5"], estimate=True, texts=texts_file, store=None, quiet=True
    )
    assert record["method"] == "estimated" and "texts" not in record
    assert any("--texts is measured" in w for w in record["warnings"])


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda d: d / "missing.txt", "does not exist"),
        (lambda d: (d / "empty.txt").write_text("\n \n") and d / "empty.txt", "holds no text"),
        (lambda d: (d / "bad.txt").write_bytes(b"\xff\xfe\xfa") and d / "bad.txt", "UTF-8"),
        (lambda d: (d / "t.jsonl").write_text('{"label": 1}\n') and d / "t.jsonl", "text column"),
    ],
)
def test_profile_refuses_a_bad_texts_file_in_one_line_before_measuring(
    onnx_bundle, tmp_path, capsys, make, says
):
    code, out, err, store = profile_cli(
        [str(onnx_bundle), "--device", "host", "--texts", str(make(tmp_path))], capsys, tmp_path
    )
    assert code == 2 and says in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == "" and not store.exists()  # nothing measured, nothing half-written


def test_profile_refuses_texts_for_a_bare_model_file_in_one_line(
    onnx_bundle, texts_file, tmp_path, capsys
):
    model = next(onnx_bundle.glob("*.onnx"))
    code, out, err, store = profile_cli(
        [str(model), "--device", "host", "--seq-len", "8", "--texts", str(texts_file)],
        capsys,
        tmp_path,
    )
    assert code == 2 and f"'{model.name}' is a bare model file: --texts" in err
    assert len(err.strip().splitlines()) == 1 and not store.exists()


def test_agent_refuses_a_bad_texts_file_with_a_failed_record(onnx_bundle, tmp_path, capsys):
    from pocketbert.profiler.agent import main

    (tmp_path / "empty.txt").write_text("")
    code = main([str(onnx_bundle), "--runs", "1", "--texts", str(tmp_path / "empty.txt")])
    out, err = capsys.readouterr()
    assert code == 2 and json.loads(out)["status"] == "failed"
    assert "holds no text" in err and len(err.strip().splitlines()) == 1
