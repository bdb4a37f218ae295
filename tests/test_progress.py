"""Long work stays visibly alive: a heartbeat line while one item takes long."""

from __future__ import annotations

import time

from pocketbert.core.progress import Progress, native_output_to


def test_iterate_prints_a_heartbeat_while_an_item_takes_long(tmp_path, capfd):
    progress = Progress()
    for _ in progress.iterate(["onnx fp32"], "exporting", str, heartbeat_s=0.05):
        with native_output_to(tmp_path / "converter.log"):  # the work sends fd 2 to a log
            time.sleep(0.3)
    err = capfd.readouterr().err
    beats = [line for line in err.splitlines() if "onnx fp32: working" in line]
    assert len(beats) >= 3, err  # reached the real stderr, not the converter's log
    assert "working" not in (tmp_path / "converter.log").read_text()
    assert err.splitlines()[-1].startswith("[1/1] onnx fp32 done in")


def test_iterate_is_silent_when_quiet_and_beats_only_when_asked(capfd):
    for _ in Progress(quiet=True).iterate(["a"], "exporting", str, heartbeat_s=0.01):
        time.sleep(0.05)
    for _ in Progress().iterate(["b"], "exporting", str):
        time.sleep(0.05)
    err = capfd.readouterr().err
    assert "working" not in err and "[1/1] exporting a" not in err
    assert err.splitlines() == ["[1/1] exporting b", err.splitlines()[1]]
