"""Cross-layer weight sharing: one set of weights per group of layers, saved and exported
once where the format allows (ONNX), reloaded tied; groups must divide the layers."""

import copy

import pytest
import torch
from random_models import save_random_model

import pocketbert
from pocketbert.converters.compress_configs import PruneStructure, ShareLayers
from pocketbert.converters.methods import apply_method
from pocketbert.converters.model import load_model
from pocketbert.core.errors import UserError
from pocketbert.core.texts import BUILTIN


@pytest.fixture(scope="module")
def four_layers(tmp_path_factory):
    d = tmp_path_factory.mktemp("share") / "bert4"
    shape = dict(num_hidden_layers=4, hidden_size=64, intermediate_size=256, num_attention_heads=2)
    save_random_model("bert", d, **shape)
    loaded = load_model(d)
    return d, loaded.module.model.eval(), loaded.tokenizer


def _layer_bytes(model) -> int:
    return 4 * sum(p.numel() for p in model.bert.encoder.layer[0].parameters())


def test_shared_layers_are_one_module_saved_once_and_reloaded_tied(four_layers, tmp_path):
    source, model, tok = four_layers
    shared = apply_method(copy.deepcopy(model), ShareLayers(group_size=2))
    layers = shared.bert.encoder.layer
    assert layers[0] is layers[1] and layers[2] is layers[3] and layers[1] is not layers[2]
    before = sum(p.numel() for p in model.parameters())
    after = sum(p.numel() for p in shared.parameters())
    assert before - after == 2 * _layer_bytes(model) // 4
    shared.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    saved = (tmp_path / "model.safetensors").stat().st_size
    original = (source / "model.safetensors").stat().st_size
    assert original - saved >= 0.95 * 2 * _layer_bytes(model)  # each shared tensor once
    back = load_model(tmp_path).module.model
    assert back.bert.encoder.layer[0] is back.bert.encoder.layer[1]
    enc = tok(BUILTIN[:8], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(back(**enc).logits, shared(**enc).logits, atol=1e-6)


def test_onnx_stores_the_shared_weights_once(four_layers, tmp_path):
    source, model, tok = four_layers
    shared_dir = tmp_path / "shared"
    apply_method(copy.deepcopy(model), ShareLayers(group_size=2)).save_pretrained(shared_dir)
    tok.save_pretrained(shared_dir)
    sizes = {}
    for name, src in (("original", source), ("shared", shared_dir)):
        (result,) = pocketbert.export(
            src, tmp_path / f"{name}-onnx", format="onnx", precision="fp32", quiet=True
        )
        assert result.parity["passed"] is True
        sizes[name] = (tmp_path / f"{name}-onnx" / "model.onnx").stat().st_size
    assert sizes["original"] - sizes["shared"] >= 0.95 * 2 * _layer_bytes(model)


def test_groups_that_do_not_divide_the_layers_and_pruning_shared_layers_are_refused(
    four_layers,
):
    _, model, tok = four_layers
    with pytest.raises(UserError, match="do not divide the 4 layers; give a group size of 2, 4"):
        apply_method(copy.deepcopy(model), ShareLayers(group_size=3))
    with pytest.raises(UserError, match="shares nothing"):
        ShareLayers(group_size=1)
    shared = apply_method(copy.deepcopy(model), ShareLayers(group_size=4))
    with pytest.raises(UserError, match="shared already"):
        apply_method(shared, ShareLayers(group_size=2))
    batch = {
        **tok(BUILTIN[:4], padding=True, return_tensors="pt"),
        "labels": torch.tensor([0, 1, 0, 1]),
    }
    with pytest.raises(UserError, match="before sharing"):
        apply_method(shared, PruneStructure(heads=0.5, batches=[batch]))
