"""Initialize a student from a BERT teacher where shapes allow.

- every family: the teacher's pooler and classifier when widths match; student layer i
  starts from teacher layer ``layer_map(...)[i]``;
- plain BERT: whole layers and embeddings copied (same width), or embeddings projected
  onto their principal directions (narrower);
- SqueezeBERT: embeddings copied; each grouped 1x1 convolution takes the block-diagonal
  of the teacher's dense weight;
- MobileBERT: factorized embeddings from a PCA of the teacher's word embeddings (the
  trigram projection maps them back); each bottleneck block takes a subspace P of the
  teacher layer's input space (top right singular vectors of its input weights), the
  teacher's heads with the largest weights (same head size) and FFN neurons, all seen
  through P.

A teacher of another architecture only lends parameters whose names and shapes match.
"""

from __future__ import annotations

import torch
from torch import nn

from pocketbert.converters.students import layer_map


def _copy(dst: nn.Module, src: nn.Module) -> None:
    """Copy every parameter/buffer of ``src`` into ``dst`` whose name and shape match."""
    src_state = src.state_dict()
    own = dst.state_dict()
    dst.load_state_dict(
        {k: v for k, v in src_state.items() if k in own and own[k].shape == v.shape}, strict=False
    )


def _pca(matrix: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, basis [dim, k]) of the rows of ``matrix``."""
    mean = matrix.mean(0)
    _, _, vh = torch.linalg.svd(matrix - mean, full_matrices=False)
    return mean, vh[:k].T.contiguous()


def _head_rows(heads: list[int], head_dim: int) -> torch.Tensor:
    return torch.cat([torch.arange(h * head_dim, (h + 1) * head_dim) for h in heads])


def _top_neurons(tl: nn.Module, width: int) -> torch.Tensor:
    """The ``width`` FFN neurons of teacher layer ``tl`` with the largest in x out weights."""
    w1, w2 = tl.intermediate.dense.weight, tl.output.dense.weight
    return torch.argsort(w1.norm(dim=1) * w2.norm(dim=0), descending=True)[:width]


@torch.no_grad()
def _block_diagonal(conv: nn.Conv1d, weight: torch.Tensor, bias: torch.Tensor) -> None:
    g = conv.groups
    out_g, in_g = conv.out_channels // g, conv.in_channels // g
    for k in range(g):
        conv.weight[k * out_g : (k + 1) * out_g, :, 0] = weight[
            k * out_g : (k + 1) * out_g, k * in_g : (k + 1) * in_g
        ]
    conv.bias.copy_(bias)


@torch.no_grad()
def _squeezebert(student: nn.Module, teacher: nn.Module, picks: list[int]) -> None:
    s, t = student.transformer, teacher.bert
    _copy(s.embeddings, t.embeddings)
    if s.config.hidden_size != t.config.hidden_size:
        return
    for layer, j in zip(s.encoder.layers, picks, strict=True):
        tl = t.encoder.layer[j]
        for name in ("query", "key", "value"):
            lin = getattr(tl.attention.self, name)
            _block_diagonal(getattr(layer.attention, name), lin.weight, lin.bias)
        dense = tl.attention.output.dense
        _block_diagonal(layer.post_attention.conv1d, dense.weight, dense.bias)
        _copy(layer.post_attention.layernorm, tl.attention.output.LayerNorm)
        # a narrower FFN keeps the teacher's strongest neurons
        keep = _top_neurons(tl, layer.intermediate.conv1d.out_channels).sort().values
        inter, out = tl.intermediate.dense, tl.output.dense
        _block_diagonal(layer.intermediate.conv1d, inter.weight[keep], inter.bias[keep])
        _block_diagonal(layer.output.conv1d, out.weight[:, keep], out.bias)
        _copy(layer.output.layernorm, tl.output.LayerNorm)


@torch.no_grad()
def _bert(student: nn.Module, teacher: nn.Module, picks: list[int]) -> None:
    s, t = student.bert, teacher.bert
    _copy(s.embeddings, t.embeddings)
    width = s.config.hidden_size
    if width < t.config.hidden_size:  # narrower: embeddings projected on their principal directions
        _, basis = _pca(t.embeddings.word_embeddings.weight, width)
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            getattr(s.embeddings, name).weight.copy_(getattr(t.embeddings, name).weight @ basis)
    for layer, j in zip(s.encoder.layer, picks, strict=True):
        _copy(layer, t.encoder.layer[j])


@torch.no_grad()
def _mobilebert(student: nn.Module, teacher: nn.Module, picks: list[int]) -> None:
    s, t, cfg = student.mobilebert, teacher.bert, student.config
    if cfg.hidden_size != t.config.hidden_size:
        return
    emb = t.embeddings
    mean, basis = _pca(emb.word_embeddings.weight, cfg.embedding_size)
    s.embeddings.word_embeddings.weight.copy_((emb.word_embeddings.weight - mean) @ basis)
    proj = s.embeddings.embedding_transformation
    proj.weight.zero_()
    e = cfg.embedding_size
    start = e if cfg.trigram_input else 0  # trigram input: [next, this, previous]
    proj.weight[:, start : start + e] = basis
    proj.bias.copy_(mean)
    s.embeddings.position_embeddings.weight.copy_(emb.position_embeddings.weight)
    s.embeddings.token_type_embeddings.weight.copy_(emb.token_type_embeddings.weight)
    if cfg.normalization_type == "layer_norm":
        _copy(s.embeddings.LayerNorm, emb.LayerNorm)
    head_dim_t = t.config.hidden_size // t.config.num_attention_heads
    if cfg.true_hidden_size // cfg.num_attention_heads != head_dim_t:
        return
    for layer, j in zip(s.encoder.layer, picks, strict=True):
        _mobilebert_layer(layer, t.encoder.layer[j], cfg, head_dim_t)


@torch.no_grad()
def _mobilebert_layer(layer: nn.Module, tl: nn.Module, cfg, head_dim: int) -> None:
    ta, b = tl.attention, cfg.true_hidden_size
    wq, wk, wv, wo = (
        ta.self.query.weight,
        ta.self.key.weight,
        ta.self.value.weight,
        ta.output.dense.weight,
    )
    _, _, vh = torch.linalg.svd(
        torch.cat([wq, wk, wv, tl.intermediate.dense.weight]), full_matrices=False
    )
    p = vh[:b].T.contiguous()  # [hidden, b]: the directions this teacher layer reads most
    for bn in (layer.bottleneck.input, layer.bottleneck.attention):
        bn.dense.weight.copy_(p.T)
        bn.dense.bias.zero_()
    n_heads = cfg.num_attention_heads
    score = [
        float(
            wv[h * head_dim : (h + 1) * head_dim].norm()
            * wo[:, h * head_dim : (h + 1) * head_dim].norm()
        )
        for h in range(wq.shape[0] // head_dim)
    ]
    rows = _head_rows(
        sorted(sorted(range(len(score)), key=lambda h: -score[h])[:n_heads]), head_dim
    )
    sa = layer.attention.self
    sa.query.weight.copy_(wq[rows] @ p)
    sa.query.bias.copy_(ta.self.query.bias[rows])
    sa.key.weight.copy_(wk[rows] @ p)
    sa.key.bias.copy_(ta.self.key.bias[rows])
    sa.value.weight.copy_(wv[rows])
    sa.value.bias.copy_(ta.self.value.bias[rows])
    layer.attention.output.dense.weight.copy_(p.T @ wo[:, rows])
    layer.attention.output.dense.bias.copy_(p.T @ ta.output.dense.bias)
    w1, w2 = tl.intermediate.dense.weight, tl.output.dense.weight
    ffns = [(f.intermediate.dense, f.output.dense) for f in getattr(layer, "ffn", [])] + [
        (layer.intermediate.dense, layer.output.dense)
    ]
    width = ffns[0][0].out_features
    order = _top_neurons(tl, w1.shape[0])
    for k, (inter, out) in enumerate(ffns):
        neurons = order[k * width : (k + 1) * width]
        if len(neurons) < width:
            break
        inter.weight.copy_(w1[neurons] @ p)
        inter.bias.copy_(tl.intermediate.dense.bias[neurons])
        out.weight.copy_(p.T @ w2[:, neurons])
        out.bias.copy_(p.T @ tl.output.dense.bias / len(ffns))
    layer.output.bottleneck.dense.weight.copy_(p)
    layer.output.bottleneck.dense.bias.zero_()


INIT = {"bert": _bert, "squeezebert": _squeezebert, "mobilebert": _mobilebert}


def _token_stats(states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of ``states`` [b, s, c] over the real tokens."""
    x = states[mask.bool()]
    return x.mean(0), x.std(0)


