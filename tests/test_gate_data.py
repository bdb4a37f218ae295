"""What the parity gate judges on, and how: the user's own text, never calibration text;
accuracy on labelled rows, agreement off near ties; the next recipe when int8-static misses."""

import json
import shutil

import numpy as np
import onnx
import pytest

import pocketbert
from pocketbert import export_job
from pocketbert.cli import main
from pocketbert.converters.quantization import NOISE_ROWS, Int8Dynamic, Int8Static
from pocketbert.core.errors import UserError
from pocketbert.core.task_text import FILE
from pocketbert.core.texts import BUILTIN
from pocketbert.exporter import ExportFailed
from pocketbert.gate_text import TextSet, gate_text
from pocketbert.verify import classification_figures, gate, small_set_note

# -- the gate's rules, on numbers ----------------------------------------------------------


def _logits(top: np.ndarray, gap: float) -> np.ndarray:
    """Two-class logits whose argmax is ``top`` and whose softmax top-2 gap is ``gap``."""
    z = np.log((1 + gap) / (1 - gap))  # p1 - p0 = gap  <=>  logit difference z
    out = np.zeros((len(top), 2))
    out[np.arange(len(top)), top] = z
    return out


def _flip(top: np.ndarray, rows) -> np.ndarray:
    flipped = top.copy()
    flipped[list(rows)] = 1 - flipped[list(rows)]
    return flipped


def test_labelled_gate_judges_the_accuracy_change_not_the_agreement():
    n = 400  # 1 point = 4 rows
    truth = np.arange(n) % 2
    torch_top = _flip(truth, range(0, 80))  # torch fp32 gets 320 of 400 right: 80%
    ref = _logits(torch_top, 0.6)
    config = Int8Static()

    def judged(file_top):
        figures = classification_figures(ref, _logits(file_top, 0.6), truth)
        return figures, gate(figures, config, "classification")[0]

    # 20 rows turn wrong and 20 turn right: 90% agreement, the same accuracy -> passes
    swapped = _flip(torch_top, [*range(0, 20), *range(100, 120)])
    figures, passed = judged(swapped)
    assert figures["argmax_agreement"] == pytest.approx(0.9)
    assert figures["accuracy_torch"] == pytest.approx(0.8) == figures["accuracy_file"]
    assert figures["accuracy_drop"] == 0 and passed
    # 4 more rows wrong than right: exactly 1 point -> passes; 5: fails
    figures, passed = judged(_flip(torch_top, range(100, 104)))
    assert figures["accuracy_drop"] == pytest.approx(0.01) and passed
    figures, passed = judged(_flip(torch_top, range(100, 105)))
    assert figures["accuracy_drop"] == pytest.approx(0.0125) and not passed
    # the bound is the config's
    assert gate(figures, Int8Static(max_accuracy_drop=0.02), "classification")[0]


def test_agreement_leaves_near_ties_out_when_there_are_no_labels():
    top = np.arange(250) % 2
    ref = _logits(top, 0.5)  # 200 decisive rows, then 50 near ties
    ref[200:] = _logits(top[200:], 0.02)
    near_tie_flips = _logits(_flip(top, range(200, 250)), 0.02)
    out = np.r_[_logits(top[:200], 0.5), near_tie_flips[200:]]
    figures = classification_figures(ref, out)
    assert figures["decisive_rows"] == 200 and figures["near_ties"] == 50
    assert figures["argmax_agreement"] == pytest.approx(0.8)
    assert figures["decisive_agreement"] == 1.0
    assert gate(figures, Int8Dynamic(), "classification")[0]
    # the same count of flips among the decisive rows fails: 2% of 200 is 4 rows
    for flips, passes in ((4, True), (5, False)):
        out = _logits(_flip(top, range(flips)), 0.5)
        figures = classification_figures(ref, out)
        assert figures["decisive_agreement"] == pytest.approx(1 - flips / 200)
        assert gate(figures, Int8Dynamic(), "classification")[0] is passes
    # a wider margin makes more rows near ties
    assert classification_figures(ref, out, near_tie_margin=0.6)["decisive_rows"] == 0


def test_a_small_set_cannot_fail_on_noise_rows_and_says_it_was_small():
    top = np.arange(40) % 2
    ref = _logits(top, 0.5)
    for flips, passes in ((NOISE_ROWS, True), (NOISE_ROWS + 1, False)):
        figures = classification_figures(ref, _logits(_flip(top, range(flips)), 0.5))
        assert gate(figures, Int8Static(), "classification")[0] is passes
        note = small_set_note(figures, Int8Static(), "classification")
        assert note.startswith("only 40 decisive rows") and "150 would" in note
    # enough rows: the bound itself decides, and no note
    big = classification_figures(_logits(np.arange(300) % 2, 0.5), _logits(np.arange(300) % 2, 0.5))
    assert small_set_note(big, Int8Static(), "classification") is None


