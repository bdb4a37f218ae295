"""Torch reference outputs for the parity gate."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def torch_outputs(module: nn.Module, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Run each batch-1 feed through the torch module; stack the outputs as float32."""
    rows = [
        module(torch.from_numpy(f["input_ids"]), torch.from_numpy(f["attention_mask"]))
        .float()
        .reshape(1, -1)
        .numpy()
        for f in feeds
    ]
    return np.concatenate(rows)
