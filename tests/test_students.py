"""Student configs: every family builds, is an ordinary transformers model, starts from the
teacher where shapes allow, and (after a short distillation) exports and verifies."""

import pytest
import torch
from random_models import SIZES

from pocketbert.converters.students import (
    FAMILIES,
    StudentSpec,
    build_student,
    describe,
    layer_map,
    student_config,
)
from pocketbert.core.errors import UserError


def _teacher(path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path, attn_implementation="eager")


def _minilm_shaped_config():
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, num_labels=2, **SIZES[("bert", "small")])


@pytest.mark.parametrize("family", FAMILIES)
def test_student_is_an_ordinary_transformers_model(family, tiny_models, tmp_path):
    from transformers import AutoModelForSequenceClassification

    teacher = _teacher(tiny_models["bert"])
    student = build_student(teacher, student_config(teacher.config, StudentSpec(family, "small")))
    assert student.config.model_type == family
    assert student.config.id2label == teacher.config.id2label
    student.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        assert torch.allclose(
            student.eval()(input_ids=ids).logits, again(input_ids=ids).logits, atol=1e-6
        )


@pytest.mark.parametrize("family", ["squeezebert", "mobilebert"])
def test_small_preset_keeps_at_most_a_quarter_of_minilm_layer_params(family):
    config = _minilm_shaped_config()
    teacher = build_student(None, config)  # shapes are what matter here
    student = build_student(None, student_config(config, StudentSpec(family, "small")))
    t, s = describe(teacher), describe(student)
    assert s["transformer_layer_params"] <= t["transformer_layer_params"] / 4
    assert 0 < s["flops_seq128"] < t["flops_seq128"] / 3


def test_knobs_override_the_preset(tiny_models):
    config = _teacher(tiny_models["bert"]).config
    c = student_config(
        config, StudentSpec("mobilebert", layers=3, bottleneck=16, heads=2, ffns=3, no_norm=False)
    )
    assert (c.num_hidden_layers, c.true_hidden_size, c.num_feedforward_networks) == (3, 16, 3)
    assert c.normalization_type == "layer_norm"
    c = student_config(config, StudentSpec("squeezebert", groups=2))
    assert (c.q_groups, c.intermediate_groups, c.output_groups) == (2, 2, 2)
    c = student_config(config, StudentSpec("squeezebert", groups=2, ffn_groups=1))
    assert (c.q_groups, c.k_groups, c.v_groups) == (2, 2, 2)
    assert (c.post_attention_groups, c.intermediate_groups, c.output_groups) == (1, 1, 1)


def test_students_start_from_the_teacher_where_shapes_allow(tiny_models):
    teacher = _teacher(tiny_models["bert"])
    picks = layer_map(1, teacher.config.num_hidden_layers)
    bert = build_student(teacher, student_config(teacher.config, StudentSpec("bert", layers=1)))
    t_layer = teacher.bert.encoder.layer[picks[0]]
    assert torch.equal(bert.bert.encoder.layer[0].output.dense.weight, t_layer.output.dense.weight)
    assert torch.equal(bert.classifier.weight, teacher.classifier.weight)
    sq = build_student(
        teacher, student_config(teacher.config, StudentSpec("squeezebert", layers=1, groups=2))
    )
    conv, dense = sq.transformer.encoder.layers[0].attention.query, t_layer.attention.self.query
    half = dense.weight.shape[0] // 2
    assert torch.equal(conv.weight[:half, :, 0], dense.weight[:half, :half])
    assert torch.equal(conv.weight[half:, :, 0], dense.weight[half:, half:])
    assert torch.equal(
        sq.transformer.embeddings.word_embeddings.weight,
        teacher.bert.embeddings.word_embeddings.weight,
    )
    mb = build_student(teacher, student_config(teacher.config, StudentSpec("mobilebert", layers=1)))
    emb = mb.mobilebert.embeddings
    ids = torch.tensor([[5, 6, 7]])
    approx = emb.embedding_transformation(
        torch.cat(
            [
                torch.zeros(1, 3, emb.embedding_size),
                emb.word_embeddings(ids),
                torch.zeros(1, 3, emb.embedding_size),
            ],
            -1,
        )
    )
    exact = teacher.bert.embeddings.word_embeddings(ids)
    assert torch.nn.functional.cosine_similarity(approx, exact, dim=-1).min() > 0.5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(family="albert"), "unknown student family"),
        (dict(family="bert", size="huge"), "unknown student size"),
        (dict(family="squeezebert", groups=5), "not divisible by 5 groups"),
        (dict(family="squeezebert", groups=1, ffn_groups=5), "choose --ffn-groups"),
        (dict(family="bert", heads=3), "not divisible by 3 heads"),
        (dict(family="bert", layers=0), "must be a positive integer"),
    ],
)
def test_student_that_cannot_be_built_is_user_error(tiny_models, spec, message):
    config = _teacher(tiny_models["bert"]).config
    with pytest.raises(UserError, match=message):
        student_config(config, StudentSpec(**spec))


