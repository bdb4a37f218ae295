"""The FPGA integer program (``.fpga``): an emulator of its integer datapath, numpy only.

Every op reads and writes integers (int8/int16 activations, int32 accumulators, int64
intermediates) exactly as converters/export_fpga.py documents; the last tensor (int32
logits, or a masked int32 sum for embeddings) becomes float32 only at the very end.
int8 x int8 (and uint8 x int8) matmuls run on float32 BLAS over slices of at most 1024
terms: every product is at most 2**14 in magnitude, so every partial sum of a slice is
an integer of at most 2**24, which float32 holds exactly; the slices are summed in
int64. The result is the int32 accumulator bit for bit in any summation order, hence
on any thread count (tests check it against int64 matmul).
"""

from __future__ import annotations

import ctypes
import functools
import json
from pathlib import Path

import numpy as np

from pocketbert.core.errors import UserError
from pocketbert.runtimes import fpga_kernels as K
from pocketbert.runtimes.registry import register_runtime
from pocketbert.runtimes.tensors import cast_feeds, not_a_model_error, open_model, run_by_rows

FORMAT, VERSION = "pocketbert-fpga", 1
I64 = np.int64
_SAT = {8: (-128, 127), 16: (-32768, 32767), 24: (-(2**23), 2**23 - 1), 32: (-(2**31), 2**31 - 1)}
OPS: dict[str, object] = {}


def _op(name: str):
    def decorator(fn):
        OPS[name] = fn
        return fn

    return decorator


SOFTMAX_HEADS = 3  # heads per softmax call (3: 0.7x the time of all 12 at once at seq 128)
EXACT_TERMS = 1024  # 1024 * 2**14 = 2**24: float32's exact integers


def int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer ``a @ b`` for 8-bit operands (int8 or uint8) via float32 BLAS, or for
    int16 x int8 via float64 (``b`` float64: |sums| < 2**22 * 2**31 terms < 2**53)."""
    if b.dtype == np.float64:
        return np.matmul(a.astype(np.float64), b).astype(I64)
    k = a.shape[-1]
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    if k <= EXACT_TERMS:
        return np.matmul(a32, b32).astype(I64)
    out = None
    for start in range(0, k, EXACT_TERMS):
        part = np.matmul(
            a32[..., start : start + EXACT_TERMS], b32[..., start : start + EXACT_TERMS, :]
        )
        out = part.astype(I64) if out is None else out + part.astype(I64)
    return out


class Program:
    def __init__(self, prog: dict, tensors: dict[str, np.ndarray]) -> None:
        self.prog, self.t = prog, tensors
        self.nodes = prog["nodes"]
        self.trace: dict | None = None
        # matmul operands, converted once: int8 weights, transposed, as float32 (exact)
        self.wf = {
            n["w"]: tensors[n["w"]].T.astype(np.float32 if n["acc_bits"] == 32 else np.float64)
            for n in self.nodes
            if "w" in n
        }

    def rq(self, node: dict, x, prefix: str | None = None, bits: int | None = None):
        prefix = prefix or node["output"]
        lo, hi = _SAT[bits or node["bits"]]
        return K.requantize(x, self.t[f"{prefix}.m"], self.t[f"{prefix}.shift"], lo, hi)

    def run_row(self, ids: np.ndarray, mask: np.ndarray, trace: dict | None = None) -> np.ndarray:
        self.trace = trace  # ops with internals (attention) record them here too
        env = {"input_ids": ids.astype(I64), "attention_mask": mask != 0}
        env["positions"] = np.arange(len(ids))
        for node in self.nodes:
            args = [env[i if i != "mask" else "attention_mask"] for i in node["inputs"]]
            env[node["output"]] = OPS[node["op"]](self, node, *args)
            if trace is not None:
                trace[node["output"]] = env[node["output"]]
        out = env[self.prog["output"]].astype(np.float64) * self.t["output.scale"]
        if self.prog["task"] == "embedding":
            out = out / max(int(mask.astype(bool).sum()), 1)
        return out.astype(np.float32)


def _check_ids(ids: np.ndarray, rows: int) -> None:
    if len(ids) and (ids.min() < 0 or ids.max() >= rows):
        raise UserError(
            f"token id {int(ids.max() if ids.max() >= rows else ids.min())} is outside this "
            f"model's table of {rows} rows; give ids from the bundle's own tokenizer"
        )


@_op("embed")
def _embed(p: Program, n: dict, ids):
    _check_ids(ids, len(p.t[n["word"]]))
    return p.t[n["word"]][ids].astype(I64) + p.t[n["pos"]][: len(ids)].astype(I64)


@_op("lookup")
def _lookup(p: Program, n: dict, index):
    _check_ids(index, len(p.t[n["table"]]))
    return p.t[n["table"]][index].astype(I64)


@_op("trigram")
def _trigram(p: Program, n: dict, x):
    """MobileBERT's [next token, token, previous token] rows, zeros beyond the ends."""
    nxt, prv = np.zeros_like(x), np.zeros_like(x)
    nxt[:-1], prv[1:] = x[1:], x[:-1]
    return np.concatenate([nxt, x, prv], axis=-1)