@torch.no_grad()
def match_teacher_statistics(student: nn.Module, teacher: nn.Module, probe: dict) -> int:
    """Rescale a MobileBERT student's output norms so each layer's output has the per-channel
    mean and std of the teacher layer it learns from, on the ``probe`` batch.

    NoNorm does not normalize: initialized from the teacher, the residual stream of a
    NoNorm student grows with every block (4 blocks: mean |h| 0.03 -> 3.9 on MiniLM) until
    the pooler's tanh saturates and training never starts. The norms' affine weights take
    the teacher's scale instead (an LSUV-style, data-driven init). Returns how many norms
    were set; 0 for other students or widths.
    """
    if student.config.model_type != "mobilebert" or not hasattr(teacher, "bert"):
        return 0
    if student.config.hidden_size != teacher.config.hidden_size:
        return 0
    s = student.mobilebert
    picks = layer_map(student.config.num_hidden_layers, teacher.config.num_hidden_layers)
    mask = probe["attention_mask"]
    t_states = teacher.bert(**probe, output_hidden_states=True).hidden_states
    norms = [s.embeddings.LayerNorm] + [
        layer.output.bottleneck.LayerNorm for layer in s.encoder.layer
    ]
    targets = [t_states[0]] + [t_states[j + 1] for j in picks]
    was_training = student.training
    student.eval()
    for k, (norm, target) in enumerate(zip(norms, targets, strict=True)):
        states = s(**probe, output_hidden_states=True).hidden_states[k]
        mean, std = _token_stats(states, mask)
        t_mean, t_std = _token_stats(target, mask)
        # a channel constant over the probe keeps its scale (and takes the teacher's mean)
        scale = torch.where(std > 1e-6, t_std / std.clamp_min(1e-6), torch.ones_like(std))
        norm.weight.mul_(scale)
        norm.bias.copy_((norm.bias - mean) * scale + t_mean)
    student.train(was_training)
    return len(norms)


