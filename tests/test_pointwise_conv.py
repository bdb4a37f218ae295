"""Training SqueezeBERT's pointwise convolutions as einsums changes speed, not results."""

import torch
from torch import nn

from pocketbert.converters.pointwise_conv import einsum_pointwise


def test_einsum_pointwise_matches_conv_and_restores_the_model(tiny_models):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_models["squeezebert"]).eval()
    ids = torch.randint(5, 100, (3, 11))
    mask = torch.ones_like(ids)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference = model(input_ids=ids, attention_mask=mask).logits
    with einsum_pointwise(model) as swapped:
        assert swapped > 0
        got = model(input_ids=ids, attention_mask=mask).logits
        got.sum().backward()  # gradients reach the Conv1d weights
    assert torch.allclose(got, reference, atol=1e-5)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert all(type(m) is nn.Conv1d for m in convs)
    assert all(m.weight.grad is not None for m in convs)
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_einsum_pointwise_leaves_other_convolutions_alone():
    model = nn.Sequential(nn.Conv1d(4, 4, 3, padding=1), nn.Conv1d(4, 8, 1, groups=2))
    with einsum_pointwise(model) as swapped:
        assert swapped == 1 and type(model[0]) is nn.Conv1d
