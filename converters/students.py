"""Student configs derived from a teacher: SqueezeBERT-style, MobileBERT-style, plain BERT.

A student is an ordinary transformers model (``save_pretrained``/``from_pretrained`` work,
the exporters take it unchanged). ``student_config`` turns a family, a size preset and
explicit knobs into a config; ``build_student`` makes the model and initializes it from
the teacher where shapes allow (layer selection, PCA-projected embeddings, heads and FFN
neurons picked from the teacher for MobileBERT bottlenecks, block-diagonal slices for
SqueezeBERT's grouped layers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from pocketbert.core.errors import UserError, choices

FAMILIES = ("bert", "mobilebert", "squeezebert")
SIZES = ("tiny", "small", "medium")
PROFILE_SEQ_LEN = 128


@dataclass(frozen=True)
class StudentSpec:
    """A student family, a size preset and optional explicit knobs (None: from the preset)."""

    family: str = "squeezebert"
    size: str = "small"
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    intermediate: int | None = None
    groups: int | None = None  # SqueezeBERT: groups of Q/K/V (and of the FFN unless ffn_groups)
    ffn_groups: int | None = None  # SqueezeBERT: groups of FFN in and FFN out (default: groups)
    bottleneck: int | None = None  # MobileBERT: intra-block width (true hidden size)
    embedding: int | None = None  # MobileBERT: factorized embedding size
    ffns: int | None = None  # MobileBERT: stacked FFNs per block
    no_norm: bool | None = None  # MobileBERT: NoNorm + ReLU instead of LayerNorm + GELU

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise UserError(
                f"unknown student family '{self.family}'; choose one of: {choices(FAMILIES)}"
            )
        if self.size not in SIZES:
            raise UserError(f"unknown student size '{self.size}'; choose one of: {choices(SIZES)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise UserError(f"student knob {f.name}={value} must be a positive integer")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _preset(spec: StudentSpec, t: Any) -> dict[str, Any]:
    """Knobs of a size preset, relative to the teacher (t: its config)."""
    layers_t, hidden_t, heads_t = t.num_hidden_layers, t.hidden_size, t.num_attention_heads
    scale = {"tiny": 0.5, "small": 1.0, "medium": 1.5}[spec.size]
    if spec.family == "bert":  # keep the width (teacher layers copy over), cut depth
        return dict(
            layers=max(1, round(layers_t / 4 * scale)),
            hidden=hidden_t,
            heads=heads_t,
            intermediate=t.intermediate_size,
        )
    if spec.family == "squeezebert":  # 2 groups: ~0.37 of a BERT layer each, 1/3 of the depth
        # half the teacher's FFN neurons (its strongest, see student_init): on three held-out
        # tasks 1.16-1.18x faster int8 bundles than the full width, accuracy within the noise
        return dict(
            layers=max(1, round(layers_t / 3 * scale)),
            hidden=hidden_t,
            heads=heads_t,
            intermediate=max(2, t.intermediate_size // 4 * 2),  # half, even for the groups
            groups=2,
        )
    head_dim = hidden_t // heads_t
    bottleneck = max(head_dim, (hidden_t // 3) // head_dim * head_dim)
    # one FFN holding the teacher's strongest 8 x bottleneck neurons: the parameters of two
    # stacked 4x FFNs in fewer, wider matmuls. On three held-out tasks: 1.07x faster int8
    # bundles on short text and 0.5-1.7 points more accurate than the two-FFN stack
    return dict(  # thin bottleneck blocks (~0.25 of a BERT layer each), half the depth
        layers=max(1, round(layers_t / 2 * scale)),
        hidden=hidden_t,
        heads=max(1, bottleneck // head_dim),
        intermediate=8 * bottleneck,
        bottleneck=bottleneck,
        embedding=min(128, hidden_t),
        ffns=1,
        no_norm=True,  # NoNorm + ReLU: MobileBERT's fast variant (LayerNorm: ~1.5x slower in ORT here)
    )


def resolve_knobs(spec: StudentSpec, teacher_config: Any) -> dict[str, Any]:
    knobs = _preset(spec, teacher_config)
    for key, value in spec.to_dict().items():
        if key not in ("family", "size") and value is not None:
            knobs[key] = value
    return knobs


def student_config(teacher_config: Any, spec: StudentSpec) -> Any:
    """The transformers config of ``spec``'s student for this teacher (vocab and labels kept)."""
    from transformers import AutoConfig

    from pocketbert.converters.architectures import ARCHITECTURES

    # any encoder of the table can teach: the student keeps its vocabulary and tokenizer
    # (and starts from the teacher's weights where the shapes allow: BERT teachers)
    if teacher_config.model_type not in ARCHITECTURES:
        raise UserError(
            f"teacher architecture '{teacher_config.model_type}' has no student recipe; "
            f"give a teacher of type: {choices(ARCHITECTURES)}"
        )
    k = resolve_knobs(spec, teacher_config)
    common = dict(
        vocab_size=teacher_config.vocab_size,
        max_position_embeddings=teacher_config.max_position_embeddings,
        type_vocab_size=getattr(teacher_config, "type_vocab_size", 2),
        pad_token_id=getattr(teacher_config, "pad_token_id", 0) or 0,
        num_labels=teacher_config.num_labels,
        id2label=dict(teacher_config.id2label),
        label2id=dict(teacher_config.label2id),
        num_hidden_layers=k["layers"],
        hidden_size=k["hidden"],
        num_attention_heads=k["heads"],
        intermediate_size=k["intermediate"],
        hidden_act=getattr(teacher_config, "hidden_act", "gelu"),
    )
    width = k.get("bottleneck", k["hidden"])
    if width % k["heads"]:
        raise UserError(
            f"cannot build a {spec.family} student: width {width} is not divisible by {k['heads']} heads; "
            "change --hidden/--bottleneck or --heads"
        )
    if spec.family == "bert":
        return AutoConfig.for_model("bert", **common)
    if spec.family == "squeezebert":
        g = k["groups"]
        fg = k.get("ffn_groups") or g
        for name, dim, groups, flag in (
            ("hidden", k["hidden"], g, "--groups"),
            ("hidden", k["hidden"], fg, "--ffn-groups"),
            ("intermediate", k["intermediate"], fg, "--ffn-groups"),
        ):
            if dim % groups:
                raise UserError(
                    f"cannot build a squeezebert student: {name} size {dim} is not divisible by "
                    f"{groups} groups; choose {flag} dividing the hidden and intermediate sizes"
                )
        return AutoConfig.for_model(
            "squeezebert",
            **common,
            embedding_size=k["hidden"],
            q_groups=g,
            k_groups=g,
            v_groups=g,
            post_attention_groups=1,
            intermediate_groups=fg,
            output_groups=fg,
        )
    no_norm = bool(k["no_norm"])
    common["hidden_act"] = "relu" if no_norm else "gelu"
    return AutoConfig.for_model(
        "mobilebert",
        **common,
        embedding_size=k["embedding"],
        true_hidden_size=k["bottleneck"],
        intra_bottleneck_size=k["bottleneck"],
        use_bottleneck=True,
        key_query_shared_bottleneck=True,
        num_feedforward_networks=k["ffns"],
        normalization_type="no_norm" if no_norm else "layer_norm",
    )


def layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """For each student layer, the teacher layer it learns from (uniform, ending on the last)."""
    return [(i + 1) * teacher_layers // student_layers - 1 for i in range(student_layers)]


def transformer_layer_params(model: nn.Module) -> int:
    """Parameters inside the encoder's transformer layers (no embeddings, pooler or head)."""
    return sum(p.numel() for n, p in model.named_parameters() if ".encoder." in f".{n}")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def forward_flops(model: nn.Module, seq_len: int = PROFILE_SEQ_LEN) -> int:
    """FLOPs of one batch-1 forward pass at ``seq_len`` tokens (matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    ids = torch.ones(1, seq_len, dtype=torch.long)
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    model.train(was_training)
    return int(counter.get_total_flops())


def describe(model: nn.Module) -> dict[str, int]:
    return {
        "params": count_params(model),
        "transformer_layer_params": transformer_layer_params(model),
        f"flops_seq{PROFILE_SEQ_LEN}": forward_flops(model),
    }


def build_student(
    teacher: nn.Module | None, config: Any, *, seed: int = 0, probe: dict | None = None
) -> nn.Module:
    """A sequence classifier for ``config``, initialized from ``teacher`` where shapes allow.

    ``probe``: a tokenized batch of real text (input_ids, attention_mask) on which a
    MobileBERT student's norms take the scale of the teacher's layers.
    """
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    try:
        student = AutoModelForSequenceClassification.from_config(
            config, attn_implementation="eager"
        )
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise UserError(f"cannot build the {config.model_type} student ({exc})") from exc
    if teacher is not None:
        from pocketbert.converters.student_init import init_from_teacher, match_teacher_statistics

        init_from_teacher(student, teacher)
        if probe is not None:
            match_teacher_statistics(student, teacher, probe)
    return student
