import torch

from pocketbert.converters.squeeze_linear import GroupedPointwise, grouped_convs_as_linear


def test_grouped_pointwise_matches_the_grouped_conv_it_replaces():
    torch.manual_seed(0)
    for groups in (1, 4):
        conv = torch.nn.Conv1d(32, 48, kernel_size=1, groups=groups)
        x = torch.randn(2, 32, 7)
        torch.testing.assert_close(GroupedPointwise(conv)(x), conv(x), atol=1e-5, rtol=1e-5)


def test_rewrite_leaves_no_conv1d_in_a_squeezebert(tiny_models):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_models["squeezebert"])
    assert grouped_convs_as_linear(model) > 0
    assert not any(isinstance(m, torch.nn.Conv1d) for m in model.modules())
