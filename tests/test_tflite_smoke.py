"""Smoke test of the TFLite exporter and the LiteRT runtime on a tiny random BERT."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_quantizer")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from pocketbert.converters import export_tflite  # noqa: E402
from pocketbert.converters.model import ExportWrapper  # noqa: E402
from pocketbert.converters.spec import ExportSpec  # noqa: E402
from pocketbert.core.errors import UserError  # noqa: E402
from pocketbert.runtimes import litert  # noqa: E402

SEQ = 16


@pytest.fixture(scope="module")
def tiny_bert() -> ExportWrapper:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=SEQ, num_labels=3,
    )  # fmt: skip
    model = transformers.BertForSequenceClassification(config).eval()
    return ExportWrapper(model, "classification").eval()


def _feed(length: int, seed: int) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(seed).integers(1, 100, size=(1, length), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def _spec(precision: str) -> ExportSpec:
    sample = _feed(SEQ, 0)
    calibration = [_feed(n, n) for n in range(4, SEQ, 2)]
    return ExportSpec("tflite", precision, "classification", SEQ, sample, calibration)


@pytest.mark.parametrize("precision", ["fp32", "int8-dynamic", "int8-static"])
def test_tflite_export_matches_torch_when_run_in_litert(tiny_bert, tmp_path: Path, precision):
    before = {k: v.clone() for k, v in tiny_bert.state_dict().items()}
    exported = export_tflite.export(tiny_bert, _spec(precision), tmp_path / "model.tflite")
    assert all(torch.equal(before[k], v) for k, v in tiny_bert.state_dict().items())
    assert exported.checks["flex_ops"] == [] and exported.checks["ops"]["FULLY_CONNECTED"] > 0
    assert set(exported.tools) >= {"litert-torch", "ai-edge-quantizer", "ai-edge-litert"}

    session = litert.load(exported.path, threads=1)
    assert session.input_names == ["input_ids", "attention_mask"]
    feed = _feed(9, 7)  # shorter than the file's fixed length: the session pads
    got = session.run(feed)[0]
    with torch.no_grad():
        want = tiny_bert(*(torch.from_numpy(feed[n]) for n in session.input_names)).numpy()
    tolerance = 1e-4 if precision == "fp32" else 5e-2
    assert got.dtype == np.float32 and np.abs(got - want).max() <= tolerance


def test_tflite_export_refuses_file_when_it_needs_flex_ops(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setattr(export_tflite, "op_set", lambda path: (Counter(FlexErf=1), {}))
    with pytest.raises(UserError, match="FlexErf"):
        export_tflite.export(tiny_bert, _spec("fp32"), tmp_path / "model.tflite")
    assert not (tmp_path / "model.tflite").exists()


def test_litert_load_raises_user_error_when_file_is_corrupt(tmp_path: Path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a flatbuffer" * 8)
    with pytest.raises(UserError, match="not a loadable TFLite model"):
        litert.load(bad)
