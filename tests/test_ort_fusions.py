"""pocketbert's onnxruntime sessions keep Add + LayerNormalization unfused, with the same outputs."""

import numpy as np
import onnx
import onnxruntime as ort

from pocketbert import runtimes
from pocketbert.runtimes.ort import DISABLED_FUSIONS, open_session, session_options


def _optimized_ops(path, tmp_path, disabled) -> list[str]:
    opts = session_options(1, disabled)
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    open_session(path, opts)
    return [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]


def _feeds(session, seq=9):
    ids = np.random.default_rng(0).integers(5, 60, (1, seq)).astype(np.int64)
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
    }


def test_sessions_run_layer_norms_unfused_and_match_the_default(fp32_bundle, tmp_path, monkeypatch):
    model = fp32_bundle("onnx", "int8-dynamic") / "model.onnx"
    fused = _optimized_ops(model, tmp_path, ())
    assert "SkipLayerNormalization" in fused  # what onnxruntime would do by default
    assert "SkipLayerNormFusion" in DISABLED_FUSIONS
    ours = _optimized_ops(model, tmp_path, DISABLED_FUSIONS)
    assert "SkipLayerNormalization" not in ours
    assert ours.count("LayerNormalization") == fused.count("SkipLayerNormalization") + fused.count(
        "LayerNormalization"
    )

    from pocketbert.runtimes import ort as ours_module

    def saving(threads=None, disabled=DISABLED_FUSIONS):  # what runtimes.load runs, saved
        opts = session_options(threads, disabled)
        opts.optimized_model_filepath = str(tmp_path / "loaded.onnx")
        return opts

    monkeypatch.setattr(ours_module, "session_options", saving)
    session = runtimes.load(model, threads=1)
    loaded = [n.op_type for n in onnx.load(str(tmp_path / "loaded.onnx")).graph.node]
    assert loaded == ours
    default = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = {i.name for i in default.get_inputs()}
    feeds = {k: v for k, v in _feeds(default).items() if k in names}
    [want] = default.run(None, feeds)
    [got] = session.run(feeds)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
