"""LiteRT (TFLite): loads ``.tflite`` files with ai_edge_litert, or tflite_runtime on old devices.

Exported files take int32 inputs of a fixed shape [1, max_seq_len] and name them
``args_0``/``args_1`` (or after the keyword arguments). The session hides all of that: it
takes int64 or int32 ``input_ids``/``attention_mask`` of any length up to the file's,
right-pads shorter ones (pad id 0, mask 0: the output does not change), runs a batch row by
row when the file is batch-1, and dequantizes int8/int16 outputs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from pocketbert.core.errors import UserError, first_line
from pocketbert.runtimes.registry import register_runtime
from pocketbert.runtimes.tensors import cast_feeds, require

INPUT_NAMES = ["input_ids", "attention_mask"]
_IMPORTS = ("ai_edge_litert.interpreter",)
_FALLBACK = ("tflite_runtime.interpreter",)  # boards that only have tflite_runtime
_HINTS = {"input_ids": ("input_ids", "ids"), "attention_mask": ("attention_mask", "mask")}


def _interpreter_class() -> Any:
    """ai_edge_litert's Interpreter, else tflite_runtime's (devices that only have that)."""
    for module in (*_IMPORTS, *_FALLBACK):
        try:
            return importlib.import_module(module).Interpreter
        except ImportError:
            continue
    return require("ai_edge_litert.interpreter", "ai-edge-litert").Interpreter


def _match_inputs(names: list[str]) -> list[str] | None:
    """Which of our input names each file input is, from hints in its name; None if unclear."""
    found: list[str] = []
    for name in names:
        low = name.lower()
        hits = [ours for ours, hints in _HINTS.items() if any(h in low for h in hints)]
        if len(hits) != 1:
            return None
        found.append(hits[0])
    return found if sorted(found) == sorted(INPUT_NAMES) else None


def _dequantize(arr: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if arr.dtype.kind in "iu" and scale:
        return ((arr.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return np.asarray(arr, dtype=np.float32)


class LiteRTSession:
    def __init__(self, interpreter: Any, path: Path) -> None:
        self._it = interpreter
        details = interpreter.get_input_details()
        if len(details) != len(INPUT_NAMES):
            raise UserError(
                f"'{path}' takes {len(details)} input(s) "
                f"({', '.join(d['name'] for d in details)}); expected 2: "
                "input_ids and attention_mask (export it with pocketbert export)"
            )
        by_signature = self._signature_order(details)
        ours = _match_inputs([d["name"] for d in details]) or by_signature or INPUT_NAMES
        self._inputs = dict(zip(ours, details, strict=True))
        self.input_names = list(INPUT_NAMES)
        self.input_dtypes = {n: d["dtype"] for n, d in self._inputs.items()}
        shape = details[0].get("shape_signature", details[0]["shape"])
        self._batch = int(shape[0])  # -1 when dynamic
        self._seq = int(shape[1])  # -1 when dynamic
        self.max_seq_len = self._seq if self._seq > 0 else None
        self._outputs = interpreter.get_output_details()

    def _signature_order(self, details: list[dict]) -> list[str] | None:
        """Our names for the file's inputs from its signature (positional args_0/args_1)."""
        try:
            signatures = self._it.get_signature_list()
        except (AttributeError, RuntimeError, ValueError):
            return None
        if len(signatures) != 1:
            return None
        key = next(iter(signatures))
        runner = self._it.get_signature_runner(key)
        by_index = {d["index"]: n for n, d in runner.get_input_details().items()}
        sig_names = [by_index.get(d["index"]) for d in details]
        if None in sig_names:
            return None
        matched = _match_inputs(sig_names)  # type: ignore[arg-type]
        if matched:
            return matched
        positional = sorted(sig_names)  # args_0, args_1: the forward's argument order
        return [INPUT_NAMES[positional.index(n)] for n in sig_names]  # type: ignore[arg-type]

    def _fit(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Right-pad to the file's fixed length, or resize a dynamic file to the feed's."""
        length = feeds["input_ids"].shape[1]
        if self._seq > 0:
            if length > self._seq:
                raise UserError(
                    f"the input has {length} tokens; this model takes at most {self._seq}: "
                    f"truncate to {self._seq} tokens"
                )
            pad = ((0, 0), (0, self._seq - length))
            return {n: np.pad(a, pad) for n, a in feeds.items()}
        for name, arr in feeds.items():
            self._it.resize_tensor_input(self._inputs[name]["index"], list(arr.shape), strict=True)
        self._it.allocate_tensors()
        return feeds

    def _invoke(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for name, arr in self._fit(feeds).items():
            self._it.set_tensor(self._inputs[name]["index"], arr)
        self._it.invoke()
        return [_dequantize(self._it.get_tensor(d["index"]), d) for d in self._outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        feeds = cast_feeds(feeds, self.input_names, self.input_dtypes)
        batch = feeds["input_ids"].shape[0]
        if self._batch == batch or self._batch == -1:
            return self._invoke(feeds)
        rows = [self._invoke({n: a[i : i + 1] for n, a in feeds.items()}) for i in range(batch)]
        return [np.concatenate(outs, axis=0) for outs in zip(*rows, strict=True)]


@register_runtime(
    "litert",
    suffix=".tflite",
    module="ai_edge_litert",
    install="ai-edge-litert",
    imports=_IMPORTS,
    fallback=_FALLBACK,
)
def load(path: Path, *, threads: int | None = None) -> LiteRTSession:
    interpreter_class = _interpreter_class()
    try:
        interpreter = interpreter_class(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError with long logs
        first = first_line(exc)
        raise UserError(
            f"'{path}' is not a loadable TFLite model ({first}); "
            "re-export it with pocketbert export --format tflite"
        ) from exc
    return LiteRTSession(interpreter, Path(path))
