"""LoRA fine-tuning of a teacher: only adapters and the head train, the saved classifier is an
ordinary transformers model with the adapters merged in, and bad settings are refused
before anything is written."""

import json

import pytest
import torch
from safetensors.torch import load_file

from pocketbert.cli import main
from pocketbert.converters.finetune import run_finetune
from pocketbert.converters.lora import LoraSettings, with_lora
from pocketbert.converters.train_loop import TrainConfig
from pocketbert.core.errors import UserError

FAST = TrainConfig(epochs=1, batch_size=16, max_seq_len=32, checkpoint_every=0, lr=5e-3)


def _classifier(path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)


def test_only_the_adapters_and_the_head_train(tiny_embedder):
    model = _classifier(tiny_embedder)
    wrapped, record = with_lora(model, LoraSettings(2, ("query", "value")))
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    assert record["layers"] == 2 * model.config.num_hidden_layers
    assert record["trainable_params"] == sum(
        p.numel() for p in wrapped.parameters() if p.requires_grad
    )
    assert record["trainable_params"] < record["total_params"] / 2


def test_lora_finetune_saves_a_plain_merged_classifier(tiny_embedder, reviews_csv, tmp_path):
    out = tmp_path / "t"
    summary = run_finetune(tiny_embedder, reviews_csv, out, FAST, lora=LoraSettings(4), quiet=True)
    assert summary["lora"]["rank"] == 4 and summary["lora"]["alpha"] == 8
    assert summary["defaults"]["lr"] == FAST.lr
    weights = load_file(out / "model.safetensors")
    assert not any("lora" in k or "base_model" in k for k in weights)
    base = load_file(tiny_embedder / "model.safetensors")
    key = next(k for k in weights if k.endswith("layer.0.attention.self.query.weight"))
    base_key = next(k for k in base if k.endswith("layer.0.attention.self.query.weight"))
    assert not torch.equal(weights[key], base[base_key])  # the adapter was merged in
    model = _classifier(out)  # a plain transformers load, no peft
    assert type(model).__name__ == "BertForSequenceClassification"
    assert json.loads((out / "summary.json").read_text())["lora"]["layers"] > 0


def test_lora_learning_rate_comes_from_its_own_rule(tiny_embedder, reviews_csv, tmp_path):
    from dataclasses import replace

    from pocketbert.core import defaults

    cfg = replace(FAST, lr=None)
    summary = run_finetune(tiny_embedder, reviews_csv, tmp_path / "t", cfg, lora=LoraSettings(2))
    assert summary["defaults"]["lr"] == defaults.LORA_LR
    assert "LoRA" in summary["defaults"]["reason"]


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--lora", "0"], "LoRA rank 0"),
        (["--lora", "4096"], "not below the smallest targeted layer"),
        (["--lora", "2", "--lora-targets", "qkv"], "match no Linear"),
    ],
)
def test_bad_lora_settings_are_one_line_and_write_nothing(
    tiny_embedder, reviews_csv, tmp_path, capsys, argv, says
):
    out = tmp_path / "t"
    code = main(["finetune", str(tiny_embedder), "--data", str(reviews_csv), "-o", str(out), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and says in err[-1] and not out.exists()


def test_settings_are_checked_without_torch_work():
    with pytest.raises(UserError, match="targets are empty"):
        LoraSettings(2, "")