@pytest.mark.parametrize("family", FAMILIES)
def test_distilled_student_exports_to_int8_onnx_and_verifies(
    family, tiny_models, reviews_csv, tmp_path
):
    import json

    import pocketbert
    from pocketbert.converters.distill import DistillConfig, run_distill
    from pocketbert.converters.train_loop import TrainConfig

    cfg = DistillConfig(
        student=StudentSpec(family),
        train=TrainConfig(epochs=1, batch_size=16, max_seq_len=32, checkpoint_every=0),
    )
    summary = run_distill(tiny_models["bert"], reviews_csv, tmp_path / "student", cfg, quiet=True)
    assert (
        json.loads((tmp_path / "student" / "summary.json").read_text())["student_family"] == family
    )
    assert summary["student_params"] > 0 and summary["student_flops_seq128"] > 0
    [result] = pocketbert.export(
        tmp_path / "student",
        tmp_path / "bundle",
        format="onnx",
        precision="int8-dynamic",
        quiet=True,
    )
    assert result.parity["argmax_agreement"] >= 0.98
    labels = [
        r["label"]
        for r in pocketbert.load(tmp_path / "bundle").predict(["a fine film", "a dull film"])
    ]
    assert set(labels) <= {"negative", "positive"}


def test_squeezebert_with_a_narrower_ffn_takes_the_teachers_strongest_neurons(tiny_models):
    teacher = _teacher(tiny_models["bert"])
    inter = teacher.config.intermediate_size // 2
    spec = StudentSpec("squeezebert", layers=1, groups=2, ffn_groups=1, intermediate=inter)
    sq = build_student(teacher, student_config(teacher.config, spec))
    tl = teacher.bert.encoder.layer[layer_map(1, teacher.config.num_hidden_layers)[0]]
    w1, w2 = tl.intermediate.dense.weight, tl.output.dense.weight
    strongest = torch.argsort(w1.norm(dim=1) * w2.norm(dim=0), descending=True)[:inter].sort()
    layer = sq.transformer.encoder.layers[0]
    assert torch.equal(layer.intermediate.conv1d.weight[:, :, 0], w1[strongest.values])
    assert torch.equal(layer.output.conv1d.weight[:, :, 0], w2[:, strongest.values])


@pytest.mark.parametrize("no_norm", [True, False])
def test_mobilebert_norms_take_the_teachers_scale_on_real_text(no_norm, tiny_models):
    from transformers import AutoTokenizer

    from pocketbert.core.texts import BUILTIN

    teacher = _teacher(tiny_models["bert"]).eval()
    batch = AutoTokenizer.from_pretrained(tiny_models["bert"])(
        BUILTIN[:16], padding=True, return_tensors="pt"
    )
    probe = {k: batch[k] for k in ("input_ids", "attention_mask")}
    spec = StudentSpec("mobilebert", layers=4, no_norm=no_norm)
    config = student_config(teacher.config, spec)
    student = build_student(teacher, config, probe=probe).eval()
    plain = build_student(teacher, config).eval()
    real = probe["attention_mask"].bool()
    with torch.no_grad():
        t_states = teacher.bert(**probe, output_hidden_states=True).hidden_states
        s_states = student.mobilebert(**probe, output_hidden_states=True).hidden_states
        p_states = plain.mobilebert(**probe, output_hidden_states=True).hidden_states
    targets = [t_states[0]] + [t_states[j + 1] for j in layer_map(4, len(t_states) - 1)]
    for s, t in zip(s_states, targets, strict=True):
        assert torch.allclose(s[real].std(0), t[real].std(0), rtol=1e-3, atol=1e-5)
        assert torch.allclose(s[real].mean(0), t[real].mean(0), atol=1e-4)
    assert not torch.allclose(p_states[-1][real].std(0), targets[-1][real].std(0), rtol=0.1)


def test_mobilebert_with_one_ffn_takes_the_teachers_strongest_neurons(tiny_models):
    teacher = _teacher(tiny_models["bert"])
    inter = teacher.config.intermediate_size // 2
    spec = StudentSpec("mobilebert", layers=1, ffns=1, intermediate=inter)
    mb = build_student(teacher, student_config(teacher.config, spec))
    layer = mb.mobilebert.encoder.layer[0]
    assert not hasattr(layer, "ffn")  # transformers builds no stack for a single FFN
    tl = teacher.bert.encoder.layer[layer_map(1, teacher.config.num_hidden_layers)[0]]
    w1, w2 = tl.intermediate.dense.weight, tl.output.dense.weight
    strongest = torch.argsort(w1.norm(dim=1) * w2.norm(dim=0), descending=True)[:inter]
    torch.testing.assert_close(layer.intermediate.dense.bias, tl.intermediate.dense.bias[strongest])
