"""The fpga accelerator model: GEMM cycles by hand and against SCALE-Sim, the fit check,
the transport on a tiny fpga bundle, the golden-vector verb and the bad-input lines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import pocketbert
from pocketbert.cli import main
from pocketbert.core.errors import UserError
from pocketbert.devices import Device, load_devices
from pocketbert.lab.fpga_layers import bert_program, program_layers
from pocketbert.lab.fpga_model import Accelerator, check_fit, estimate, gemm_cycles
from pocketbert.runtimes import fpga as F


def _device(**fpga) -> Device:
    block = dict(dsps=1728, macs_per_dsp=2, clock_mhz=300, bram36=312, uram=96, ddr_gbs=19.2)
    return Device("board", "fpga", "fpga-model", ("fpga",), ("fpga",), fpga={**block, **fpga})


def _acc(rows: int, cols: int, buffers: int = 2, **fpga) -> Accelerator:
    return Accelerator.from_device(_device(array=[rows, cols], weight_buffers=buffers, **fpga))


@pytest.fixture(scope="module")
def tiny_fpga(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("fpga-model") / "bert"
    pocketbert.export(
        tiny_models["bert"], out, format="fpga", precision="int8-static", max_seq_len=32, quiet=True
    )
    return out


def test_gemm_cycles_match_a_hand_count_for_both_weight_buffers():
    # M=10 tokens, K=6, N=9 on a 4 x 4 array: ceil(6/4) x ceil(9/4) = 2 x 3 = 6 folds.
    # One weight buffer (SCALE-Sim): each fold 2R + C + M - 2 = 8 + 4 + 10 - 2 = 20 -> 120.
    assert gemm_cycles(_acc(4, 4, buffers=1), 1, 10, 6, 9) == 120
    # Two: R to load the first fold, 6 x max(10, 4) streaming, R + C - 2 to drain: 4 + 60 + 6.
    assert gemm_cycles(_acc(4, 4, buffers=2), 1, 10, 6, 9) == 70
    # Fewer tokens than rows: each fold waits R cycles for its weights: 4 + 6 x 4 + 6 = 34.
    assert gemm_cycles(_acc(4, 4, buffers=2), 1, 2, 6, 9) == 34
    # A batch of 3 heads triples the folds: 3 x 6 x 20.
    assert gemm_cycles(_acc(4, 4, buffers=1), 3, 10, 6, 9) == 360


def test_derived_array_is_the_largest_square_the_dsps_allow():
    acc = Accelerator.from_device(_device())
    # (1728 DSPs - 64 vector lanes) x 2 MACs = 3328 PEs -> 57 x 57 = 3249
    assert (acc.rows, acc.cols) == (57, 57)
    assert acc.array_dsps == math.ceil(3249 / 2)
    assert acc.on_chip_bytes == 312 * 4608 + 96 * 36864


SCALESIM_SHAPES = [  # (M, K, N, R, C): a hand case, MiniLM's q/k/v, FFN up and down
    (16, 40, 24, 8, 8),
    (128, 384, 384, 32, 32),
    (128, 384, 1536, 48, 36),
    (128, 1536, 384, 57, 57),
    (7, 100, 3, 16, 16),
]


@pytest.mark.parametrize("shape", SCALESIM_SHAPES)
def test_gemm_cycles_agree_with_scalesim_weight_stationary(shape, tmp_path):
    pytest.importorskip("scalesim")
    from scalesim.compute.systolic_compute_ws import systolic_compute_ws
    from scalesim.scale_config import scale_config

    m, k, n, r, c = shape
    config = scale_config()  # an R x C weight-stationary array; SRAM sizes do not enter compute
    config.update_from_list(["pb", r, c, 1024, 1024, 1024, 0, 10**7, 2 * 10**7, "ws", "CALC", 10])
    compute = systolic_compute_ws()
    compute.set_params(
        config_obj=config,
        ifmap_op_mat=np.arange(m * k).reshape(m, k),
        filter_op_mat=np.arange(k * n).reshape(k, n) + 10**7,
        ofmap_op_mat=np.arange(m * n).reshape(m, n) + 2 * 10**7,
    )
    compute.create_demand_matrices()
    scalesim_cycles = compute.ifmap_demand_matrix.shape[0]  # one row per cycle, stalls aside
    assert compute.ofmap_demand_matrix.shape[0] == scalesim_cycles
    assert gemm_cycles(_acc(r, c, buffers=1), 1, m, k, n) == scalesim_cycles


def _one_linear(seq: int, k: int, n: int):
    nodes = [
        {"op": "linear", "inputs": ["x"], "output": "y", "w": "y.w", "b": "y.b", "bits": 8}
        | {"acc_bits": 32, "requant": ["y"]}
    ]
    shapes = {"y.w": (n, k), "y.b": (n,), "y.m": (n,), "y.shift": (n,)}
    sizes = {"y.w": n * k, "y.b": 4 * n, "y.m": 4 * n, "y.shift": 4 * n}
    return program_layers(nodes, shapes, sizes, seq, inputs={"x": (k, 1)})


def test_fit_check_names_the_layer_its_bytes_and_the_boards_when_it_does_not_fit():
    layers = _one_linear(seq=64, k=64, n=32)
    # on chip while y runs: x 64 x 64 int8 = 4,096 + y 64 x 32 int8 = 2,048 + two 4 x 4
    # int8 weight tiles = 32 -> 6,176 bytes; one BRAM36 holds 4,608
    acc = _acc(4, 4, bram36=1, uram=0)
    with pytest.raises(UserError) as err:
        check_fit(acc, layers)
    assert str(err.value).startswith("layer y (linear) needs 6,176 bytes on chip")
    assert "device board has 4,608 (1 BRAM36 + 0 URAM)" in str(err.value)
    check_fit(_acc(4, 4, bram36=2, uram=0), layers)  # 9,216 bytes: it fits


def test_estimate_streams_weights_when_the_model_is_not_resident_and_names_ddr_bound():
    layers = _one_linear(seq=1, k=512, n=512)  # 262,144 weight bytes, one token
    resident = estimate(_acc(16, 16), layers)
    assert resident["weights_resident"] and resident["layers"][0]["ddr_bytes"] == 0
    tight = _acc(16, 16, bram36=40, uram=0, ddr_gbs=1.0)  # 184,320 bytes: weights stream
    streamed = estimate(tight, layers)
    row = streamed["layers"][0]
    assert not streamed["weights_resident"] and row["ddr_bytes"] == 512 * 512 + 12 * 512
    assert row["bound"] == "ddr" and streamed["bound"] == "ddr"
    ddr_ms = row["ddr_bytes"] / (1e9 * 0.7) * 1e3
    assert streamed["estimate_ms"] == pytest.approx(ddr_ms, rel=1e-3)


def test_bert_program_has_the_exported_programs_gemms(tiny_fpga):
    """The hand-written BERT node list gives the same GEMMs as a real exported program."""
    program = F.read_program(tiny_fpga / "model.fpga")
    shapes = {k: tuple(v.shape) for k, v in program.t.items()}
    sizes = {k: int(v.nbytes) for k, v in program.t.items()}
    real = program_layers(program.nodes, shapes, sizes, 32)
    nodes, s, z, inputs = bert_program(layers=2, hidden=32, ffn=64, heads=2)
    made = program_layers(nodes, s, z, 32, inputs)
    encoder = {layer.name: layer.gemms for layer in real if layer.gemms}
    encoder = {k: v for k, v in encoder.items() if k.startswith("l")}  # not pooler/classifier
    assert encoder == {layer.name: layer.gemms for layer in made if layer.gemms}
    # the same ops in the same order and widths, from the embeddings' int8 copy on (the
    # last LayerNorm feeds the classifier head here: its width is the head's business)
    start = [n["output"] for n in program.nodes].index("emb.ln.i8")
    real_ops = [(n["op"], n["bits"]) for n in program.nodes[start : start + len(nodes) - 1]]
    assert real_ops == [(n["op"], n["bits"]) for n in nodes[:-1]]


def test_fpga_model_transport_estimates_a_bundle_layer_by_layer(tiny_fpga):
    from pocketbert.lab import TRANSPORTS, Job

    device = load_devices()["zcu104"]
    record = TRANSPORTS["fpga-model"](device, Job(tiny_fpga, seq_len=16))
    assert record["method"] == "estimated" and record["seq_len"] == 16
    model = record["fpga_model"]
    program = F.read_program(tiny_fpga / "model.fpga")
    assert [r["layer"] for r in model["layers"]] == [n["output"] for n in program.nodes]
    total = sum(r["ms"] for r in model["layers"])
    assert record["latency_ms"]["estimate"] == pytest.approx(total, rel=1e-3)
    assert 0 < model["utilisation"]["dsp"] <= 1 and model["weights_resident"]


def test_profile_estimates_fpga_bundles_on_zcu104_and_measures_them_on_the_host(tiny_fpga):
    records = pocketbert.profile(
        [tiny_fpga], ["zcu104", "host"], runs=2, warmup=0, store=None, quiet=True
    )
    by = {r["device"]: r for r in records}
    assert by["zcu104"]["status"] == "ok" and by["zcu104"]["method"] == "estimated"
    assert by["host"]["status"] == "ok" and by["host"]["method"] == "measured"


def test_vectors_verb_writes_reloads_and_replays(tiny_fpga, tmp_path, capsys):
    out = tmp_path / "vectors"
    assert main(["vectors", str(tiny_fpga), "-o", str(out), "-n", "2"]) == 0
    index = json.loads((out / "vectors.json").read_text())
    assert index["sentences"] == 2 and sorted(p.name for p in out.glob("*.safetensors")) == [
        "sentence-000.safetensors",
        "sentence-001.safetensors",
    ]
    assert main(["vectors", str(tiny_fpga), "--check", str(out)]) == 0
    assert "identical bytes" in capsys.readouterr().out
    from safetensors.numpy import load_file, save_file

    path = out / "sentence-001.safetensors"
    tensors = load_file(str(path))
    tensors["l0.q"] = tensors["l0.q"].copy()
    tensors["l0.q"].flat[0] ^= 1  # one bit of one op's output
    save_file(tensors, str(path))
    with pytest.raises(AssertionError, match="l0"):
        pocketbert.fpga_vectors.replay_vectors(tiny_fpga, out)


def test_fpga_model_cli_says_in_one_line_which_layer_does_not_fit(tiny_fpga, tmp_path, capsys):
    catalog = tmp_path / "devices.yaml"
    catalog.write_text(
        "devices:\n  - {id: small, kind: fpga, transport: fpga-model, formats: [fpga], "
        "runtimes: [fpga], fpga: {dsps: 100, macs_per_dsp: 1, clock_mhz: 100, bram36: 1, "
        "uram: 0, ddr_gbs: 1, array: [4, 4]}}\n"
    )
    code = main(["fpga-model", str(tiny_fpga), "--device", "small", "--devices", str(catalog)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "needs" in err and "bytes on chip" in err and "has 4,608 (1 BRAM36 + 0 URAM)" in err


def test_fpga_entry_missing_a_resource_field_is_one_line_exit_2(tmp_path, capsys):
    catalog = tmp_path / "devices.yaml"
    catalog.write_text(
        "devices:\n  - {id: nouram, kind: fpga, transport: fpga-model, formats: [fpga], "
        "runtimes: [fpga], fpga: {dsps: 100, macs_per_dsp: 2, clock_mhz: 100, bram36: 8, "
        "ddr_gbs: 4}}\n"
    )
    assert main(["devices", "--devices", str(catalog)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "(nouram): 'fpga' lacks uram" in err


def test_fpga_entry_with_an_impossible_dsp_packing_is_refused(tmp_path):
    catalog = tmp_path / "devices.yaml"
    catalog.write_text(
        "devices:\n  - {id: odd, kind: fpga, transport: fpga-model, formats: [fpga], "
        "runtimes: [fpga], fpga: {dsps: 100, macs_per_dsp: 3, clock_mhz: 100, bram36: 8, "
        "uram: 0, ddr_gbs: 4}}\n"
    )
    with pytest.raises(UserError, match="macs_per_dsp' is 3; give one of 1, 1.75, 2"):
        load_devices(catalog)


def test_fpga_model_refuses_a_bundle_of_another_format(onnx_bundle):
    from pocketbert.lab import TRANSPORTS, Job

    with pytest.raises(UserError, match="this bundle is onnx"):
        TRANSPORTS["fpga-model"](load_devices()["zcu104"], Job(onnx_bundle))
