import pytest
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


@pytest.mark.parametrize("batch", [1, 3])
def test_channels_last_encoder_matches_the_model_it_rewrites_when_padded(batch, tiny_models):
    import copy

    from pocketbert.converters.model import export_ready, load_model
    from pocketbert.converters.squeezebert_channels_last import squeezebert_channels_last

    loaded = load_model(tiny_models["squeezebert"])
    rewritten = export_ready(loaded)  # grouped convs already Linear: the exporters' input
    assert squeezebert_channels_last(rewritten) == 1
    from_convs = copy.deepcopy(loaded.module)
    assert squeezebert_channels_last(from_convs) == 1
    ids = torch.randint(5, 60, (batch, 12))
    mask = torch.ones_like(ids)
    mask[0, 9:] = 0
    with torch.no_grad():
        want = loaded.module(ids, mask)
        torch.testing.assert_close(rewritten(ids, mask), want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(from_convs(ids, mask), want, atol=1e-5, rtol=1e-5)


def test_channels_last_leaves_other_architectures_alone(tiny_models):
    from transformers import AutoModelForSequenceClassification

    from pocketbert.converters.squeezebert_channels_last import squeezebert_channels_last

    model = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert"])
    assert squeezebert_channels_last(model) == 0


def test_onnx_fp32_keeps_grouped_convs_and_int8_gets_matmuls(tiny_models, tmp_path):
    import onnx

    import pocketbert

    ops = {}
    for precision in ("fp32", "int8-dynamic"):
        out = tmp_path / precision
        pocketbert.export(
            tiny_models["squeezebert"], out, format="onnx", precision=precision, quiet=True
        )
        ops[precision] = [n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node]
    assert "Conv" in ops["fp32"]
    assert "Conv" not in ops["int8-dynamic"] and "ConvInteger" not in ops["int8-dynamic"]
    assert "MatMulInteger" in ops["int8-dynamic"] or "DynamicQuantizeLinear" in ops["int8-dynamic"]
