"""The rule that picks training settings from the data: explicit values win, the settings
move the right way with the data's size and classes, and the transfer set it asks for is
built, labelled by the teacher and seeded."""

import pytest

from pocketbert.core import defaults
from pocketbert.core.data import LabelledData
from pocketbert.training import DistillOptions, FinetuneOptions

SIZES = [60, 200, 1000, 5000, 12000, 40000, 200000]


def _data(counts: dict[str, int]) -> LabelledData:
    train = [(f"text {lab} {i}", lab) for lab, n in counts.items() for i in range(n)]
    return LabelledData(train, train[:4], train[:4], sorted(counts), "mem", "0")


def test_explicit_values_always_win_over_the_rule():
    got = defaults.choose_distill(
        [500, 500], 32, epochs=7, lr=3e-5, stage1_epochs=3, augment=2, staged=True
    )
    assert (got.epochs, got.lr, got.stage1_epochs, got.augment) == (7, 3e-5, 3, 2)
    assert got.chosen == ()
    assert "none: all given" in got.line()
    fine = defaults.choose_finetune([10, 10], 32, epochs=1, lr=1e-3)
    assert (fine.epochs, fine.lr, fine.chosen) == (1, 1e-3, ())


def test_transfer_set_shrinks_as_the_data_grows_and_stays_capped():
    variants = [defaults.transfer_variants(n) for n in SIZES]
    assert variants == sorted(variants, reverse=True) and variants[0] == defaults.MAX_VARIANTS
    assert variants[-1] == 0  # enough labelled text: no augmentation
    for n, v in zip(SIZES, variants, strict=True):
        assert v <= defaults.MAX_VARIANTS
        if v:  # the training text and its variants never pass the cap
            assert n * (1 + v) <= defaults.TRANSFER_SENTENCES


