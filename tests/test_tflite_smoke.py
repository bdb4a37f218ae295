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
        intermediate_size=64, max_position_embeddings=64, num_labels=3,
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


@pytest.mark.parametrize("model", ["bert", "distilbert", "mobilebert", "squeezebert", "embedder"])
def test_right_padding_with_mask_zero_leaves_output_unchanged(tiny_models, tiny_embedder, model):
    """What length buckets rely on: pad id 0 / mask 0 columns change no logit or mean-pooled
    embedding beyond fp32 noise."""
    from pocketbert.converters.model import load_model

    wrapper = load_model(tiny_embedder if model == "embedder" else tiny_models[model]).module
    feed = _feed(9, 3)
    padded = {n: np.pad(a, ((0, 0), (0, 23))) for n, a in feed.items()}
    with torch.no_grad():
        natural, long = (
            wrapper(*(torch.from_numpy(f[n]) for n in ("input_ids", "attention_mask"))).numpy()
            for f in (feed, padded)
        )
    assert np.abs(natural - long).max() <= 1e-5


@pytest.fixture(scope="module")
def bucketed_file(tiny_bert, tmp_path_factory) -> Path:
    """The tiny BERT as one .tflite with a signature per length bucket (16 and 32)."""
    import litert_torch

    def sample(n: int) -> tuple:
        return tuple(torch.from_numpy(a.astype(np.int32)) for a in _feed(n, n).values())

    path = tmp_path_factory.mktemp("buckets") / "model.tflite"
    converter = litert_torch.signature("seq_16", tiny_bert, sample(16))
    converter.signature("seq_32", tiny_bert, sample(32)).convert().export(str(path))
    return path


def test_litert_bucketed_output_equals_natural_length_output(tiny_bert, bucketed_file):
    session = litert.load(bucketed_file, threads=1)
    assert session.max_seq_len == 32
    for length in (5, 9, 16, 20, 32, 9):
        feed = _feed(length, length)
        with torch.no_grad():
            want = tiny_bert(*(torch.from_numpy(feed[n]) for n in session.input_names)).numpy()
        assert np.abs(session.run(feed)[0] - want).max() <= 1e-5
    assert sorted(session._runners) == [16, 32]  # each bucket prepared once, then reused


def test_litert_runs_padded_feed_in_the_bucket_of_its_attended_tokens(bucketed_file):
    session = litert.load(bucketed_file, threads=1)
    feed = {n: np.pad(a, ((0, 0), (0, 32 - 7))) for n, a in _feed(7, 1).items()}
    np.testing.assert_allclose(session.run(feed)[0], session.run(_feed(7, 1))[0], atol=1e-6)
    assert sorted(session._runners) == [16]  # trailing mask-0 columns were cut, not run


def test_litert_refuses_input_longer_than_the_longest_bucket(bucketed_file):
    with pytest.raises(UserError, match="takes at most 32"):
        litert.load(bucketed_file, threads=1).run(_feed(33, 0))
