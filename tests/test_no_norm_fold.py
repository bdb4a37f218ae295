import onnx
import torch

from pocketbert.converters.no_norm_fold import fold_bottleneck_no_norms


def _ops(path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _exported_ops(model, out) -> dict[str, int]:
    """The op counts of ``model``'s ONNX fp32 export, judged against the unrewritten model."""
    import pocketbert

    [result] = pocketbert.export(model, out, format="onnx", precision="fp32", quiet=True)
    assert result.parity["argmax_agreement"] == 1.0
    return _ops(out / "model.onnx")


def test_folded_mobilebert_gives_the_same_outputs_with_no_bottleneck_norm(tiny_models):
    import copy

    from pocketbert.converters.model import load_model

    loaded = load_model(tiny_models["mobilebert"])
    with torch.no_grad():  # NoNorm starts at gamma 1, beta 0: make the fold do something
        for m in loaded.module.modules():
            if type(m).__name__ == "NoNorm":
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    layers = loaded.config.num_hidden_layers
    module = copy.deepcopy(loaded.module)
    assert fold_bottleneck_no_norms(module) == 2 * layers
    names = [type(m).__name__ for m in module.modules()]
    nonorms_before = sum(type(m).__name__ == "NoNorm" for m in loaded.module.modules())
    assert nonorms_before - names.count("NoNorm") == 2 * layers  # input + attention bottleneck
    ids = torch.randint(5, 60, (2, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        torch.testing.assert_close(
            module(ids, mask), loaded.module(ids, mask), atol=1e-5, rtol=1e-5
        )
    assert fold_bottleneck_no_norms(module) == 0  # nothing left to fold


def test_the_onnx_graph_loses_a_mul_and_an_add_per_bottleneck(tiny_models, tmp_path, monkeypatch):
    from pocketbert.converters import model as model_module
    from pocketbert.converters.model import load_model
    from pocketbert.converters.no_norm_fold import _foldable

    loaded = load_model(tiny_models["mobilebert"])
    folds = sum(_foldable(m) for m in loaded.module.modules())
    assert folds == 2 * loaded.config.num_hidden_layers

    folded = _exported_ops(tiny_models["mobilebert"], tmp_path / "folded")
    monkeypatch.setattr(model_module, "fold_bottleneck_no_norms", lambda module: 0)
    unfolded = _exported_ops(tiny_models["mobilebert"], tmp_path / "unfolded")
    assert unfolded["Mul"] - folded.get("Mul", 0) == folds
    assert unfolded["Add"] - folded["Add"] == folds
    assert unfolded["MatMul"] == folded["MatMul"]


def test_other_architectures_are_left_alone(tiny_models):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert"])
    assert fold_bottleneck_no_norms(model) == 0


def test_the_onnx_graph_loses_a_mul_and_an_add_per_carried_no_norm(
    tiny_models, tmp_path, monkeypatch
):
    import copy

    from pocketbert.converters import model as model_module
    from pocketbert.converters.model import load_model
    from pocketbert.converters.no_norm_carry import carry_residual_no_norms

    loaded = load_model(tiny_models["mobilebert"])
    carried = carry_residual_no_norms(copy.deepcopy(loaded.module))
    layers, ffns = loaded.config.num_hidden_layers, loaded.config.num_feedforward_networks
    assert carried == layers * (ffns + 1) + layers  # gamma 1 everywhere: every one carried

    carrying = _exported_ops(tiny_models["mobilebert"], tmp_path / "carried")
    monkeypatch.setattr(model_module, "carry_residual_no_norms", lambda module: 0)
    plain = _exported_ops(tiny_models["mobilebert"], tmp_path / "plain")
    assert plain["Mul"] - carrying.get("Mul", 0) == carried
    assert plain["Add"] - carrying["Add"] == carried
    assert plain["MatMul"] == carrying["MatMul"]