@pytest.mark.parametrize("classes", [2, 3, 6])
def test_epochs_fall_with_size_and_the_logit_stage_gets_its_steps(classes):
    # with the text held to the labelled rows, more data means fewer epochs
    fixed = [defaults.choose_distill([n // classes] * classes, 32, transfer=False) for n in SIZES]
    epochs = [p.epochs for p in fixed]
    assert epochs == sorted(epochs, reverse=True) and epochs[0] > epochs[-1]
    target = defaults.DISTILL_STEPS * defaults.class_factor(classes)
    for n in SIZES:
        p = defaults.choose_distill([n // classes] * classes, 32)
        assert p.stage1_epochs == 1 and p.lr == defaults.DISTILL_LR
        logit = p.epochs - p.stage1_epochs
        assert defaults.MIN_EPOCHS <= logit <= defaults.MAX_EPOCHS
        per_epoch = (n // classes * classes) * (1 + p.augment) // 32
        if defaults.MIN_EPOCHS < logit < defaults.MAX_EPOCHS:  # the bounds do not bind
            assert logit * per_epoch >= target > (logit - 1) * per_epoch
    fine = [defaults.choose_finetune([n // classes] * classes, 32).epochs for n in SIZES]
    assert fine == sorted(fine, reverse=True) and fine[0] > fine[-1] >= defaults.MIN_EPOCHS


def test_more_classes_get_at_least_as_many_steps_and_are_scored_by_macro_f1():
    for n in (800, 3000, 9000):
        two = defaults.choose_distill([n // 2] * 2, 32)
        four = defaults.choose_distill([n // 4] * 4, 32)
        assert four.epochs >= two.epochs and four.augment == two.augment
        assert (
            defaults.choose_finetune([n // 4] * 4, 32).epochs
            >= defaults.choose_finetune([n // 2] * 2, 32).epochs
        )
    assert (
        defaults.choose_distill([4000, 4000], 32).epochs
        < defaults.choose_distill([2000] * 4, 32).epochs
    )
    assert defaults.select_by([500, 500]) == "accuracy"
    assert defaults.select_by([500, 500, 500]) == "macro_f1"
    assert defaults.select_by([900, 100]) == "macro_f1"  # imbalanced binary


def test_a_one_stage_loss_or_unlabelled_text_changes_what_the_rule_picks():
    one = defaults.choose_distill([300, 300], 32, staged=False)
    assert one.stage1_epochs is None and "stage1_epochs" not in one.chosen
    assert "hidden states" not in one.line()
    assert defaults.choose_distill([300, 300], 32, transfer=False).augment == 0
    given = defaults.choose_distill([300, 300], 32, epochs=1, staged=None)
    assert given.stage1_epochs is None  # one epoch cannot hold two stages


def test_resolve_fills_only_what_is_left_out(tmp_path):
    from pocketbert.converters.distill import DistillConfig, resolve
    from pocketbert.converters.distill_loss import LossWeights
    from pocketbert.converters.train_loop import TrainConfig

    data = _data({"a": 600, "b": 600, "c": 300})
    cfg, chosen = resolve(DistillConfig(), data)
    assert cfg.train.epochs == chosen.epochs and cfg.train.lr == defaults.DISTILL_LR
    assert cfg.augment == defaults.transfer_variants(1500) and cfg.stage1_epochs == 1
    assert cfg.train.select_by == "macro_f1"
    assert len(cfg.schedule()) == cfg.train.epochs and cfg.schedule()[0].ce == 0
    mine = DistillConfig(
        train=TrainConfig(epochs=2, lr=1e-3, select_by="accuracy"), augment=0, stage1_epochs=1
    )
    cfg, chosen = resolve(mine, data)
    assert (cfg.train.epochs, cfg.train.lr, cfg.augment, cfg.train.select_by) == (
        2,
        1e-3,
        0,
        "accuracy",
    )
    assert chosen.chosen == ()
    (tmp_path / "u.txt").write_text("some text\n")
    cfg, _ = resolve(DistillConfig(unlabelled=str(tmp_path / "u.txt")), data)
    assert cfg.augment == 0  # the user's text is the transfer set
    cfg, _ = resolve(DistillConfig(loss=LossWeights(ce=1.0)), data)
    assert cfg.augment == 0 and cfg.stage1_epochs is None  # nothing for the teacher to label


def test_options_leave_the_rule_its_settings_and_pass_explicit_ones():
    config = DistillOptions().distill_config()
    assert config.train.epochs is None and config.train.lr is None and config.augment is None
    config = DistillOptions(epochs=4, lr=1e-4, augment=0, patience=1).distill_config()
    assert (config.train.epochs, config.train.lr, config.augment) == (4, 1e-4, 0)
    assert config.train.patience == 1
    assert FinetuneOptions().train_config().epochs is None
    from pocketbert.core.errors import UserError

    with pytest.raises(UserError, match="patience must be a whole number"):
        FinetuneOptions(patience=-1)


def test_the_rule_sizes_the_transfer_set_and_the_teacher_labels_it_seeded(
    tiny_models, reviews_csv, tmp_path
):
    import torch

    from pocketbert.converters.distill import DistillConfig, _extra_texts, load_classifier
    from pocketbert.converters.distill_loss import IGNORE, LossWeights
    from pocketbert.converters.teacher_cache import teacher_logits
    from pocketbert.converters.train_loop import TrainConfig, encode
    from pocketbert.core.data import load_data

    fast = TrainConfig(epochs=1, batch_size=32, max_seq_len=32, checkpoint_every=0)
    cfg = DistillConfig(loss=LossWeights(ce=0.0, kd=1.0), train=fast, cache_dir=str(tmp_path / "c"))
    from pocketbert.converters.distill import run_distill

    summary = run_distill(tiny_models["bert"], reviews_csv, tmp_path / "s", cfg, quiet=True)
    train_rows = summary["examples"]["train"]
    variants = defaults.transfer_variants(train_rows)
    assert variants > 0 and summary["defaults"]["augment"] == variants
    assert "augment" in summary["defaults"]["chosen_by_rule"]
    assert summary["examples"]["unlabelled"] == variants * train_rows

    teacher, tokenizer, labels, _ = load_classifier(tiny_models["bert"])
    texts, ids = load_data(reviews_csv, teacher_labels=labels).ids("train")
    say = []
    resolved = DistillConfig(loss=cfg.loss, train=fast, augment=variants)
    extra = _extra_texts(resolved, [], texts, tokenizer, teacher, say.append)
    assert len(extra) == variants * len(texts) and extra != [
        t for t in texts for _ in range(variants)
    ]
    again = _extra_texts(resolved, [], texts, tokenizer, teacher, say.append)
    other_seed = DistillConfig(
        loss=cfg.loss, train=TrainConfig(epochs=1, seed=1, max_seq_len=32), augment=variants
    )
    assert extra == again and extra != _extra_texts(
        other_seed, [], texts, tokenizer, teacher, say.append
    )
    # the cache holds the teacher's own logits for the training text and every variant
    (cached,) = (tmp_path / "c").iterdir()
    expected = teacher_logits(
        teacher, encode(tokenizer, texts + extra, ids + [IGNORE] * len(extra), 32)
    )
    assert torch.allclose(torch.load(cached), expected, atol=1e-5)
