"""Every registered format x precision x architecture exports, verifies and runs.

The parametrization comes from the registries themselves, so a new exporter or
runtime is covered (or fails here) without editing this file.
"""

import json

import numpy as np
import pytest
from conftest import ARCHITECTURES

import pocketbert
from pocketbert.bundle import open_bundle
from pocketbert.converters import EXPORTERS
from pocketbert.core.texts import BUILTIN
from pocketbert.exporter import PRECISIONS
from pocketbert.runtimes import RUNTIMES


def test_every_exporter_names_a_registered_runtime_with_its_suffix():
    for name, info in EXPORTERS.items():
        assert info.runtime in RUNTIMES, f"exporter {name} names unknown runtime {info.runtime}"
        assert RUNTIMES[info.runtime].suffix == info.suffix


def test_every_runtime_is_reached_by_an_exporter():
    assert {info.runtime for info in EXPORTERS.values()} == set(RUNTIMES)


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_export_writes_verified_bundles_for_every_precision(fmt, arch, tiny_models, tmp_path):
    out = tmp_path / "bundles"
    results = pocketbert.export(tiny_models[arch], out, format=fmt, precision="all", quiet=True)
    assert [r.precision for r in results] == list(PRECISIONS)
    sizes = {}
    for result in results:
        bundle = open_bundle(result.path)  # hashes checked
        m = bundle.manifest
        assert m["format"] == fmt and m["precision"] == result.precision
        assert m["parity"]["passed"] is True
        assert m["parity"]["samples"] == len(BUILTIN)
        assert m["architecture"] == arch
        assert set(m["files"]) >= {m["model_file"], "tokenizer.json", "vocab.txt", "labels.json"}
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
