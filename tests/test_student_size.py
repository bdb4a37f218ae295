"""`--size auto`: the largest student whose speed-up (timed against the teacher in the same
run) or latency meets the budget; on tiny random teachers, with real timings."""

from __future__ import annotations

import json

import pytest
import torch
from test_devices import run_cli
from test_lab import catalog, entry

import pocketbert
from pocketbert.converters.student_size import SizeBudget, choose_size, measure, pick
from pocketbert.converters.students import StudentSpec, forward_flops, transformer_layer_params
from pocketbert.core.errors import UserError
from pocketbert.training import DistillOptions

LENGTHS = {"median": 20.0, "p90": 32.0}


@pytest.fixture(scope="module")
def teacher():
    """A random BERT classifier deep and wide enough for the presets to differ (6 x 128)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    shape = dict(hidden_size=128, num_hidden_layers=6, num_attention_heads=4, intermediate_size=512)
    config = BertConfig(vocab_size=400, num_labels=2, **shape)
    return BertForSequenceClassification(config).eval()


@pytest.mark.parametrize("family", ["squeezebert", "mobilebert"])
def test_stricter_speedup_target_picks_a_smaller_or_equal_student(teacher, family):
    cands, teacher_ms = measure(SizeBudget(family), teacher, seq=20)
    assert len(cands) >= 3 and teacher_ms > 0
    assert all(c.ms > 0 and c.speedup == pytest.approx(teacher_ms / c.ms) for c in cands)
    previous = None
    for target in sorted({c.speedup for c in cands}):  # each met by >= 1 candidate
        budget = SizeBudget(family, speedup=target)
        chosen = pick(cands, budget)
        assert chosen.speedup >= target and chosen.meets
        assert all(c.params <= chosen.params for c in cands if c.meets)  # the largest meeting
        if previous is not None:
            assert chosen.params <= previous.params
        previous = chosen


def test_choose_size_says_its_choice_the_candidates_and_the_reason(teacher):
    spec, record, line = choose_size(SizeBudget("squeezebert", speedup=1.0), teacher, LENGTHS)
    assert isinstance(spec, StudentSpec) and spec.family == "squeezebert"
    chosen = next(c for c in record["candidates"] if c["name"] == record["chosen"])
    assert chosen["spec"] == spec.to_dict() and chosen["meets"]
    assert record["seq_len"] == 20 and record["token_lengths"] == LENGTHS
    assert record["basis"].startswith("measured here")
    assert "\n" not in line and line.startswith(f"student size auto: squeezebert {chosen['name']}")
    assert "the largest meeting >= 1x faster" in line
    assert all(f"{c['name']} {c['speedup']:.1f}x" in line for c in record["candidates"])
    json.dumps(record)  # goes into summary.json as it is


def test_impossible_target_is_one_clear_line(teacher):
    with pytest.raises(UserError) as err:
        choose_size(SizeBudget("squeezebert", speedup=1000.0), teacher, LENGTHS)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("no squeezebert student meets >= 1000x faster (fastest candidate:")
    assert "lower the target, or choose the size yourself" in message


def test_latency_on_another_device_scales_its_estimate_of_the_teacher(teacher):
    from pocketbert.lab.emulated import Cost, roofline
    from pocketbert.student_budget import size_budget

    budget = size_budget("squeezebert", {}, None, 10_000.0, "rpi5")
    assert budget.estimate_ms is not None and "roofline" in budget.basis
    cands, _ = measure(budget, teacher, seq=20)
    device = pocketbert.devices.load_devices()["rpi5"]
    cost = Cost(forward_flops(teacher, 20), weight_bytes=4.0 * transformer_layer_params(teacher))
    teacher_ms = roofline(cost, device, "onnxruntime")["estimate_ms"]
    for c in cands:
        assert c.device_ms * c.speedup == pytest.approx(teacher_ms)
    spec, record, line = choose_size(budget, teacher, LENGTHS)
    assert record["targets"]["device"] == "rpi5" and "ms on rpi5" in line


def test_device_without_peak_figures_uses_the_flops_ratio(teacher, tmp_path, monkeypatch):
    from pocketbert.student_budget import size_budget

    catalog(tmp_path, entry("board", "ssh", host="board.local"))
    monkeypatch.chdir(tmp_path)  # ./devices.yaml is the catalog
    budget = size_budget("mobilebert", {}, 1.0, None, "board")
    assert budget.flops_only and "FLOPs ratio" in budget.basis
    cands, _ = measure(budget, teacher, seq=20)
    flops = forward_flops(teacher, 20)
    assert all(c.speedup == pytest.approx(flops / c.flops) for c in cands)
    assert all(c.device_ms is None for c in cands)
    with pytest.raises(UserError, match="device board has no peak figures"):
        DistillOptions(student="mobilebert", size="auto", max_latency_ms=5.0, device="board")


def test_fixed_knobs_hold_in_every_candidate(teacher):
    cands, _ = measure(SizeBudget("squeezebert", knobs=(("layers", 2),)), teacher, seq=12)
    assert cands and all(c.spec.layers == 2 for c in cands)


def test_explicit_size_still_works_and_budget_flags_need_size_auto():
    spec = DistillOptions(student="squeezebert", size="tiny").student_spec()
    assert isinstance(spec, StudentSpec) and spec.size == "tiny"
    assert DistillOptions(size="medium", knobs={"layers": 2}).student_spec().layers == 2
    auto = DistillOptions(student="mobilebert", size="auto")
    assert auto.speedup == 4.0  # the default target
    budget = auto.student_spec()
    assert isinstance(budget, SizeBudget) and (budget.family, budget.device) == (
        "mobilebert",
        "host",
    )
    assert DistillOptions(size="auto", max_latency_ms=20.0).speedup is None
    for bad, says in [
        (dict(size="small", speedup=4.0), "give --size auto with them, not --size small"),
        (dict(size="auto", speedup=0.5), "--speedup must be a number >= 1"),
        (dict(size="auto", max_latency_ms=0), "--max-latency-ms must be a number > 0"),
        (dict(size="auto", device="no-such-board"), "unknown device 'no-such-board'"),
        (dict(size="huge"), "choose one of: medium, small, tiny, auto"),
    ]:
        with pytest.raises(UserError, match=says.replace("(", r"\(")):
            DistillOptions(**bad)


def test_distill_size_auto_trains_the_chosen_student_and_records_why(
    tiny_models, reviews_csv, tmp_path
):
    said: list[str] = []
    options = DistillOptions(size="auto", max_latency_ms=60_000.0, epochs=1, quiet=True)
    from pocketbert.converters.distill import run_distill

    summary = run_distill(
        tiny_models["bert"], reviews_csv, tmp_path / "s", options.distill_config(), say=said.append
    )
    record = summary["student_size"]
    chosen = next(c for c in record["candidates"] if c["name"] == record["chosen"])
    assert summary["student_spec"] == chosen["spec"]
    assert summary["student_params"] == chosen["params"]
    assert record["token_lengths"]["median"] >= 3
    assert sum(line.startswith("student size auto:") for line in said) == 1
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["student_size"] == record


def test_cli_size_auto_with_an_impossible_target_exits_2_in_one_line(
    tiny_models, reviews_csv, tmp_path, capsys
):
    out = tmp_path / "s"
    argv = ["distill", "--teacher", str(tiny_models["bert"]), "--data", str(reviews_csv)]
    code, _, err = run_cli(
        [*argv, "-o", str(out), "--size", "auto", "--speedup", "500", "--quiet"], capsys
    )
    assert code == 2 and "no squeezebert student meets >= 500x faster" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    code, _, err = run_cli([*argv, "-o", str(out), "--speedup", "2"], capsys)
    assert code == 2 and "give --size auto with them" in err and not out.exists()