@_op("nonorm")
def _nonorm(p: Program, n: dict, x):
    return p.rq(n, x * p.t[n["g"]].astype(I64) + p.t[n["b"]].astype(I64))


@_op("layernorm")
def _layernorm(p: Program, n: dict, x):
    return p.rq(n, K.i_layernorm(x, p.t[n["g"]], p.t[n["b"]], n["fraction"]))


@_op("linear")
def _linear(p: Program, n: dict, x):
    acc = int_matmul(x, p.wf[n["w"]])  # exact, see the top
    acc += p.t[n["b"]]
    return acc if n["bits"] == 32 else p.rq(n, acc)


@_op("add")
def _add(p: Program, n: dict, a, b):
    o = n["output"]
    total = p.rq(n, a, f"{o}.a", 32)
    total += p.rq(n, b, f"{o}.b", 32)
    return np.clip(total, *_SAT[n["bits"]], out=total)


@_op("attention")
def _attention(p: Program, n: dict, q, k, v, mask):
    t, width = q.shape
    h = n["heads"]
    d = width // h
    qh, kh, vh = (a.reshape(t, h, d).transpose(1, 0, 2) for a in (q, k, v))
    scores = int_matmul(qh, kh.transpose(0, 2, 1))  # [h, t, t], int32
    consts = (n["lift"], n["q_ln2"], n["q_b"], n["q_c"], n["softmax_bits"])
    probs = np.empty(scores.shape, dtype=I64)
    for g in range(0, h, SOFTMAX_HEADS):  # a few heads at a time: their temporaries stay in cache
        probs[g : g + SOFTMAX_HEADS] = K.i_softmax(
            scores[g : g + SOFTMAX_HEADS], mask[None, None, :], *consts
        )
    if p.trace is not None:
        p.trace[f"{n['output']}.scores"], p.trace[f"{n['output']}.probs"] = scores, probs
    ctx = int_matmul(probs, vh).transpose(1, 0, 2).reshape(t, width)
    return p.rq(n, ctx)


@_op("gelu")
def _gelu(p: Program, n: dict, x):
    return p.rq(n, K.i_gelu(x, n["q_b"], n["q_c"], n["q_one"]))


@_op("relu")
def _relu(p: Program, n: dict, x):
    return np.maximum(x, 0)


@_op("tanh")
def _tanh(p: Program, n: dict, x):
    """tanh(x) = sgn(x) (1 - e) / (1 + e), e = exp(-2|x|) by i-exp; int8 at 2**-7."""
    consts = (n["lift"], n["q_ln2"], n["q_b"], n["q_c"])
    e = K.i_exp(-np.abs(np.asarray(x, dtype=I64)), *consts)
    one = K.i_exp(np.zeros(1, dtype=I64), *consts)
    t = K.divide_round(np.left_shift(one - e, 7), one + e)
    return np.clip(np.sign(x) * t, -128, 127)


