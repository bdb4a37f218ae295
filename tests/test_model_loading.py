"""Loading a model for export: bad model input is refused in one line before torch loads,
and a sentence-transformers model is pooled and normalised as its own modules say."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pocketbert.converters.architectures import Pooling, preflight
from pocketbert.core.errors import UserError

# Runs pocketbert.cli.main on each case in a process where torch cannot be imported.
_TORCH_FREE = """
import contextlib, io, json, sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
from pocketbert.cli import main
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results[name] = {"code": code, "err": err.getvalue()}
print(json.dumps(results))
"""


def _copy(model, tmp_path, name):
    return shutil.copytree(model, tmp_path / name)


def _no_tokenizer(tiny, tmp):
    model = _copy(tiny["bert"], tmp, "no-tokenizer")
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        (model / f).unlink()
    return model, []


def _empty_config(tiny, tmp):
    model = _copy(tiny["bert"], tmp, "mpt-7b")  # a folder name that once decided the answer
    (model / "config.json").write_text("{}")
    return model, []


def _deberta(tiny, tmp):
    model = _copy(tiny["bert"], tmp, "deberta")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": "deberta-v2"}))
    return model, []


def _truncated_weights(tiny, tmp):
    model = _copy(tiny["bert"], tmp, "truncated")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return model, []


def _no_weights(tiny, tmp):
    model = _copy(tiny["bert"], tmp, "no-weights")
    (model / "model.safetensors").unlink()
    return model, []


def _encoder_as_classifier(tiny, tmp):
    model = _copy(tiny["bert"], tmp, "encoder")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "architectures": ["BertModel"]}))
    return model, ["--task", "classification"]


CASES = {
    "missing directory": (lambda tiny, tmp: (tmp / "nope", []), "no config.json"),
    "config without model_type": (_empty_config, "has no model_type in config.json"),
    "unsupported architecture": (_deberta, "'deberta-v2' is not supported (its relative attention"),
    "no tokenizer files": (_no_tokenizer, "has no tokenizer"),
    "no weights": (_no_weights, "has no weights"),
    "truncated safetensors": (_truncated_weights, "model.safetensors is truncated"),
    "max-seq-len past positions": (
        lambda tiny, tmp: (tiny["bert"], ["--max-seq-len", "1024"]),
        "--max-seq-len 1024 is longer than",
    ),
    "classification without a head": (_encoder_as_classifier, "has no classification head"),
    "unknown task": (lambda tiny, tmp: (tiny["bert"], ["--task", "ner"]), "unknown task 'ner'"),
}


@pytest.fixture(scope="module")
def torch_free_runs(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-models")
    argvs = {}
    for name, (make, _) in CASES.items():
        model, extra = make(tiny_models, tmp)
        out = tmp / f"out-{len(argvs)}"
        argvs[name] = ["export", str(model), "-o", str(out), *extra]
    proc = subprocess.run(
        [sys.executable, "-c", _TORCH_FREE, json.dumps(argvs)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), argvs


@pytest.mark.parametrize("case", CASES)
def test_export_refuses_bad_model_in_one_line_without_importing_torch(case, torch_free_runs):
    results, argvs = torch_free_runs
    code, err = results[case]["code"], results[case]["err"]
    assert code == 2, err
    assert "Traceback" not in err and "halted" not in err, err  # "import of torch halted"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pocketbert: error: "), err
    assert CASES[case][1] in lines[0], err
    out = argvs[case][argvs[case].index("-o") + 1]
    assert not Path(out).exists()


def test_roberta_position_limit_counts_from_the_padding_index(tiny_models):
    model = tiny_models["roberta"]  # 514 positions, pad id 1: position ids start at 2
    assert preflight(model, max_seq_len=512).position_limit == 512
    with pytest.raises(UserError, match="give at most 512"):
        preflight(model, max_seq_len=513)


def test_config_without_model_type_is_not_guessed_from_the_folder_name(tmp_path):
    model = tmp_path / "bert-base-uncased"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["BertModel"]}')
    with pytest.raises(UserError, match="has no model_type"):
        preflight(model)


def _sentence_transformer(embedder, tmp_path, pooling: dict, modules=("Pooling", "Normalize")):
    model = shutil.copytree(embedder, tmp_path / "st")
    entries = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
    ]
    for i, kind in enumerate(modules, 1):
        path = f"{i}_{kind}"
        entries.append(
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        )
        if kind == "Pooling":
            (model / path).mkdir()
            (model / path / "config.json").write_text(json.dumps(pooling))
    (model / "modules.json").write_text(json.dumps(entries))
    return model


def _modes(**on):
    names = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
    return {"word_embedding_dimension": 32, **{f"pooling_mode_{n}": n in on for n in names}}


def test_embedding_bundle_is_pooled_and_normalised_as_modules_json_says(tiny_embedder, tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    import pocketbert
    from pocketbert.converters.model import load_model

    model = _sentence_transformer(tiny_embedder, tmp_path, _modes(cls_token=1, max_tokens=1))
    loaded = load_model(model)
    assert loaded.pooling == Pooling(("cls", "max"), normalize=True, source="modules.json")
    out = tmp_path / "bundle"
    pocketbert.export(model, out, format="onnx", precision="fp32", quiet=True)
    vec = pocketbert.load(out).predict(["the garden looks wonderful"])
    tok = AutoTokenizer.from_pretrained(model)
    enc = tok(["the garden looks wonderful"], return_tensors="pt")
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(model).eval()(**enc).last_hidden_state
    expected = torch.cat([hidden[:, 0], hidden.max(1).values], dim=-1)
    expected = torch.nn.functional.normalize(expected, dim=-1)
    assert vec.shape == (1, 64)
    np.testing.assert_allclose(vec, expected.numpy(), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-5)
    recorded = json.loads((out / "manifest.json").read_text())["pooling"]
    assert recorded == {"modes": ["cls", "max"], "normalize": True, "source": "modules.json"}


def test_embedding_without_modules_json_stays_mean_pooled_unnormalised(tiny_embedder):
    assert preflight(tiny_embedder).pooling == Pooling(("mean",), normalize=False)


@pytest.mark.parametrize(
    ("pooling", "modules", "says"),
    [
        (_modes(mean_tokens=1), ("Pooling", "Dense"), "module(s) Dense"),
        ({"pooling_mode_weightedmean_tokens": True}, ("Pooling",), "pools with weightedmean"),
    ],
)
def test_embedding_model_with_unexportable_sentence_transformers_modules_is_refused(
    pooling, modules, says, tiny_embedder, tmp_path
):
    model = _sentence_transformer(tiny_embedder, tmp_path, pooling, modules)
    with pytest.raises(UserError, match=re.escape(says)):
        preflight(model)


def test_roberta_export_module_matches_transformers_on_a_padded_batch(tiny_models):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pocketbert.converters.model import load_model

    source = tiny_models["roberta"]
    module = load_model(source).module  # position ids from its constant table
    assert module.position_ids[0, :3].tolist() == [2, 3, 4]  # pad id 1, then + 1
    reference = AutoModelForSequenceClassification.from_pretrained(source).eval()
    texts = ["a fine film", "the garden looks wonderful in the evening light"]
    enc = AutoTokenizer.from_pretrained(source)(texts, padding=True, return_tensors="pt")
    assert (enc["input_ids"] == 1).any()  # the short text is padded with RoBERTa's pad id
    with torch.no_grad():
        ours = module(enc["input_ids"], enc["attention_mask"])
        theirs = reference(**enc).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
