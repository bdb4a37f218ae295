"""The fpga integer program: export, load, bit-exactness, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pocketbert
from pocketbert import runtimes
from pocketbert.core.errors import UserError
from pocketbert.runtimes import fpga as F

SENTENCES = ["a warm and funny film", "dull, slow and far too long", "it is fine"]
FPGA_ARCHITECTURES = ("bert", "distilbert", "mobilebert", "squeezebert")


@pytest.fixture(scope="module")
def fpga_bundles(tiny_models, tmp_path_factory) -> dict[str, Path]:
    made = {}
    for arch in FPGA_ARCHITECTURES:
        out = tmp_path_factory.mktemp("fpga") / arch
        pocketbert.export(
            tiny_models[arch],
            out,
            format="fpga",
            precision="int8-static",
            max_seq_len=32,
            quiet=True,
        )
        made[arch] = out
    return made


def _program_file(bundle: Path) -> Path:
    return bundle / json.loads((bundle / "manifest.json").read_text())["model_file"]


def _feed(length: int, seed: int = 0) -> dict:
    ids = np.zeros((1, 32), np.int64)
    ids[0, :length] = np.random.default_rng(seed).integers(5, 90, length)
    return {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}


@pytest.mark.parametrize("arch", FPGA_ARCHITECTURES)
def test_fpga_bundle_predicts_and_passes_its_parity_gate(fpga_bundles, arch):
    bundle = fpga_bundles[arch]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "fpga" and manifest["parity"]["passed"] is True
    assert manifest["parity"]["argmax_agreement"] >= 0.98
    preds = pocketbert.load(bundle).predict(SENTENCES)
    assert len(preds) == len(SENTENCES)


@pytest.mark.parametrize("arch", FPGA_ARCHITECTURES)
def test_fpga_program_holds_only_integer_tensors_but_the_output_scale(fpga_bundles, arch):
    program = F.read_program(_program_file(fpga_bundles[arch]))
    for name, tensor in program.t.items():
        if name == "output.scale":
            assert tensor.dtype == np.float32
        elif tensor.dtype == np.int64:  # the bias of a 48-bit accumulator
            assert np.abs(tensor).max() < 2**47, name
        else:
            assert tensor.dtype in (np.int8, np.int16, np.int32), name
    for node in program.nodes:
        if node["op"] == "linear":
            width = 8 if program.t[node["w"]].dtype == np.int8 else None
            assert width == 8, node["w"]
            inputs = {n["output"]: n["bits"] for n in program.nodes}.get(node["inputs"][0])
            assert node["acc_bits"] == (32 if inputs == 8 else 48)
    bits: dict[str, set] = {}
    for n in program.nodes:
        bits.setdefault(n["op"], set()).add(n["bits"])
    norm = "nonorm" if arch == "mobilebert" else "layernorm"  # the tiny MobileBERT: NoNorm
    assert 16 in bits[norm] and bits["requant"] == {8}  # the residual copy, the MAC copy
    assert bits["attention"] == {8} and bits["add"] == {24}


def test_fpga_program_intermediates_are_integers_within_their_bit_widths(fpga_bundles):
    program = F.read_program(_program_file(fpga_bundles["bert"]))
    feed = _feed(12, seed=1)
    trace: dict = {}
    program.run_row(feed["input_ids"][0, :12], feed["attention_mask"][0, :12], trace)
    for node in program.nodes:
        value = trace[node["output"]]
        assert value.dtype == np.int64, node["output"]
        lo, hi = F._SAT[node["bits"]]
        assert value.min() >= lo and value.max() <= hi, node["output"]


def test_int8_matmul_on_float64_equals_int64_matmul():
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (64, 1536))
    b = rng.integers(-128, 128, (1536, 96))
    assert (F.int_matmul(a, b) == a.astype(np.int64) @ b.astype(np.int64)).all()
    a[:] = -128
    b[:] = -128  # the extreme sum: 1536 * 2**14
    assert (F.int_matmul(a, b) == 1536 * 2**14).all()


_RUN = """
import sys, numpy as np
from pocketbert import runtimes
s = runtimes.load(sys.argv[1], threads=int(sys.argv[2]))
ids = np.zeros((2, 32), np.int64); ids[0, :9] = np.arange(5, 14); ids[1, :32] = np.arange(7, 39)
out = s.run({"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)})[0]
sys.stdout.write(out.tobytes().hex())
"""


def test_fpga_outputs_are_the_same_bytes_in_two_processes_and_thread_counts(fpga_bundles):
    path = _program_file(fpga_bundles["bert"])
    outs = {
        threads: subprocess.run(
            [sys.executable, "-c", _RUN, str(path), str(threads)],
            capture_output=True,
            text=True,
            check=True,
            env={"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"},
        ).stdout
        for threads in (1, 2)
    }
    assert outs[1] and outs[1] == outs[2]
    ids = np.zeros((2, 32), np.int64)
    ids[0, :9], ids[1, :32] = np.arange(5, 14), np.arange(7, 39)
    here = runtimes.load(path).run({"input_ids": ids, "attention_mask": (ids != 0).astype(int)})
    assert here[0].tobytes().hex() == outs[1]


def test_fpga_runtime_refuses_a_corrupted_program_in_one_line(fpga_bundles, tmp_path):
    data = bytearray(_program_file(fpga_bundles["bert"]).read_bytes())
    bad = tmp_path / "model.fpga"
    bad.write_bytes(bytes(data[:8]) + b"{ not json" + bytes(data[18:]))
    with pytest.raises(UserError, match=r"is not a loadable fpga model") as err:
        runtimes.load(bad)
    assert "\n" not in str(err.value)


def test_fpga_runtime_refuses_a_program_without_its_header_program(fpga_bundles, tmp_path):
    from safetensors.numpy import save_file

    bad = tmp_path / "model.fpga"
    save_file({"x": np.zeros(2, np.int8)}, str(bad))
    with pytest.raises(UserError, match=r"no program in its header"):
        runtimes.load(bad)


def test_fpga_runtime_names_an_op_it_does_not_have(fpga_bundles, tmp_path):
    from safetensors.numpy import save_file

    program = F.read_program(_program_file(fpga_bundles["bert"]))
    prog = dict(program.prog, nodes=[*program.nodes[:-1], {**program.nodes[-1], "op": "swish"}])
    bad = tmp_path / "model.fpga"
    save_file(program.t, str(bad), metadata={"program": json.dumps(prog)})
    with pytest.raises(UserError, match=r"uses op\(s\) swish this runtime does not have"):
        runtimes.load(bad)


def test_fpga_export_names_an_unsupported_activation(tmp_path):
    import torch

    from pocketbert.converters import fpga_graph

    class Config:
        model_type, hidden_act = "bert", "silu"

    class Wrapper(torch.nn.Module):
        model = type("M", (), {"config": Config})()

    with pytest.raises(UserError, match="no op for activation 'silu'"):
        fpga_graph.build(Wrapper(), "classification")


def test_fpga_export_names_an_unsupported_architecture():
    from pocketbert.converters import fpga_graph

    wrapper = type(
        "W", (), {"model": type("M", (), {"config": type("C", (), {"model_type": "albert"})})()}
    )()
    with pytest.raises(UserError, match="does not support architecture 'albert'"):
        fpga_graph.build(wrapper, "classification")


@pytest.mark.parametrize("arch", FPGA_ARCHITECTURES)
def test_fpga_graph_in_float_reproduces_torch(tiny_models, arch):
    import torch

    from pocketbert.converters import fpga_graph
    from pocketbert.converters.model import export_ready, load_model

    module = export_ready(load_model(str(tiny_models[arch]), "classification"))
    ids = np.array([2, 10, 20, 30, 40, 3])
    mask = np.ones_like(ids)
    ref = module(torch.tensor(ids[None]), torch.tensor(mask[None])).detach().numpy()
    got = fpga_graph.run_float(fpga_graph.build(module, "classification"), ids, mask)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_fpga_embedding_bundle_passes_its_cosine_gate(tiny_embedder, tmp_path):
    out = tmp_path / "embedder"
    pocketbert.export(
        tiny_embedder, out, format="fpga", precision="int8-static", max_seq_len=32, quiet=True
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parity"]["passed"] is True
    program = F.read_program(_program_file(out))
    assert program.nodes[-1]["op"] == "pool"


@pytest.mark.parametrize("arch", ["bert", "mobilebert"])
def test_fpga_golden_vectors_replay_every_op_to_the_same_bytes(fpga_bundles, arch, tmp_path):
    from safetensors.numpy import load_file

    from pocketbert.runtimes import fpga_vectors

    bundle = fpga_bundles[arch]
    encoder = pocketbert.load(bundle).encoder
    out = fpga_vectors.write(
        _program_file(bundle), [encoder.feed(t) for t in SENTENCES], tmp_path / "v"
    )
    index = json.loads((out / "vectors.json").read_text())
    assert index["sentences"] == len(SENTENCES)
    checked = fpga_vectors.replay(_program_file(bundle), out)
    assert checked == len(SENTENCES) * len(index["ops"])
    rec = load_file(str(out / "sentence-000.safetensors"))
    assert rec["l0.ctx.probs"].dtype == np.uint8 and rec["l0.ctx.scores"].dtype == np.int32
    # one changed byte in one op's recorded output is caught, and named
    first = index["ops"][3]["output"]
    rec[first] = rec[first].copy()
    rec[first].flat[0] ^= 1
    from safetensors.numpy import save_file

    save_file(rec, str(out / "sentence-000.safetensors"))
    with pytest.raises(AssertionError, match=f"sentence 0, op {first}"):
        fpga_vectors.replay(_program_file(bundle), out)


def test_fpga_vectors_of_another_program_are_refused(fpga_bundles, tmp_path):
    from pocketbert.runtimes import fpga_vectors

    out = fpga_vectors.write(_program_file(fpga_bundles["bert"]), [_feed(6)], tmp_path / "v")
    with pytest.raises(UserError, match="belong to another program"):
        fpga_vectors.replay(_program_file(fpga_bundles["distilbert"]), out)
    with pytest.raises(UserError, match="already exists"):
        fpga_vectors.write(_program_file(fpga_bundles["bert"]), [_feed(6)], out)


def test_format_all_means_the_formats_that_export_every_precision_asked_for():
    from pocketbert.converters import EXPORTERS
    from pocketbert.exporter import _formats_for

    assert "fpga" not in _formats_for(
        ("fp32",), EXPORTERS
    )  # README's --format all --precision fp32
    assert {"onnx", "fpga"} <= set(_formats_for(("int8-static",), EXPORTERS))
    everything = _formats_for(("fp32", "int8-dynamic", "int8-static"), EXPORTERS)
    assert "fpga" not in everything and "onnx" in everything


def test_fpga_bundle_predicts_in_a_process_that_cannot_import_torch(fpga_bundles):
    guard = "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
    code = f"import pocketbert; print(pocketbert.load({str(fpga_bundles['bert'])!r}).predict(['a fine film'])[0]['label'])"
    out = subprocess.run([sys.executable, "-c", guard + code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("negative", "positive")


def test_pocketbert_run_prints_a_label_for_an_fpga_bundle(fpga_bundles):
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "pocketbert"),
            "run",
            str(fpga_bundles["squeezebert"]),
            "a fine film",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "a fine film" in out.stdout


def test_fpga_bundle_vectors_of_real_sentences_replay_and_other_formats_are_refused(
    fpga_bundles, onnx_bundle, tmp_path
):
    from pocketbert.fpga_vectors import replay_vectors, write_vectors

    out = write_vectors(fpga_bundles["distilbert"], SENTENCES, tmp_path / "v")
    assert replay_vectors(fpga_bundles["distilbert"], out) > 0
    with pytest.raises(UserError, match="is onnx, not fpga"):
        write_vectors(onnx_bundle, SENTENCES, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_fpga_exports_mobilebert_with_layernorm_instead_of_nonorm(tmp_path):
    from random_models import save_random_model

    src = save_random_model("mobilebert", tmp_path / "mb", normalization_type="layer_norm")
    out = tmp_path / "fpga"
    pocketbert.export(src, out, format="fpga", precision="int8-static", max_seq_len=32, quiet=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parity"]["passed"] is True
    ops = {n["op"] for n in F.read_program(_program_file(out)).nodes}
    assert "layernorm" in ops and "nonorm" not in ops and "trigram" in ops


@pytest.mark.parametrize("arch", FPGA_ARCHITECTURES)
def test_fpga_integer_logits_follow_the_float_graph_closely(fpga_bundles, tiny_models, arch):
    """Stronger than the argmax gate on random weights: the integer program's logits
    against the float graph's, per sentence (a wrapped tensor shows up here)."""
    from pocketbert.converters import fpga_graph
    from pocketbert.converters.model import export_ready, load_model

    graph = fpga_graph.build(
        export_ready(load_model(str(tiny_models[arch]), "classification")), "classification"
    )
    program = F.read_program(_program_file(fpga_bundles[arch]))
    encoder = pocketbert.load(fpga_bundles[arch]).encoder
    for text in SENTENCES:
        feed = encoder.feed(text)
        keep = feed["attention_mask"][0] != 0
        ids = feed["input_ids"][0][keep]
        got = program.run_row(ids, np.ones(len(ids))).ravel()
        ref = fpga_graph.run_float(graph, ids, np.ones(len(ids))).ravel()
        # measured: at most 0.034 of the largest logit on these tiny models
        assert np.abs(got - ref).max() <= 0.06 * max(np.abs(ref).max(), 1.0), (text, got, ref)


def test_fpga_nonorm_beta_wider_than_int32_exports_and_agrees(tiny_models, tmp_path):
    """NoNorm reads the 24-bit residual stream, so its beta at the product's scale can need
    more than 32 bits (the default build's MobileBERT-style student did): it is int64."""
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.models.mobilebert.modeling_mobilebert import NoNorm

    source = Path(tiny_models["mobilebert"])
    model = AutoModelForSequenceClassification.from_pretrained(source)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, NoNorm):
                module.weight.mul_(0.05)
                module.bias.fill_(2.0)
    wide = tmp_path / "wide"
    model.save_pretrained(wide)
    for f in source.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "special_tokens")):
            shutil.copy(f, wide / f.name)
    out = tmp_path / "bundle"
    pocketbert.export(wide, out, format="fpga", precision="int8-static", max_seq_len=32, quiet=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parity"]["passed"] is True
    program = F.read_program(_program_file(out))
    betas = [program.t[n["b"]] for n in program.prog["nodes"] if n["op"] == "nonorm"]
    assert betas and all(b.dtype == np.int64 for b in betas)
    assert max(int(np.abs(b).max()) for b in betas) > np.iinfo(np.int32).max
