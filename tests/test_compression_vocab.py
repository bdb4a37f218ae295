"""Vocabulary pruning: the rewritten tokenizer gives the original's tokens on the text it
was pruned for, the model gives the same logits, and a vocabulary that leaves the test
split mostly [UNK] is refused (a high OOV rate is a warning with the rate)."""

import copy

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pocketbert.converters.compress_configs import FactorizeEmbeddings, PruneVocabulary
from pocketbert.converters.compression import plan_vocabulary
from pocketbert.converters.methods import apply_method
from pocketbert.converters.model import load_model
from pocketbert.converters.vocab_prune import kept_ids, prune_tokenizer
from pocketbert.core.errors import UserError
from pocketbert.core.texts import BUILTIN

SEEN = BUILTIN[:20]


@pytest.fixture
def bert(tiny_models):
    loaded = load_model(tiny_models["bert"])
    return loaded.module.model.eval(), loaded.tokenizer


def test_pruned_tokenizer_gives_the_original_tokens_on_in_vocabulary_text(bert, tmp_path):
    _, tok = bert
    keep = kept_ids(tok, SEEN)
    assert len(keep) < len(tok)
    pruned = prune_tokenizer(tok, keep, tmp_path)
    pruned.save_pretrained(tmp_path / "tok")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    for t in (pruned, reloaded):
        assert len(t) == len(keep)
        for text in SEEN:
            old, new = tok(text)["input_ids"], t(text)["input_ids"]
            assert [keep[i] for i in new] == old  # same tokens, ids renumbered in order
            assert t.convert_ids_to_tokens(new) == tok.convert_ids_to_tokens(old)
        assert t.pad_token_id == 0 and t.cls_token_id == keep.index(tok.cls_token_id)
    lines = (tmp_path / "tok" / "vocab.txt").read_text().splitlines()
    assert lines == tok.convert_ids_to_tokens(list(keep))  # vocab.txt for apps matches


def test_unseen_words_split_into_kept_pieces_or_unk(bert, tmp_path):
    _, tok = bert
    keep = kept_ids(tok, SEEN[:2])
    pruned = prune_tokenizer(tok, keep, tmp_path)
    unseen = BUILTIN[-1]
    pieces = pruned.tokenize(unseen)
    assert pieces and all(p in pruned.get_vocab() for p in pieces)
    bare = prune_tokenizer(tok, kept_ids(tok, SEEN[:2], characters=False), tmp_path)
    assert bare.unk_token in bare.tokenize("zebra xylophone")


def test_vocabulary_pruned_model_gives_the_same_logits_and_reloads(bert, tmp_path):
    model, tok = bert
    keep = kept_ids(tok, SEEN)
    for start in (model, apply_method(copy.deepcopy(model), FactorizeEmbeddings(size=8))):
        pruned = apply_method(copy.deepcopy(start), PruneVocabulary(keep=keep))
        assert pruned.config.vocab_size == len(keep)
        new_tok = prune_tokenizer(tok, keep, tmp_path)
        with torch.no_grad():
            before = start(**tok(SEEN, padding=True, return_tensors="pt")).logits
            after = pruned(**new_tok(SEEN, padding=True, return_tensors="pt")).logits
        assert torch.allclose(before, after, atol=1e-6)
    plain = tmp_path / "plain"
    apply_method(copy.deepcopy(model), PruneVocabulary(keep=keep)).save_pretrained(plain)
    back = AutoModelForSequenceClassification.from_pretrained(plain)  # an ordinary model
    assert back.get_input_embeddings().num_embeddings == len(keep)


def test_a_vocabulary_that_leaves_the_test_split_mostly_unk_is_refused(bert):
    _, tok = bert
    strict = (PruneVocabulary(min_count=1000, characters=False),)
    with pytest.raises(UserError, match=r"into \[UNK\]") as err:
        plan_vocabulary(strict, tok, SEEN, BUILTIN[20:40])
    assert "\n" not in str(err.value) and "%" in str(err.value)
    plan = plan_vocabulary((PruneVocabulary(),), tok, SEEN[:5], BUILTIN[20:40])
    assert plan.figures["test_oov_rate"] > 0.02 and "outside the pruned vocabulary" in plan.warning
    assert f"{plan.figures['test_oov_rate']:.1%}" in plan.warning
    full = plan_vocabulary((PruneVocabulary(),), tok, BUILTIN, BUILTIN[20:40])
    assert full.figures["test_oov_rate"] == 0 and full.warning is None