@_op("requant")
def _requant(p: Program, n: dict, x):
    return p.rq(n, x)


@_op("cls")
def _cls(p: Program, n: dict, x):
    return x[:1]


@_op("pool")
def _pool(p: Program, n: dict, x, mask):
    return np.sum(np.where(mask[:, None], x, 0), axis=0, keepdims=True, dtype=I64)


@functools.cache
def _keep_freed_heap() -> None:
    """Let glibc keep freed heap for reuse (mmap threshold 32 MB, trim threshold 64 MB).

    Each op makes MB-sized numpy temporaries (a [128, 1536] int64 is 1.5 MB). Left at its
    defaults, glibc maps such arrays fresh or hands the freed heap back to the kernel,
    which zeroes every page again when the next op faults it in: 35-40% of the emulator's
    time at seq 128. Both thresholds must be set (setting one fixes the other at its
    128 KB default). Process-wide and once; a C library without ``mallopt`` is left as
    it is. The cost is up to 64 MB of freed heap the process keeps.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # no C library by that name, or no mallopt
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
    mallopt(M_MMAP_THRESHOLD, 32 << 20)
    mallopt(M_TRIM_THRESHOLD, 64 << 20)


class FpgaSession:
    input_names = ["input_ids", "attention_mask"]

    def __init__(self, program: Program) -> None:
        self.program = program
        _keep_freed_heap()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        feeds = cast_feeds(feeds, self.input_names, {n: np.int64 for n in self.input_names})
        return run_by_rows(self._run, feeds, -1)

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = []
        for ids, mask in zip(feeds["input_ids"], feeds["attention_mask"], strict=True):
            keep = mask != 0  # right-padded rows: pad positions only ever act as masked keys
            rows.append(self.program.run_row(ids[keep], mask[keep]))
        return [np.concatenate(rows, axis=0)]


def read_program(path: Path) -> Program:
    """The program and its tensors; anything that is not one is a UserError naming the file."""
    from safetensors import SafetensorError, safe_open

    def load():
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not iterable)
        return meta, tensors

    meta, tensors = open_model(
        path, "fpga", load, not_a_model=(SafetensorError, ValueError, OSError)
    )
    try:
        prog = json.loads(meta["program"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise not_a_model_error(path, "fpga", "no program in its header") from exc
    if prog.get("format") != FORMAT or prog.get("version") != VERSION:
        raise not_a_model_error(path, "fpga", f"not a {FORMAT} {VERSION} program")
    unknown = sorted({n.get("op") for n in prog["nodes"]} - set(OPS))
    if unknown:
        raise UserError(
            f"'{path}' uses op(s) {', '.join(map(str, unknown))} this runtime does not have; "
            f"it runs: {', '.join(OPS)}"
        )
    missing = sorted(t for n in prog["nodes"] for t in node_tensors(n) if t not in tensors)
    if missing or "output.scale" not in tensors:
        raise not_a_model_error(path, "fpga", f"tensors missing: {missing or ['output.scale']}")
    return Program(prog, tensors)


def node_tensors(node: dict):
    """The names of the tensors a program node reads (its constants and requant pairs)."""
    for key in ("word", "pos", "table", "w", "b", "g"):
        if key in node:
            yield node[key]
    for prefix in node.get("requant", ()):
        yield f"{prefix}.m"
        yield f"{prefix}.shift"


@register_runtime("fpga", suffix=".fpga", module="numpy", install="numpy", imports=("safetensors",))
def load(path: Path, *, threads: int | None = None) -> FpgaSession:
    """``threads`` is accepted and changes nothing: the result is exact integers."""
    return FpgaSession(read_program(Path(path)))
