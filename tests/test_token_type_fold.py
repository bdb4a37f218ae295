"""The token-type table folded to row 0: same outputs, and the graph reads no table for it."""

import onnx
import pytest
import torch

from pocketbert.converters.architectures import ARCHITECTURES
from pocketbert.converters.token_type_fold import TokenTypeZero, fold_token_types

WITH_TOKEN_TYPES = [name for name, a in ARCHITECTURES.items() if a.token_types]


@pytest.mark.parametrize("arch", WITH_TOKEN_TYPES)
def test_folded_model_gives_the_same_outputs(tiny_models, arch):
    from pocketbert.converters.model import export_ready, load_model

    loaded = load_model(tiny_models[arch])
    module = export_ready(loaded)
    assert any(isinstance(m, TokenTypeZero) for m in module.modules())
    ids = torch.randint(5, 60, (2, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        torch.testing.assert_close(module(ids, mask), loaded.module(ids, mask))
    assert fold_token_types(module) == 0  # nothing left to fold


def _token_type_reads(path) -> int:
    graph = onnx.load(str(path)).graph
    tables = {i.name for i in graph.initializer if "token_type" in i.name}
    return sum(1 for n in graph.node if n.op_type == "Gather" and set(n.input) & tables)


@pytest.mark.parametrize("arch", ["bert", "mobilebert"])
def test_the_onnx_graph_gathers_no_token_type_rows(tiny_models, tmp_path, monkeypatch, arch):
    import pocketbert
    from pocketbert.converters import model as model_module

    def export(name):
        [result] = pocketbert.export(
            tiny_models[arch], tmp_path / name, format="onnx", precision="fp32", quiet=True
        )
        assert result.parity["argmax_agreement"] == 1.0  # judged against the unfolded model
        path = tmp_path / name / "model.onnx"
        return _token_type_reads(path), len(onnx.load(str(path)).graph.node)

    reads, nodes = export("folded")
    monkeypatch.setattr(model_module, "fold_token_types", lambda module: 0)
    reads_before, nodes_before = export("unfolded")
    assert (reads_before, reads) == (1, 0)
    assert nodes_before - nodes >= 3  # the zero ids, the gather and its add's operand
