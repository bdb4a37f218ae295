"""The bad-input corpus: every case a hostile or careless user tried, through the real CLI.

Each case must end with exit code 2, no traceback, one `pocketbert: error:` line that names
the problem, no output written, and nothing new in the temporary directory.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pocketbert.cli import main


@dataclass
class Env:
    tmp: Path
    request: pytest.FixtureRequest

    def model(self, arch: str = "bert") -> Path:
        """A private copy of a tiny random model (cases may damage it)."""
        dest = self.tmp / f"model-{arch}"
        if not dest.exists():
            shutil.copytree(self.request.getfixturevalue("tiny_models")[arch], dest)
        return dest

    def bundle(self) -> Path:
        dest = self.tmp / "bundle"
        if not dest.exists():
            shutil.copytree(self.request.getfixturevalue("onnx_bundle"), dest)
        return dest

    def manifest(self, edit: Callable[[dict], None]) -> Path:
        root = self.bundle()
        path = root / "manifest.json"
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
        return root

    def reviews(self, *rows: tuple[str, str]) -> Path:
        path = self.tmp / "data.csv"
        body = "".join(f'"{t}",{y}\n' for t, y in rows)
        path.write_text("text,label\n" + body)
        return path


def _rows(n: int = 24) -> list[tuple[str, str]]:
    good = ["a fine, warm film", "a joy from start to end", "the cast is superb"]
    bad = ["a dull, lifeless film", "the plot makes no sense", "two hours I want back"]
    return [(good[i % 3], "positive") if i % 2 else (bad[i % 3], "negative") for i in range(n)]


def _no_tokenizer(e: Env) -> list:
    model = e.model()
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (model / name).unlink(missing_ok=True)
    return ["export", model, "-o", e.tmp / "out"]


def _empty_config(e: Env) -> list:
    model = e.tmp / "mpt-7b"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return ["export", model, "-o", e.tmp / "out"]


def _link_in_bundle(e: Env) -> list:
    root = e.bundle()
    (root / "record.json").symlink_to(e.tmp / "VICTIM")
    return ["run", root, "a sentence"]


def _corrupt_zip_member(e: Env) -> list:
    root, path = e.bundle(), e.tmp / "b.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(root.iterdir()):
            zf.write(p, p.name)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(next(n for n in zf.namelist() if n.startswith("model")))
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 64
    data[start : start + 16] = bytes(16)
    path.write_bytes(bytes(data))
    return ["run", path, "a sentence"]


def _traversal_model_file(e: Env) -> list:
    return ["run", e.manifest(lambda m: m.update(model_file="../model.onnx")), "a sentence"]


def _bare_onnx_run(e: Env) -> list:
    path = e.tmp / "third-party.onnx"
    shutil.copy(e.bundle() / "model.onnx", path)
    return ["run", path, "a sentence"]


def _broken_cwd_catalog(e: Env) -> list:
    (e.tmp / "devices.yaml").write_text("devices:\n  - id: host\n    kind: [oops\n")
    return ["devices"]


def _nan_labels(e: Env) -> list:
    data = e.reviews(*_rows(), ("an unlabelled line", "nan"))
    return ["finetune", e.model(), "--data", data, "--epochs", "1", "-o", e.tmp / "out"]


def _output_is_teacher(e: Env) -> list:
    teacher = e.model()
    return ["distill", "--teacher", teacher, "--student", "squeezebert", "--data",
            e.reviews(*_rows()), "-o", teacher]  # fmt: skip


def _readonly_output(e: Env) -> list:
    # /sys is read-only even for root; a chmod'ed directory is not
    return ["export", e.model(), "-o", "/sys/pocketbert-locked/out"]


# (case id, argv builder, what the one error line must name)
CASES: list[tuple[str, Callable[[Env], list], str]] = [
    ("export-missing-model", lambda e: ["export", e.tmp / "nope", "-o", e.tmp / "out"], "nope"),
    ("export-config-without-model-type", _empty_config, "model_type"),
    ("export-no-tokenizer", _no_tokenizer, "tokenizer"),
    (
        "export-seq-above-positions",
        lambda e: ["export", e.model(), "--max-seq-len", "4000", "-o", e.tmp / "out"],
        "position",
    ),  # fmt: skip
    (
        "export-model-suffix",
        lambda e: ["export", e.model(), "--format", "onnx", "-o", e.tmp / "sst2.pte"],
        "-o",
    ),  # fmt: skip
    (
        "export-unknown-format",
        lambda e: ["export", e.model(), "--format", "coreml", "-o", e.tmp / "out"],
        "coreml",
    ),  # fmt: skip
    (
        "export-unknown-task",
        lambda e: ["export", e.model(), "--task", "translation", "-o", e.tmp / "out"],
        "translation",
    ),  # fmt: skip
    ("export-read-only-output", _readonly_output, "/sys/pocketbert-locked"),
    ("run-threads-huge", lambda e: ["run", e.bundle(), "x", "--threads", "100000"], "--threads"),
    ("run-threads-negative", lambda e: ["run", e.bundle(), "x", "--threads", "-1"], "--threads"),
    ("run-nothing-to-run", lambda e: ["run", e.bundle()], "--input"),
    ("run-link-in-bundle", _link_in_bundle, "link"),
    ("run-corrupt-zip-member", _corrupt_zip_member, "corrupt"),
    ("run-model-file-outside", _traversal_model_file, "model_file"),
    (
        "run-max-seq-len-text",
        lambda e: ["run", e.manifest(lambda m: m.update(max_seq_len="abc")), "x"],
        "max_seq_len",
    ),  # fmt: skip
    (
        "run-files-as-list",
        lambda e: ["run", e.manifest(lambda m: m.update(files=["model.onnx"])), "x"],
        "files",
    ),  # fmt: skip
    ("run-bare-model-file", _bare_onnx_run, "tokenizer"),
    (
        "profile-threads-zero",
        lambda e: ["profile", e.bundle(), "--device", "host", "--threads", "0", "--results", ""],
        "--threads",
    ),  # fmt: skip
    (
        "profile-unknown-device",
        lambda e: ["profile", e.bundle(), "--device", "toaster", "--results", ""],
        "toaster",
    ),  # fmt: skip
    (
        "profile-estimate-format-not-on-device",
        lambda e: ["profile", e.bundle(), "--device", "pixel4", "--estimate", "--results", ""],
        "onnx",
    ),  # fmt: skip
    ("devices-broken-cwd-catalog", _broken_cwd_catalog, "devices.yaml"),
    (
        "agent-out-unwritable",
        lambda e: ["agent", e.bundle(), "--runs", "1", "--out", e.tmp / "no" / "such" / "r.json"],
        "--out",
    ),  # fmt: skip
    ("finetune-nan-label", _nan_labels, "--drop-unlabelled"),
    (
        "finetune-threads-huge",
        lambda e: [
            "finetune",
            e.model(),
            "--data",
            e.reviews(*_rows()),
            "--threads",
            "100000",
            "-o",
            e.tmp / "out",
        ],
        "--threads",
    ),  # fmt: skip
    ("distill-output-is-teacher", _output_is_teacher, "teacher"),
]


def _tree(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")} if path.exists() else set()


@pytest.mark.parametrize(("build", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    build, says, request, tmp_path, capfd, monkeypatch
):
    work, scratch = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(work)
    env = Env(work, request)
    argv = [str(a) for a in build(env)]
    before = _tree(work)
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    capfd.readouterr()

    code = main(argv)

    out, err = capfd.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("pocketbert: error:")]
    assert code == 2, f"exit {code} for {argv}\n{err}"
    assert "Traceback" not in err, err
    assert len(errors) == 1, err
    assert says in errors[0], errors[0]
    short = errors[0].replace(str(work), "W")  # the user's own paths do not count
    assert len(short) < 300, f"the error line is {len(short)} characters long: {short}"
    assert _tree(work) == before, f"new files: {_tree(work) - before}"
    assert not _tree(scratch), f"left in the temporary directory: {_tree(scratch)}"
