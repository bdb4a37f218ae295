"""What an exporter is asked for (ExportSpec) and what it hands back (Exported)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pocketbert.converters.quantization import Precision, as_config

INPUT_NAMES = ("input_ids", "attention_mask")


@dataclass(frozen=True)
class ExportSpec:
    """One export request.

    ``sample`` is a batch-1 feed of shape [1, max_seq_len] (int64). ``calibration`` is a
    list of batch-1 feeds of real text, each at its natural length; static exporters pad
    them to max_seq_len with ``pad_feed``. ``precision`` is a config object
    (``converters.quantization``); ``work_dir`` is the run's scratch directory, removed
    by the caller on every exit path: intermediate files go there, nowhere else.
    """

    format: str
    precision: Precision
    task: str  # "classification" | "embedding"
    max_seq_len: int
    sample: dict[str, np.ndarray]
    calibration: list[dict[str, np.ndarray]] = field(default_factory=list)
    min_seq_len: int = 3  # the smallest dynamic sequence length a file must accept
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", as_config(self.precision))  # a name is fine too

    @property
    def quantized(self) -> bool:
        return self.precision.quantized


@dataclass
class Exported:
    """A written model file and what the bundle manifest needs to know about it."""

    path: Path
    dynamic_seq: bool  # False: the file takes exactly [1, max_seq_len]
    input_dtype: str = "int64"
    checks: dict = field(default_factory=dict)  # shipping checks, e.g. undelegated ops
    tools: dict = field(default_factory=dict)  # versions of the tools that wrote it


def pad_feed(feed: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """Right-pad a batch-1 feed with zeros (pad id 0, mask 0) to ``length`` tokens."""
    out = {}
    for name, arr in feed.items():
        pad = length - arr.shape[1]
        out[name] = np.pad(arr, ((0, 0), (0, pad))) if pad > 0 else arr[:, :length]
    return out
