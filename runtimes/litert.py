"""LiteRT (TFLite): loads ``.tflite`` files with ai_edge_litert, or tflite_runtime on old devices.

Exported files take int32 inputs of a fixed shape [1, length] and name them
``args_0``/``args_1`` (or after the keyword arguments). The session hides all of that: it
takes int64 or int32 ``input_ids``/``attention_mask`` of any length up to the file's, runs
a batch row by row, and dequantizes int8/int16 outputs.

Length buckets: a row is cut to its last attended token and right-padded (pad id 0, mask
0: the output does not change) to the shortest length the file can run that fits it. A
file with one signature per length (``seq_16``, ``seq_32``, ...) runs each signature at its
own length; a file with a dynamic length runs powers of two from 16 up, each on its own
interpreter; a static one-signature file runs at its one length. Each bucket is prepared
(tensors allocated, XNNPACK set up) once, on first use, and reused: short text runs at
short-text speed, and a new length never re-prepares the interpreter.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pocketbert.core.errors import UserError
from pocketbert.core.progress import native_output_to
from pocketbert.runtimes.registry import register_runtime
from pocketbert.runtimes.tensors import cast_feeds, open_model, require, run_by_rows

INPUT_NAMES = ["input_ids", "attention_mask"]
_IMPORTS = ("ai_edge_litert.interpreter",)
_FALLBACK = ("tflite_runtime.interpreter",)  # boards that only have tflite_runtime
_HINTS = {"input_ids": ("input_ids", "ids"), "attention_mask": ("attention_mask", "mask")}
SMALLEST_BUCKET = 16
Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


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


def _ours(names: list[str]) -> dict[str, str]:
    """Our input name for each of the file's: from hints, else positional (args_0, args_1)."""
    matched = _match_inputs(names)
    if matched is None:
        positional = sorted(names)  # args_0, args_1: the forward's argument order
        matched = [INPUT_NAMES[positional.index(n)] for n in names]
    return dict(zip(matched, names, strict=True))


