"""Cross-layer weight sharing: groups of consecutive encoder layers run one set of weights.

    model = apply_method(model, ShareLayers(group_size=2))   # layers 0,1 share; 2,3 share ...

The encoder's layer list holds the same module object once per layer it stands for, so
torch computes (and trains) each shared weight once. ``config.pocketbert_compression``
records the groups; ``save_pretrained`` writes each shared tensor once (the duplicates'
names are declared tied), and ``converters.low_rank.restore_structure`` ties the layers
again before the weights load. Whether an exported file stores them once depends on the
format (``benchmarks/compress_sentiment.py`` and tests/test_compression_share.py say).
"""

from __future__ import annotations

import re

from torch import nn

from pocketbert.converters.compress_configs import ShareLayers
from pocketbert.converters.methods import register_method
from pocketbert.core.errors import UserError

KIND = "shared_layers"


def layer_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """(dotted name, module) of the encoder's layer list (``layer`` or SqueezeBERT's ``layers``)."""
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, nn.ModuleList) and name.endswith(("encoder.layer", "encoder.layers")):
            return name, module
    raise UserError(f"found no encoder layer list in this {model.config.model_type} model")


def tie(model: nn.Module, name: str, group_size: int) -> None:
    """Make each group's layers one module, and declare the duplicates' weights tied."""
    layers = model.get_submodule(name)
    shared = [layers[i - i % group_size] for i in range(len(layers))]
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent), leaf, nn.ModuleList(shared))
    duplicates = [i for i in range(len(layers)) if i % group_size]
    model._dynamic_tied_weights_keys = [rf"^{re.escape(name)}\.{i}\." for i in duplicates]


@register_method(ShareLayers)
def share_layers(model: nn.Module, config: ShareLayers) -> nn.Module:
    name, layers = layer_list(model)
    count = len(layers)
    if count % config.group_size:
        divisors = [d for d in range(2, count + 1) if count % d == 0]
        raise UserError(
            f"groups of {config.group_size} layers do not divide the {count} layers; "
            f"give a group size of {', '.join(map(str, divisors)) or 'none (1 layer)'}"
        )
    if len({id(m) for m in layers}) < count:
        raise UserError("this model's layers are shared already; share them once")
    tie(model, name, config.group_size)
    from pocketbert.converters.low_rank import RECORD

    record = dict(getattr(model.config, RECORD, None) or {})
    record[name] = {"kind": KIND, "group_size": config.group_size}
    setattr(model.config, RECORD, record)
    return model
