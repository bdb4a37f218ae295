import copy

import pytest
import torch
from transformers import MobileBertConfig, MobileBertForSequenceClassification

from pocketbert.converters import no_norm_carry
from pocketbert.converters.no_norm_carry import carry_residual_no_norms
from pocketbert.converters.no_norm_fold import fold_bottleneck_no_norms

SMALL = dict(
    vocab_size=80,
    hidden_size=48,
    embedding_size=16,
    intra_bottleneck_size=16,
    true_hidden_size=16,
    intermediate_size=32,
    num_attention_heads=2,
    num_hidden_layers=3,
    max_position_embeddings=32,
    num_labels=3,
    num_feedforward_networks=1,
)


def _model(seed: int = 0, spread: float = 1.2, **config) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = MobileBertForSequenceClassification(MobileBertConfig(**{**SMALL, **config})).eval()
    with torch.no_grad():  # NoNorm starts at gamma 1, beta 0: give the carry something to do
        for m in model.modules():
            if type(m).__name__ == "NoNorm":
                m.weight.uniform_(1.0, spread)
                m.bias.uniform_(-0.3, 0.3)
    return model


def _nonorms(model: torch.nn.Module) -> int:
    return sum(type(m).__name__ == "NoNorm" for m in model.modules())


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> None:
    ids = torch.randint(3, 80, (2, 13), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    with torch.no_grad():
        want = a(input_ids=ids, attention_mask=mask).logits
        got = b(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "config, carried",
    [
        ({}, 3 * 2 + 3),  # per layer attention output + output, plus embeddings + 2 bottlenecks
        ({"num_feedforward_networks": 3}, 3 * 4 + 3),
        ({"use_bottleneck_attention": True, "key_query_shared_bottleneck": False}, 3 * 2 + 3),
        ({"use_bottleneck": False, "true_hidden_size": 48}, 1 + 3 * 2 - 1),  # one chain
    ],
)
def test_carried_no_norms_leave_the_outputs_unchanged(config, carried):
    model = _model(**config)
    folded = copy.deepcopy(model)
    fold_bottleneck_no_norms(folded)
    before = _nonorms(folded)
    assert carry_residual_no_norms(folded) == carried
    assert before - _nonorms(folded) == carried
    assert _nonorms(folded) == 1  # the last one materialises the hidden state
    _same_outputs(model, folded)


def test_a_chain_is_materialised_where_its_scales_would_spread_too_far(monkeypatch):
    model = _model()
    with torch.no_grad():  # the embeddings' NoNorm spreads 100x: it must stay in the graph
        model.mobilebert.embeddings.LayerNorm.weight[0] = 100.0
    folded = copy.deepcopy(model)
    fold_bottleneck_no_norms(folded)
    assert carry_residual_no_norms(folded) == 3 * 2 + 2
    assert type(folded.mobilebert.embeddings.LayerNorm).__name__ == "NoNorm"
    _same_outputs(model, folded)
    # spread limit 1: every chain's first step already spreads its random gammas (1-1.2)
    # beyond it, so every NoNorm is materialised and nothing is carried
    monkeypatch.setattr(no_norm_carry, "MAX_SPREAD", 1.0)
    strict = copy.deepcopy(model)
    fold_bottleneck_no_norms(strict)
    assert carry_residual_no_norms(strict) == 0
    _same_outputs(model, strict)


def test_layernorm_mobilebert_and_bert_are_left_alone(tiny_models):
    from transformers import AutoModelForSequenceClassification

    model = _model(normalization_type="layer_norm")
    assert carry_residual_no_norms(model) == 0
    bert = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert"])
    assert carry_residual_no_norms(bert) == 0


def test_the_fpga_recipe_keeps_the_residual_no_norms(tiny_models, tmp_path):
    # the FPGA program's integer NoNorm runs on a 16-bit residual copy: it takes the module
    # without the carry (tests/test_fpga_export.py checks the program itself)
    from pocketbert.converters.model import export_ready, load_model
    from pocketbert.converters.quantization import Fp32, Int8Static
    from pocketbert.export_job import Job

    loaded = load_model(tiny_models["mobilebert"])
    job = Job(loaded, export_ready(loaded), None, None, tmp_path, tmp_path)
    layers = loaded.config.num_hidden_layers
    assert _nonorms(job.module) == 1
    fpga = job.module_for("fpga", Int8Static())
    assert _nonorms(fpga) == _nonorms(loaded.module) - 2 * layers  # only the bottleneck fold
    assert job.module_for("fpga", Int8Static()) is fpga  # made once
    assert job.module_for("onnx", Fp32()) is job.module
