"""A tiny BERT through the ExecuTorch exporter and runtime, fp32 and int8-dynamic."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("executorch")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from pocketbert.converters.export_executorch import export  # noqa: E402
from pocketbert.converters.int8_embedding import Int8Embedding, int8_embeddings  # noqa: E402
from pocketbert.converters.model import ExportWrapper  # noqa: E402
from pocketbert.converters.spec import ExportSpec  # noqa: E402
from pocketbert.core.errors import UserError  # noqa: E402
from pocketbert.runtimes import load  # noqa: E402

SEQ = 16


@pytest.fixture(scope="module")
def tiny_bert() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=500,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    return ExportWrapper(transformers.BertModel(cfg).eval(), "embedding").eval()


def _feed(n: int) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(n).integers(5, 500, (1, n)).astype(np.int64)
    return {"input_ids": ids, "attention_mask": np.ones((1, n), np.int64)}


def _reference(model: torch.nn.Module, feed: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(feed[k]) for k in ("input_ids", "attention_mask"))).numpy()


def test_int8_embedding_matches_fp32_table_within_one_step():
    emb = torch.nn.Embedding(50, 8)
    q = Int8Embedding(emb)
    ids = torch.arange(50)
    step = q.scale.squeeze(1).max().item()
    assert q.weight.dtype == torch.int8
    assert (q(ids) - emb(ids)).abs().max().item() <= step / 2 + 1e-7


def test_int8_embedding_rows_are_dequantized_inside_the_delegate():
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    q = Int8Embedding(torch.nn.Embedding(50, 8))
    ids = torch.arange(10).unsqueeze(0)
    edge = to_edge_transform_and_lower(
        torch.export.export(q, (ids,)), partitioner=[XnnpackPartitioner()]
    )
    outside = [
        n.target.__name__
        for n in edge.exported_program().graph.nodes
        if n.op == "call_function" and hasattr(n.target, "__name__")
    ]
    assert not [name for name in outside if "to_dim_order_copy" in name or "_to_copy" in name]
    assert any(
        "executorch_call_delegate" in str(n.target) for n in edge.exported_program().graph.nodes
    )


def test_int8_embeddings_swaps_every_table(tiny_bert):
    import copy

    model = copy.deepcopy(tiny_bert)
    assert int8_embeddings(model) == 3
    assert not any(isinstance(m, torch.nn.Embedding) for m in model.modules())


@pytest.mark.parametrize("precision", ["fp32", "int8-dynamic"])
def test_executorch_export_runs_dynamic_seq_when_lowered(tiny_bert, tmp_path, precision):
    spec = ExportSpec("executorch", precision, "embedding", SEQ, _feed(SEQ), [_feed(7)])
    exported = export(tiny_bert, spec, tmp_path / "m.pte")
    assert exported.dynamic_seq
    assert "executorch" in exported.tools
    assert isinstance(exported.checks["undelegated_ops"], dict)
    sess = load(exported.path, threads=1)
    assert sess.input_names == ["input_ids", "attention_mask"]
    for n in (3, SEQ):
        out = sess.run(_feed(n))[0]
        ref = _reference(tiny_bert, _feed(n))
        assert out.dtype == np.float32 and out.shape == ref.shape
        if precision == "fp32":
            assert np.abs(out - ref).max() <= 1e-4
        else:
            cos = float((out * ref).sum() / np.linalg.norm(out) / np.linalg.norm(ref))
            assert cos >= 0.98


def test_executorch_load_raises_user_error_when_file_is_not_a_program(tmp_path):
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(UserError, match="not a loadable ExecuTorch model"):
        load(bad)