def _dequantize(arr: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if arr.dtype.kind in "iu" and scale:
        return ((arr.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return np.asarray(arr, dtype=np.float32)


def _quietly(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with the interpreter's native lines (XNNPACK's INFO) sent to os.devnull."""
    with native_output_to(Path(os.devnull)):
        return fn()


def bucket_lengths(max_seq_len: int) -> list[int]:
    """The lengths a bucketed file has a signature for: 16, 32, ... below the max, and the max.

    An exporter writes signature ``seq_<n>`` for each (the weights are shared: a 7.0 MB
    file became 7.1 MB with two signatures here).
    """
    lengths, n = [], SMALLEST_BUCKET
    while n < max_seq_len:
        lengths.append(n)
        n *= 2
    return [*lengths, max_seq_len]


def _bucket(length: int, lengths: list[int] | None) -> int | None:
    """The shortest runnable length >= ``length`` (None: too long for the file)."""
    if lengths is None:  # dynamic length: powers of two
        return max(SMALLEST_BUCKET, 1 << (length - 1).bit_length())
    return next((n for n in lengths if n >= length), None)


def _zero_padded(a: np.ndarray, used: int, length: int) -> np.ndarray:
    """The first ``used`` columns of the [1, n] ``a`` in a zeroed [1, length] array (np.pad
    does the same in ~20x the time: 10-20 us per input, a tenth of a small student's call)."""
    out = np.zeros((1, length), a.dtype)
    out[:, :used] = a[:, :used]
    return out


class LiteRTSession:
    def __init__(self, open_interpreter: Callable[[], Any], path: Path) -> None:
        self._open = open_interpreter
        self._it = open_interpreter()
        details = self._it.get_input_details()
        if len(details) != len(INPUT_NAMES):
            raise UserError(
                f"'{path}' takes {len(details)} input(s) "
                f"({', '.join(d['name'] for d in details)}); expected 2: "
                "input_ids and attention_mask (export it with pocketbert export)"
            )
        self.input_names = list(INPUT_NAMES)
        self._signatures = self._length_signatures()
        if self._signatures:
            self._lengths: list[int] | None = sorted(self._signatures)
            self.input_dtypes = self._signatures[self._lengths[0]][1]
        else:
            self._inputs = self._input_details(details)
            self.input_dtypes = {n: d["dtype"] for n, d in self._inputs.items()}
            seq = int(details[0].get("shape_signature", details[0]["shape"])[1])
            self._lengths = [seq] if seq > 0 else None
        self.max_seq_len = self._lengths[-1] if self._lengths else None
        self._runners: dict[int, Runner] = {}

    def _length_signatures(self) -> dict[int, tuple[str, dict]]:
        """{length: (signature key, input dtypes)} of a file with one signature per length."""
        try:
            keys = list(self._it.get_signature_list())
        except (AttributeError, RuntimeError, ValueError):
            return {}
        if len(keys) < 2:
            return {}
        found = {}
        for key in keys:
            inputs = self._it.get_signature_runner(key).get_input_details()
            names = _ours(list(inputs))
            found[int(inputs[names["input_ids"]]["shape"][1])] = (
                key,
                {ours: inputs[theirs]["dtype"] for ours, theirs in names.items()},
            )
        return found

    def _input_details(self, details: list[dict]) -> dict[str, dict]:
        """Our names for the interpreter's inputs (from names, else the signature's order)."""
        by_name = _match_inputs([d["name"] for d in details])
        if by_name:
            return dict(zip(by_name, details, strict=True))
        try:
            (key, *_) = self._it.get_signature_list()
            runner = self._it.get_signature_runner(key)
        except (AttributeError, RuntimeError, ValueError):
            return dict(zip(INPUT_NAMES, details, strict=True))
        by_index = {d["index"]: n for n, d in runner.get_input_details().items()}
        sig_names = [by_index.get(d["index"]) for d in details]
        if None in sig_names:
            return dict(zip(INPUT_NAMES, details, strict=True))
        theirs = _ours(sig_names)  # type: ignore[arg-type]
        return {ours: details[sig_names.index(name)] for ours, name in theirs.items()}

    def _runner(self, length: int) -> Runner:
        """The prepared runner of one bucket length, made on first use."""
        if length not in self._runners:
            runner = self._make_runner(length)
            zeros = {n: np.zeros((1, length), self.input_dtypes[n]) for n in INPUT_NAMES}
            _quietly(lambda: runner(zeros))  # allocates tensors, prepares XNNPACK
            self._runners[length] = runner
        return self._runners[length]

    def _make_runner(self, length: int) -> Runner:
        if self._signatures:
            key, _ = self._signatures[length]
            sig = self._it.get_signature_runner(key)
            theirs = _ours(list(sig.get_input_details()))
            outputs = sig.get_output_details()
            order = self._it.get_signature_list()[key]["outputs"]

            def run_signature(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
                got = sig(**{theirs[n]: feed[n] for n in INPUT_NAMES})
                return [_dequantize(got[k], outputs[k]) for k in order]

            return run_signature
        it = self._it if self._lengths else _quietly(self._open)
        inputs = self._inputs if self._lengths else self._input_details(it.get_input_details())
        if not self._lengths:  # dynamic length: this interpreter keeps this one shape
            for detail in inputs.values():
                it.resize_tensor_input(detail["index"], [1, length], strict=True)
        _quietly(it.allocate_tensors)
        outputs = it.get_output_details()

        def run_interpreter(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            for name in INPUT_NAMES:
                it.set_tensor(inputs[name]["index"], feed[name])
            it.invoke()
            return [_dequantize(it.get_tensor(d["index"]), d) for d in outputs]

        return run_interpreter

    def _run_row(self, row: dict[str, np.ndarray]) -> list[np.ndarray]:
        attended = np.flatnonzero(row["attention_mask"][0])
        used = int(attended[-1]) + 1 if attended.size else 1
        length = _bucket(used, self._lengths)
        if length is None:
            raise UserError(
                f"the input has {used} tokens; this model takes at most {self.max_seq_len}: "
                f"truncate to {self.max_seq_len} tokens"
            )
        return self._runner(length)({n: _zero_padded(a, used, length) for n, a in row.items()})

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        feeds = cast_feeds(feeds, self.input_names, self.input_dtypes)
        return run_by_rows(self._run_row, feeds, 1)  # every bucket is a batch-1 length


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

    def open_interpreter() -> Any:
        return open_model(
            path,
            "TFLite",
            lambda: interpreter_class(model_path=str(path), num_threads=threads),
            not_a_model=(ValueError,),  # "The model is not a valid Flatbuffer buffer"
            magic=b"TFL3",
        )

    session = LiteRTSession(lambda: _quietly(open_interpreter), Path(path))
    if session._lengths:
        session._runner(session._lengths[0])  # the shortest bucket, ready before the first run
    return session