# -- which text the gate and the calibration use --------------------------------------------


def test_built_in_sentences_are_split_when_they_would_both_verify_and_calibrate(tmp_path):
    both = gate_text(tmp_path, eval_set=None, calibration=None, calibrating=128)
    verify, calibration = set(both.verify.texts), set(both.calibration.texts)
    assert verify and calibration and not verify & calibration
    assert verify | calibration == set(BUILTIN)
    assert both.verify.record(len(verify))["split"] is True
    # nothing calibrates: the gate takes every built-in sentence
    assert gate_text(tmp_path, eval_set=None, calibration=None, calibrating=0).verify.texts == (
        BUILTIN
    )


def test_a_default_set_yields_the_sentences_it_shares_with_a_given_one(tmp_path):
    given = TextSet(BUILTIN[:10], "given", "mine.txt")
    chosen = gate_text(tmp_path, eval_set=given, calibration=None, calibrating=128)
    assert chosen.verify.texts == BUILTIN[:10]
    assert not set(chosen.calibration.texts) & set(BUILTIN[:10])
    assert chosen.calibration.record(5)["overlap_removed"] == 10
    chosen = gate_text(tmp_path, eval_set=None, calibration=given, calibrating=128)
    assert chosen.verify.texts == BUILTIN[10:]


def _with_task_text(model, tmp_path, verify_rows, calibration):
    """A copy of ``model`` with a task_text.json holding these rows."""
    dest = tmp_path / "model"
    shutil.copytree(model, dest)
    record = {
        "version": 1,
        "source": "tickets.csv",
        "labels": ["negative", "positive"],
        "calibration": calibration,
        "verify": [{"text": t, "label": lab} for t, lab in verify_rows],
    }
    (dest / FILE).write_text(json.dumps(record))
    return dest


VERIFY_ROWS = [
    (f"ticket {i}: the {w} arrived {d}", "positive" if i % 3 else "negative")
    for i, (w, d) in enumerate(
        (w, d)
        for w in ("parcel", "refund", "invoice", "driver", "reply")
        for d in ("late", "early", "broken", "twice", "today", "at last")
    )
]


def test_gate_verifies_on_the_recorded_task_text_when_the_model_has_one(tiny_models, tmp_path):
    calibration = [f"a training sentence about order {i}" for i in range(40)]
    model = _with_task_text(tiny_models["bert"], tmp_path, VERIFY_ROWS, calibration)
    out = tmp_path / "set"
    results = pocketbert.export(model, out, precision=["fp32", "int8-static"], quiet=True)
    texts = [t for t, _ in VERIFY_ROWS]
    truth = [lab for _, lab in VERIFY_ROWS]
    for result in results:
        m = json.loads((result.path / "manifest.json").read_text())
        assert m["verification"] == {
            "source": "task_text",
            "name": str(model / FILE),
            "samples": len(VERIFY_ROWS),
            "labelled": True,
        }
        p = m["parity"]
        assert p["labelled_rows"] == len(VERIFY_ROWS) and p["passed"]
        assert p["gate"].startswith(
            "max_abs_diff" if result.precision == "fp32" else "accuracy_drop"
        )
        # the accuracy the gate recorded is the bundle's own on exactly those rows
        predicted = [r["label"] for r in pocketbert.load(result.path).predict(texts)]
        accuracy = np.mean([a == b for a, b in zip(predicted, truth, strict=True)])
        assert p["accuracy_file"] == pytest.approx(accuracy)
    static = json.loads((results[1].path / "manifest.json").read_text())
    assert static["calibration"] == {
        "source": "task_text",
        "name": str(model / FILE),
        "samples": 40,
    }


def _eval_csv(tmp_path, rows, name="eval.csv"):
    path = tmp_path / name
    path.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows))
    return path


def test_gate_refuses_an_eval_set_that_overlaps_the_calibration_set(tiny_models, tmp_path):
    eval_file = _eval_csv(tmp_path, VERIFY_ROWS)
    calibration = tmp_path / "calib.txt"
    calibration.write_text("\n".join(["another sentence", *[t for t, _ in VERIFY_ROWS[:3]]]))
    with pytest.raises(UserError, match=f"3 of the {len(VERIFY_ROWS)} --eval sentences are also"):
        pocketbert.export(
            tiny_models["bert"],
            tmp_path / "b",
            precision="int8-static",
            eval=eval_file,
            calibration=calibration,
            quiet=True,
        )
    assert not (tmp_path / "b").exists()
    # fp32 calibrates on nothing: the same two files are no conflict
    [result] = pocketbert.export(
        tiny_models["bert"], tmp_path / "b", eval=eval_file, calibration=calibration, quiet=True
    )
    m = json.loads((result.path / "manifest.json").read_text())
    assert m["verification"]["source"] == "given" and m["verification"]["labelled"] is True
    assert m["parity"]["samples"] == len(VERIFY_ROWS)


