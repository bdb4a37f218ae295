"""Structured pruning: attention heads and FFN neurons removed by importance on the data.

    cfg = PruneStructure(heads=0.5, neurons=0.5, batches=calibration_batches)
    model = apply_method(model, cfg)

Importance is first-order: a head's is Michel et al.'s (2019) |dL/d mask| of a head mask
of ones, summed over the batches and normalised per layer; an FFN neuron's is the Taylor
term |sum of w * dL/dw| over its input row, bias and output column (Molchanov et al.),
summed the same way. L is the cross-entropy of the model on the batches' labels. Every
layer keeps the same count (``round((1 - ratio) * n)``, at least one), so the result is an
ordinary transformers model with smaller shapes: ``prune_heads`` (recorded in
``config.pruned_heads``, applied again by ``from_pretrained``) and a smaller uniform
``config.intermediate_size`` with the FFN Linears sliced. No mask is left at inference.
"""

from __future__ import annotations

import torch
from torch import nn

from pocketbert.converters.compress_configs import PruneStructure
from pocketbert.converters.methods import register_method
from pocketbert.core.errors import UserError, choices

FAMILIES = ("bert", "mobilebert")


def kept_count(total: int, ratio: float) -> int:
    return total - round(ratio * total)


def check_shapes(config, cfg: PruneStructure) -> None:
    """Refuse, before any work, a model family or a ratio that leaves a layer empty."""
    if config.model_type not in FAMILIES:
        raise UserError(
            f"structured pruning supports {choices(FAMILIES)} models, not {config.model_type} "
            "(SqueezeBERT's heads and FFN are grouped convolutions)"
        )
    if config.pruned_heads:
        raise UserError("this model's heads were pruned already; prune heads once")
    heads = config.num_attention_heads
    if cfg.heads and kept_count(heads, cfg.heads) < 1:
        raise UserError(
            f"pruning heads={cfg.heads} removes every one of the {heads} heads of each layer; "
            f"give at most {(heads - 1) / heads:.2f}"
        )
    width = config.intermediate_size
    if cfg.neurons and kept_count(width, cfg.neurons) < 1:
        raise UserError(
            f"pruning neurons={cfg.neurons} removes every FFN neuron ({width} per layer); "
            "give a smaller ratio"
        )


def _ffns(layer: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(holder of the FFN's input Linear, holder of its output Linear) pairs of one layer."""
    pairs = [(layer.intermediate, layer.output)]
    pairs += [(f.intermediate, f.output) for f in getattr(layer, "ffn", [])]  # MobileBERT
    return pairs


def _taylor(linear_in: nn.Linear, linear_out: nn.Linear) -> torch.Tensor:
    score = (linear_in.weight * linear_in.weight.grad).sum(1)
    if linear_in.bias is not None:
        score = score + linear_in.bias * linear_in.bias.grad
    return (score + (linear_out.weight * linear_out.weight.grad).sum(0)).abs()


def importance(model: nn.Module, batches) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """(head scores [layers, heads], per layer a list of neuron scores per FFN)."""
    if not batches:
        raise UserError("structured pruning needs training sentences to rank heads and neurons")
    config = model.config
    layers = model.base_model.encoder.layer
    mask = torch.ones(config.num_hidden_layers, config.num_attention_heads, requires_grad=True)
    heads = torch.zeros_like(mask)
    neurons = [[torch.zeros(i.dense.out_features) for i, _ in _ffns(layer)] for layer in layers]
    was_training, implementation = model.training, config._attn_implementation
    model.eval()  # no dropout: the scores of the model as it will run
    config._attn_implementation = "eager"  # the head mask multiplies eager attention's weights
    try:
        for batch in batches:
            model.zero_grad(set_to_none=False)
            mask.grad = None
            out = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                head_mask=mask,
            )
            nn.functional.cross_entropy(out.logits, batch["labels"]).backward()
            heads += mask.grad.abs()
            for scores, layer in zip(neurons, layers, strict=True):
                for s, (inter, output) in zip(scores, _ffns(layer), strict=True):
                    s += _taylor(inter.dense, output.dense).detach()
    finally:
        config._attn_implementation = implementation
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    heads = heads / heads.norm(dim=1, keepdim=True).clamp(min=1e-12)  # Michel et al.: per layer
    return heads, neurons


def _slice_ffn(inter: nn.Module, output: nn.Module, keep: torch.Tensor) -> None:
    a, b = inter.dense, output.dense
    new_a = nn.Linear(a.in_features, len(keep), bias=a.bias is not None)
    new_b = nn.Linear(len(keep), b.out_features, bias=b.bias is not None)
    with torch.no_grad():
        new_a.weight.copy_(a.weight[keep])
        if a.bias is not None:
            new_a.bias.copy_(a.bias[keep])
        new_b.weight.copy_(b.weight[:, keep])
        if b.bias is not None:
            new_b.bias.copy_(b.bias)
    inter.dense, output.dense = new_a, new_b


@register_method(PruneStructure)
def prune_structure(model: nn.Module, cfg: PruneStructure) -> nn.Module:
    check_shapes(model.config, cfg)
    layers = model.base_model.encoder.layer
    if len({id(m) for m in layers}) < len(layers):
        raise UserError("this model's layers are shared; prune heads and neurons before sharing")
    head_scores, neuron_scores = importance(model, cfg.batches)
    config = model.config
    if cfg.heads:
        keep = kept_count(config.num_attention_heads, cfg.heads)
        drop = {
            i: sorted(row.argsort(descending=True)[keep:].tolist())
            for i, row in enumerate(head_scores)
        }
        model.prune_heads(drop)
    if cfg.neurons:
        keep = kept_count(config.intermediate_size, cfg.neurons)
        for layer, scores in zip(model.base_model.encoder.layer, neuron_scores, strict=True):
            for (inter, output), s in zip(_ffns(layer), scores, strict=True):
                _slice_ffn(inter, output, s.argsort(descending=True)[:keep].sort().values)
        config.intermediate_size = keep
    return model