@torch.no_grad()
def init_from_teacher(student: nn.Module, teacher: nn.Module) -> None:
    """Initialize ``student`` (a sequence classifier) from ``teacher`` in place."""
    s_cfg, t_cfg = student.config, teacher.config
    if t_cfg.model_type != "bert" or not hasattr(teacher, "bert"):
        if t_cfg.model_type == s_cfg.model_type:
            _copy(student, teacher)
        return
    picks = layer_map(s_cfg.num_hidden_layers, t_cfg.num_hidden_layers)
    INIT[s_cfg.model_type](student, teacher, picks)
    base = student.base_model
    if (
        getattr(base, "pooler", None) is not None
        and getattr(teacher.bert, "pooler", None) is not None
    ):
        _copy(base.pooler, teacher.bert.pooler)
    _copy(student.classifier, teacher.classifier)


@torch.no_grad()
def freeze_embeddings(student: nn.Module, teacher: nn.Module, freeze: bool | None) -> bool:
    """Freeze the student's word-embedding table (a factorized pair: its vocab table) and
    say whether it did. ``freeze`` None: the rule of ``pocketbert.core.defaults``, frozen
    when the table is still the teacher's own, copied unchanged."""
    embeddings = student.get_input_embeddings()
    table = getattr(embeddings, "table", embeddings).weight
    if freeze is None:
        own = teacher.get_input_embeddings().weight
        freeze = table.shape == own.shape and bool((table == own).all())
    if freeze:
        table.requires_grad_(False)
    return freeze
