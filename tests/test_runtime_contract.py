"""One contract, run against every registered runtime (a new runtime without a file here fails).

Each runtime loads the fp32 export of the tiny BERT classifier (max 32 tokens) in its own
format; the files are built once per session (the ``fp32_bundle`` fixture).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pocketbert import runtimes
from pocketbert.core.errors import UserError

FORMATS = {"onnxruntime": "onnx", "litert": "tflite", "executorch": "executorch", "fpga": "fpga"}
PRECISION = {"fpga": "int8-static"}  # an integer-only program has no fp32
MAX = 32  # the bundles' max_seq_len


@pytest.fixture(scope="module", params=sorted(runtimes.RUNTIMES))
def runtime(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def model_file(runtime, fp32_bundle) -> Path:
    if runtime not in FORMATS:
        pytest.fail(f"runtime '{runtime}' has no export format in the contract suite")
    bundle = fp32_bundle(FORMATS[runtime], PRECISION.get(runtime, "fp32"))
    return bundle / json.loads((bundle / "manifest.json").read_text())["model_file"]


@pytest.fixture(scope="module")
def sessions(model_file):
    """One session per thread count, loaded once per runtime."""
    return {n: runtimes.load(model_file, threads=n) for n in (1, 2)}


def _feed(length: int, seed: int = 0, pad_to: int | None = None, dtype=np.int64) -> dict:
    ids = np.zeros((1, pad_to or length), dtype)
    ids[0, :length] = np.random.default_rng(seed).integers(5, 90, length)
    mask = (ids != 0).astype(dtype)
    return {"input_ids": ids, "attention_mask": mask}


def _run(session, feed) -> np.ndarray:
    out = session.run(feed)[0]
    assert out.dtype == np.float32 and np.isfinite(out).all()
    return out


def test_every_registered_runtime_is_in_the_contract_suite():
    assert sorted(FORMATS) == sorted(runtimes.RUNTIMES)


@pytest.mark.parametrize("length", [3, 11, MAX])
def test_runtime_output_at_any_length_equals_output_padded_to_max(sessions, length):
    natural = _run(sessions[1], _feed(length, seed=length))
    padded = _run(sessions[1], _feed(length, seed=length, pad_to=MAX))
    assert natural.shape == (1, 2)
    np.testing.assert_allclose(natural, padded, rtol=0, atol=1e-5)


def test_runtime_batch_of_two_equals_rows_run_alone(sessions):
    a, b = _feed(7, seed=1, pad_to=MAX), _feed(MAX, seed=2)
    batch = {n: np.concatenate([a[n], b[n]]) for n in a}
    try:
        both = _run(sessions[1], batch)
    except UserError as exc:  # a format that cannot take a batch says so
        assert "batch" in str(exc)
        return
    rows = np.concatenate([_run(sessions[1], a), _run(sessions[1], b)])
    np.testing.assert_allclose(both, rows, rtol=0, atol=1e-5)


def test_runtime_gives_the_same_output_for_int32_and_int64_inputs(sessions):
    as64 = _run(sessions[1], _feed(9, seed=3, dtype=np.int64))
    as32 = _run(sessions[1], _feed(9, seed=3, dtype=np.int32))
    np.testing.assert_array_equal(as64, as32)


def test_runtime_gives_the_same_output_with_one_and_two_threads(sessions):
    feed = _feed(MAX, seed=4)
    np.testing.assert_allclose(_run(sessions[1], feed), _run(sessions[2], feed), atol=1e-5)


def test_runtime_repeated_runs_give_identical_outputs(sessions):
    feed = _feed(13, seed=5)
    first = _run(sessions[2], feed)
    for _ in range(3):
        np.testing.assert_array_equal(_run(sessions[2], feed), first)


def test_runtime_refuses_wrong_input_name_with_user_error(sessions):
    feed = _feed(5)
    with pytest.raises(UserError, match="input_ids"):
        sessions[1].run({"ids": feed["input_ids"], "attention_mask": feed["attention_mask"]})


def test_runtime_refuses_wrong_rank_with_user_error(sessions):
    feed = {n: a[None] for n, a in _feed(5).items()}  # [1, 1, 5]
    with pytest.raises(UserError, match="2-D"):
        sessions[1].run(feed)


@pytest.mark.parametrize("threads", [0, -1, 100000])
def test_runtime_load_refuses_thread_count_when_out_of_range(model_file, threads):
    with pytest.raises(UserError, match=f"threads {threads} is out of range; give 1 to"):
        runtimes.load(model_file, threads=threads)


@pytest.mark.parametrize("damage", ["empty", "junk", "truncated"])
def test_runtime_load_refuses_file_that_is_not_a_model(model_file, tmp_path, damage):
    data = model_file.read_bytes()
    broken = {"empty": b"", "junk": b"not a model at all" * 4, "truncated": data[: len(data) // 3]}
    bad = tmp_path / model_file.name
    bad.write_bytes(broken[damage])
    with pytest.raises(UserError, match=rf"'{bad}' is not a loadable \w+ model"):
        runtimes.load(bad)
