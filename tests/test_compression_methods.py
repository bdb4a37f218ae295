"""Compression methods on tiny models: shapes shrink as configured, the function is kept
where the method is exact, the model reloads, and bad input is one clear line."""

import copy

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from pocketbert.converters.compress_configs import (
    FactorizeEmbeddings,
    LowRank,
    PruneStructure,
    PruneVocabulary,
)
from pocketbert.converters.low_rank import FactorizedEmbedding, LowRankLinear, energy_rank
from pocketbert.converters.methods import apply_method
from pocketbert.converters.model import load_model
from pocketbert.core.errors import UserError
from pocketbert.core.texts import BUILTIN


def _loaded(tiny_models, arch):
    loaded = load_model(tiny_models[arch])
    return loaded.module.model, loaded.tokenizer


def _logits(model, enc):
    with torch.no_grad():
        return model.eval()(**enc).logits


def _batches(tok, n=4):
    return [
        {
            **tok(BUILTIN[i : i + 8], padding=True, return_tensors="pt"),
            "labels": torch.tensor([j % 2 for j in range(8)]),
        }
        for i in range(0, 8 * n, 8)
    ]


@pytest.mark.parametrize("arch", ["bert", "mobilebert"])
def test_structured_pruning_shrinks_heads_and_ffn_and_reloads_with_from_pretrained(
    arch, tiny_models, tmp_path
):
    model, tok = _loaded(tiny_models, arch)
    before = model.config.intermediate_size
    pruned = apply_method(
        copy.deepcopy(model), PruneStructure(heads=0.5, neurons=0.5, batches=_batches(tok))
    )
    c = pruned.config
    assert c.intermediate_size == before // 2
    assert all(len(h) == 1 for h in c.pruned_heads.values()) and len(c.pruned_heads) == 2
    layer = pruned.base_model.encoder.layer[0]
    assert layer.intermediate.dense.out_features == before // 2
    assert layer.attention.self.num_attention_heads == c.num_attention_heads - 1
    pruned.save_pretrained(tmp_path)  # an ordinary transformers model: plain from_pretrained
    back = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    enc = tok(BUILTIN[:8], padding=True, return_tensors="pt")
    assert torch.allclose(_logits(back, enc), _logits(pruned, enc), atol=1e-6)


def test_pruning_keeps_the_most_important_heads(tiny_models):
    """A head whose output is zeroed has no effect on the loss: it is the one removed."""
    model, tok = _loaded(tiny_models, "bert")
    attn = model.bert.encoder.layer[0].attention
    size = attn.self.attention_head_size
    with torch.no_grad():
        attn.output.dense.weight[:, size : 2 * size] = 0  # head 1 of layer 0 is dead
    pruned = apply_method(model, PruneStructure(heads=0.5, batches=_batches(tok)))
    assert pruned.config.pruned_heads[0] == [1]


def test_low_rank_at_full_rank_keeps_the_function_and_reloads(tiny_models, tmp_path):
    model, tok = _loaded(tiny_models, "bert")
    enc = tok(BUILTIN[:8], padding=True, return_tensors="pt")
    full = apply_method(copy.deepcopy(model), LowRank(rank=32))  # min(32, 64): exact
    assert torch.allclose(_logits(full, enc), _logits(model, enc), atol=1e-4)
    small = apply_method(copy.deepcopy(model), LowRank(rank=4, targets=("ffn", "attention")))
    pairs = [m for m in small.modules() if isinstance(m, LowRankLinear)]
    assert len(pairs) == 2 * (2 + 4) and {p.rank for p in pairs} == {4}
    dense = [n for n, m in small.bert.encoder.named_modules() if type(m) is torch.nn.Linear]
    assert all(n.endswith((".first", ".second")) for n in dense)  # only the pairs' own halves
    small.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    back = load_model(tmp_path).module.model
    assert isinstance(back.bert.encoder.layer[1].intermediate.dense, LowRankLinear)
    assert torch.allclose(_logits(back, enc), _logits(small, enc), atol=1e-6)


def test_energy_picks_the_smallest_rank_keeping_that_energy():
    weight = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.5]))  # energies 9, 4, 1, .25 of 14.25
    assert energy_rank(weight, 0.6) == 1 and energy_rank(weight, 0.9) == 2
    assert energy_rank(weight, 0.99) == 4


@pytest.mark.parametrize("arch", ["bert", "squeezebert", "mobilebert"])
def test_factorized_embeddings_start_from_the_svd_and_reload(arch, tiny_models, tmp_path):
    model, tok = _loaded(tiny_models, arch)
    enc = tok(BUILTIN[:8], padding=True, return_tensors="pt")
    vocab, width = model.get_input_embeddings().weight.shape
    table = model.get_input_embeddings().weight.detach().clone()
    small = apply_method(copy.deepcopy(model), FactorizeEmbeddings(size=8))
    params = sum(p.numel() for p in small.parameters())
    assert sum(p.numel() for p in model.parameters()) - params >= vocab * (width - 8) - 8 * 64 * 3
    if arch != "mobilebert":  # MobileBERT folds the projection into its own transformation
        assert isinstance(small.get_input_embeddings(), FactorizedEmbedding)
        s = torch.linalg.svdvals(table.double())
        dense = small.get_input_embeddings().weight.detach().double()
        error = (table.double() - dense).norm().item()
        assert error == pytest.approx(s[8:].norm().item(), rel=1e-3)  # the best rank-8 table
    else:
        assert small.config.embedding_size == 8  # still an ordinary MobileBERT
    small.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    back = load_model(tmp_path).module.model
    assert torch.allclose(_logits(back, enc), _logits(small, enc), atol=1e-6)


def test_bad_ratios_ranks_and_sizes_are_one_clear_line(tiny_models):
    model, tok = _loaded(tiny_models, "bert")  # 2 heads, FFN 64, hidden 32
    cases = [
        (lambda: PruneStructure(heads=1.0), "below 1"),
        (lambda: PruneStructure(), "needs a heads or neurons ratio"),
        (lambda: apply_method(model, PruneStructure(heads=0.75, batches=_batches(tok))), "removes every one of the 2 heads"),
        (lambda: apply_method(model, LowRank(rank=40)), "rank 40 is larger than layer"),
        (lambda: LowRank(rank=4, energy=0.5), "a rank (e.g. 64) or an energy"),
        (lambda: LowRank(rank=4, targets=("conv",)), "choose from: attention, ffn"),
        (lambda: apply_method(model, FactorizeEmbeddings(size=32)), "not below the embedding width 32"),
        (lambda: PruneVocabulary(min_count=0), "give a whole number >= 1"),
    ]  # fmt: skip
    for make, words in cases:
        with pytest.raises(UserError) as err:
            make()
        assert words in str(err.value) and "\n" not in str(err.value)
    assert model.config.pruned_heads == {}  # a refused pruning changed nothing


def test_structured_pruning_refuses_squeezebert_and_low_rank_finds_no_linear(tiny_models):
    model, tok = _loaded(tiny_models, "squeezebert")
    with pytest.raises(UserError, match="supports bert, mobilebert"):
        apply_method(model, PruneStructure(heads=0.5, batches=_batches(tok)))
    with pytest.raises(UserError, match="found no Linear"):
        apply_method(model, LowRank(rank=4))
