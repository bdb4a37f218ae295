"""The README is runnable: its two set-up lines, and every `pocketbert` command it shows."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _pocketbert_commands() -> list[str]:
    """Every `pocketbert ...` line of the README's bash blocks, comments removed, in order."""
    lines = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("pocketbert "):
                lines.append(line)
    return lines


def test_ci_runs_exactly_the_readme_test_command():
    commands = re.findall(r"```bash\n(python3 -m venv .*)\n```", README)
    assert len(commands) == 2, "README holds exactly two set-up commands"
    assert "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text().splitlines()


def test_every_readme_command_is_accepted_by_the_cli_parser():
    from pocketbert.cli import build_parser

    commands = _pocketbert_commands()
    assert len(commands) >= 8, commands
    parser = build_parser()
    for line in commands:
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit as exc:  # argparse's way of refusing
            pytest.fail(f"README command is refused by the parser ({exc.code}): {line}")


def test_readme_tour_uses_only_files_that_the_tour_itself_makes():
    """Every path the commands read is made earlier in the same sequence (or by `examples`)."""
    made: set[str] = set()
    for line in _pocketbert_commands():
        argv = shlex.split(line)
        for flag in ("-o", "--output", "--work"):
            if flag in argv:
                made.add(argv[argv.index(flag) + 1].rstrip("/"))
        for arg in argv[2:]:
            if (
                "/" in arg
                and not arg.startswith("-")
                and not any(arg.rstrip("/") == m or arg.startswith(m + "/") for m in made)
            ):
                pytest.fail(f"README command reads '{arg}', which no earlier command makes: {line}")


@pytest.mark.slow
def test_readme_commands_run_as_written_on_the_real_model(tmp_path):
    """The whole tour, verbatim, in a fresh directory (fine-tunes and exports the real model)."""
    exe = Path(sys.executable).with_name("pocketbert")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for line in _pocketbert_commands():
        argv = [str(exe), *shlex.split(line)[1:]]
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
        print(f"{time.monotonic() - started:7.1f} s  {line}", flush=True)
        assert proc.returncode == 0, f"{line}\n{proc.stderr[-2000:]}"
    for block in _blocks("python"):
        proc = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{block}\n{proc.stderr[-2000:]}"