# -- the fallback recipe -------------------------------------------------------------------


def _miss(monkeypatch, *missing: type) -> list:
    """The real gate, except that recipes of the ``missing`` config types miss it."""
    real, judged = export_job.check, []

    def check(path, feeds, reference, *, precision, **kw):
        record = real(path, feeds, reference, precision=precision, **kw)
        judged.append(precision)
        if type(precision) in missing:  # an impossible figure for this recipe
            return {**record, "decisive_agreement": 0.5, "passed": False}
        return record

    monkeypatch.setattr(export_job, "check", check)
    return judged


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_fallback_recipe_ships_when_int8_static_misses_the_gate(
    tiny_models, tmp_path, monkeypatch, capfd
):
    judged = _miss(monkeypatch, Int8Static)
    config = Int8Static(dynamic_outliers=False, min_argmax_agreement=0.95)
    [result] = pocketbert.export(tiny_models["bert"], tmp_path / "b", precision=config)
    assert [type(c).__name__ for c in judged] == ["Int8Static", "Int8Static", "Int8Dynamic"]
    assert judged[1].dynamic_outliers is True and judged[2].min_argmax_agreement == 0.95
    assert (result.precision, result.shipped) == ("int8-static", "int8-dynamic")
    m = json.loads((result.path / "manifest.json").read_text())
    assert m["precision"] == "int8-dynamic" and m["quantization"]["type"] == "Int8Dynamic"
    assert m["requested"]["quantization"]["dynamic_outliers"] is False
    tried = m["parity"]["tried"]
    assert [t["precision"] for t in tried] == [
        "int8-static (dynamic_outliers=False)",
        "int8-static",
        "int8-dynamic",
    ]
    assert [t["passed"] for t in tried] == [False, False, True]
    assert m["calibration"]["samples"] == 0  # the shipped file calibrated on nothing
    assert "QuantizeLinear" not in _ops(result.path / "model.onnx")  # no calibrated input
    assert "DynamicQuantizeLinear" in _ops(result.path / "model.onnx")
    err = capfd.readouterr().err
    assert err.count("missed the parity gate") == 2
    assert "trying int8-dynamic" in err


def test_export_fails_naming_every_recipe_when_all_miss(tiny_models, tmp_path, monkeypatch):
    _miss(monkeypatch, Int8Static, Int8Dynamic)
    with pytest.raises(ExportFailed, match=r"int8-static: decisive_agreement 0\.5.*int8-dynamic"):
        pocketbert.export(tiny_models["bert"], tmp_path / "b", precision="int8-static", quiet=True)
    assert not (tmp_path / "b").exists()


def test_allow_parity_failure_writes_the_requested_recipe_without_fallback(
    tiny_models, tmp_path, monkeypatch
):
    judged = _miss(monkeypatch, Int8Static)
    [result] = pocketbert.export(
        tiny_models["bert"],
        tmp_path / "b",
        precision="int8-static",
        allow_parity_failure=True,
        quiet=True,
    )
    assert len(judged) == 1 and result.shipped == "int8-static"
    assert result.parity["passed"] is False and len(result.parity["tried"]) == 1


# -- bad --eval files ----------------------------------------------------------------------


def _must_not_load(*args, **kwargs):
    raise AssertionError("the model was loaded before the input was refused")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("text,label\na fine film,positive\na dull film,awful\nmeh,so-so\n", "awful, so-so"),
        ("text,label\n", "holds no rows"),
        (b"\xff\xfe\x00bad", "cannot read"),
        ("text,label\na fine film,\n", "no label"),
    ],
    ids=["unknown-labels", "empty", "not-utf8", "missing-label"],
)
def test_bad_eval_file_is_one_line_exit_2_before_the_model_loads(
    content, says, tiny_models, tmp_path, capfd, monkeypatch
):
    from pocketbert.converters import model

    monkeypatch.setattr(model, "load_model", _must_not_load)
    path = tmp_path / "eval.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    argv = ["export", str(tiny_models["bert"]), "--eval", str(path), "-o", str(tmp_path / "b")]
    code = main(argv)
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("pocketbert: error:"), err
    assert says in lines[0]
    if says.startswith("awful"):
        assert "the model's labels are negative, positive" in lines[0]
    assert not (tmp_path / "b").exists()
