"""Every registered format x precision config x architecture exports, verifies and runs.

The parametrization comes from the registries themselves (each exporter's entry lists
the precision configs it handles), so a new exporter, precision config or runtime is
covered (or fails here) without editing this file.
"""

import json

import numpy as np
import pytest
from conftest import ARCHITECTURES

import pocketbert
from pocketbert.bundle import open_bundle
from pocketbert.converters import EXPORTERS
from pocketbert.converters.quantization import PRECISIONS, config_dict
from pocketbert.core.texts import BUILTIN
from pocketbert.runtimes import RUNTIMES


def test_every_exporter_names_a_registered_runtime_with_its_suffix():
    for name, info in EXPORTERS.items():
        assert info.runtime in RUNTIMES, f"exporter {name} names unknown runtime {info.runtime}"
        assert RUNTIMES[info.runtime].suffix == info.suffix


def test_every_runtime_is_reached_by_an_exporter():
    assert {info.runtime for info in EXPORTERS.values()} == set(RUNTIMES)


def test_every_precision_config_is_named_in_the_table_and_handled_by_an_exporter():
    handled = {config for info in EXPORTERS.values() for config in info.handles}
    assert handled == set(PRECISIONS.values())  # --precision can name every handled config
    assert all(PRECISIONS[c.name] is c for c in handled)


# ExecuTorch and TFLite exports take from tens of seconds to minutes per architecture: the
# default run walks ONNX for every architecture and ExecuTorch and TFLite for BERT;
# `pytest -m slow` walks the rest.
DEFAULT_RUN = {
    "onnx": set(ARCHITECTURES),
    "fpga": set(ARCHITECTURES),
    "executorch": {"bert"},
    "tflite": {"bert"},
}
SEQ = 32  # two TFLite length buckets (16, 32): the mechanics of all, at a quarter of the work


def _jobs():
    for arch in ARCHITECTURES:
        for fmt in sorted(EXPORTERS):
            slow = arch not in DEFAULT_RUN.get(fmt, ())
            yield pytest.param(
                fmt, arch, marks=(pytest.mark.slow,) if slow else (), id=f"{arch}-{fmt}"
            )


@pytest.mark.parametrize(("fmt", "arch"), list(_jobs()))
def test_export_writes_verified_bundles_for_every_precision(fmt, arch, tiny_models, tmp_path):
    out = tmp_path / "bundles"
    configs = [config_type() for config_type in EXPORTERS[fmt].handles]
    results = pocketbert.export(
        tiny_models[arch], out, format=fmt, precision=configs, max_seq_len=SEQ, quiet=True
    )
    assert [r.precision for r in results] == [c.name for c in configs]
    sizes = {}
    for result, config in zip(results, configs, strict=True):
        bundle = open_bundle(result.path)  # hashes checked
        m = bundle.manifest
        assert m["format"] == fmt and m["precision"] == result.precision
        assert m["quantization"] == config_dict(config)
        assert m["parity"]["passed"] is True
        # a run that calibrates on the built-in sentences verifies on the other half of them
        calibrates = any(c.calibration_samples for c in configs)
        assert m["parity"]["samples"] == len(BUILTIN) // (2 if calibrates else 1)
        assert m["architecture"] == arch
        assert set(m["files"]) >= {m["model_file"], "tokenizer.json", "vocab.txt", "labels.json"}
        tolerance = config.tolerance("classification")
        assert m["parity"]["gate"] == tolerance.rule
        assert tolerance.passes(m["parity"][tolerance.metric], m["parity"].get(tolerance.rows))
        if result.precision == "fp32":
            assert m["parity"]["max_abs_diff"] <= 1e-4
        else:
            assert m["parity"]["argmax_agreement"] >= 0.98
        predictor = pocketbert.load(result.path, threads=1)
        preds = predictor.predict(["a wonderful film", "a dull and lifeless film"])
        assert [p["label"] in ("negative", "positive") for p in preds] == [True, True]
        assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-5 for p in preds)
        sizes[result.precision] = bundle.model_path.stat().st_size
        assert json.loads((result.path / "labels.json").read_text()) == ["negative", "positive"]
    if {"int8-dynamic", "fp32"} <= set(sizes):
        assert sizes["int8-dynamic"] < sizes["fp32"]


def test_embedding_export_matches_torch_mean_pooling(tiny_embedder, tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    out = tmp_path / "emb"
    pocketbert.export(tiny_embedder, out, format="onnx", precision="fp32", quiet=True)
    vec = pocketbert.load(out).predict(["the garden looks wonderful"])
    tok = AutoTokenizer.from_pretrained(tiny_embedder)
    model = AutoModel.from_pretrained(tiny_embedder).eval()
    enc = tok(["the garden looks wonderful"], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    expected = (hidden * enc["attention_mask"][..., None]).sum(1) / enc["attention_mask"].sum()
    assert vec.shape == (1, expected.shape[1])
    np.testing.assert_allclose(vec, expected.numpy(), atol=1e-4)
