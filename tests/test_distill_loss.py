"""Each distillation loss term moves a student toward its own target, and no other term
gets as close to it: cross-entropy to the labels, KL to the teacher's logits, hidden-state
MSE through the projections, attention-map KL."""

import pytest

from pocketbert.converters.distill_loss import LossWeights
from pocketbert.converters.students import StudentSpec

TERMS = ("ce", "kd", "hidden", "attention")


def _distances(trainee, teacher, batch):
    """Each term's distance (CE to labels, KL to the teacher's logits, hidden MSE through
    the projections, attention KL) of the student on ``batch``."""
    import torch

    every = LossWeights(ce=1.0, kd=1.0, hidden=1.0, attention=1.0)
    trainee.eval()
    with torch.no_grad():
        teacher_out = teacher(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            output_hidden_states=True,
            output_attentions=True,
        )
        _, parts = trainee(batch, teacher_out, every)
    return parts


@pytest.mark.parametrize("family", ["squeezebert", "mobilebert"])
def test_each_loss_term_moves_the_student_toward_its_target(family, tiny_models, reviews_csv):
    import copy

    import torch

    from pocketbert.converters.distill import load_classifier
    from pocketbert.converters.distill_loss import DistillLoss
    from pocketbert.converters.students import build_student, layer_map, student_config
    from pocketbert.converters.train_loop import Trainee, collate, encode
    from pocketbert.core.data import load_data

    torch.manual_seed(0)
    teacher, tokenizer, labels, _ = load_classifier(tiny_models["bert"])
    teacher.eval()
    with torch.no_grad():  # a random teacher's attention and logits are near uniform: sharpen
        for name, p in teacher.named_parameters():
            if name.endswith(("query.weight", "key.weight")):
                p.mul_(6.0)
            if name.startswith("classifier."):
                p.mul_(10.0)
    texts, ids = load_data(reviews_csv, teacher_labels=labels).ids("train")
    batch = collate(encode(tokenizer, texts[:24], ids[:24], 32))
    config = student_config(teacher.config, StudentSpec(family))
    student = build_student(None, config, seed=0)  # random: every term starts far away
    loss = DistillLoss(
        student.config.hidden_size,
        teacher.config.hidden_size,
        layer_map(student.config.num_hidden_layers, teacher.config.num_hidden_layers),
        scores=(family == "squeezebert", False),
    )
    start = Trainee(student, loss)
    before = _distances(start, teacher, batch)
    after = {}
    for term in TERMS:
        trainee = copy.deepcopy(start)
        optimizer = torch.optim.Adam(trainee.parameters(), lr=5e-3)
        w = LossWeights(**{t: float(t == term) for t in TERMS})
        for _ in range(30):
            trainee.train()
            with torch.no_grad():
                teacher_out = teacher(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    output_hidden_states=w.hidden > 0,
                    output_attentions=w.attention > 0,
                )
            value, _ = trainee(batch, teacher_out, w)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        after[term] = _distances(trainee, teacher, batch)
    for term in TERMS:
        assert after[term][term] < 0.9 * before[term], (term, before, after[term])
        for other in set(TERMS) - {term}:  # no other term gets as close to this target
            assert after[term][term] < after[other][term], (term, other, after)
