"""Golden vectors of an FPGA program: every op's integer inputs and output, per sentence.

Layout of a vectors directory (written whole at a temporary name, then renamed):

    vectors.json            format, version, the program file's sha256, the sentences'
                            count, and the op list in order: index, op, inputs, output,
                            bits, and the dtype each tensor is stored in
    sentence-000.safetensors  one per sentence: ``input_ids`` (int32), ``attention_mask``
                            (uint8) of the unpadded tokens, then every op's output under
                            its own name (int8 / int16 / int32 by the op's bit width), and
                            inside each attention op ``<name>.scores`` (int32, [heads, T,
                            T]) and ``<name>.probs`` (uint8 at 2**-8)

An op's inputs are the tensors its ``inputs`` name (the model inputs or earlier ops'
outputs), so a hardware test feeds those to its own unit and compares the bytes of the
output. ``replay`` does exactly that with this emulator.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from pocketbert.core.errors import UserError
from pocketbert.runtimes import fpga as F

FORMAT, VERSION = "pocketbert-fpga-vectors", 1
_DTYPES = {8: np.int8, 16: np.int16, 24: np.int32, 32: np.int32}


def program_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _stored(node: dict) -> np.dtype:
    return np.dtype(_DTYPES[node["bits"]])


def write(program_path: Path, feeds: list[dict[str, np.ndarray]], out: Path) -> Path:
    """Golden vectors of ``feeds`` (batch-1 feeds, padding allowed) at directory ``out``."""
    from safetensors.numpy import save_file

    out = Path(out)
    if out.exists():
        raise UserError(f"'{out}' already exists; give a new directory for the vectors")
    program = F.read_program(Path(program_path))
    tmp = Path(tempfile.mkdtemp(prefix=".vectors-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the vectors are an ordinary directory
    try:
        for i, feed in enumerate(feeds):
            keep = np.asarray(feed["attention_mask"])[0] != 0
            ids = np.asarray(feed["input_ids"])[0][keep]
            trace: dict = {}
            program.run_row(ids, np.ones(len(ids), np.int64), trace)
            tensors = {
                "input_ids": ids.astype(np.int32),
                "attention_mask": np.ones(len(ids), np.uint8),
            }
            for node in program.nodes:
                tensors[node["output"]] = _narrow(trace[node["output"]], _stored(node))
                if node["op"] == "attention":
                    for part, dtype in (("scores", np.int32), ("probs", np.uint8)):
                        key = f"{node['output']}.{part}"
                        tensors[key] = _narrow(trace[key], np.dtype(dtype))
            save_file(tensors, str(tmp / f"sentence-{i:03d}.safetensors"))
        index = {
            "format": FORMAT,
            "version": VERSION,
            "program_sha256": program_hash(program_path),
            "sentences": len(feeds),
            "ops": [
                {
                    "index": j,
                    "op": n["op"],
                    "inputs": n["inputs"],
                    "output": n["output"],
                    "bits": n["bits"],
                    "dtype": str(_stored(n)),
                }
                for j, n in enumerate(program.nodes)
            ],
        }
        (tmp / "vectors.json").write_text(json.dumps(index, indent=1))
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _narrow(value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    if value.size and (value.min() < info.min or value.max() > info.max):
        raise AssertionError(f"a traced tensor leaves its {dtype} width")  # a program bug
    return np.ascontiguousarray(value.astype(dtype))


def replay(program_path: Path, vectors: Path) -> int:
    """Run every op of every sentence from its recorded inputs; the number of ops checked.

    A mismatch raises AssertionError naming the sentence and op; vectors of another
    program are a UserError.
    """
    from safetensors.numpy import load_file

    vectors = Path(vectors)
    try:
        index = json.loads((vectors / "vectors.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(
            f"'{vectors}' holds no readable vectors.json; give a vectors directory"
        ) from exc
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise UserError(
            f"'{vectors}' is not {FORMAT} {VERSION}; give vectors written by pocketbert"
        )
    if index["program_sha256"] != program_hash(program_path):
        raise UserError(
            f"the vectors in '{vectors}' belong to another program (sha256 "
            f"{index['program_sha256'][:12]}), not '{program_path}'; give that bundle's own vectors"
        )
    program = F.read_program(Path(program_path))
    checked = 0
    for i in range(index["sentences"]):
        rec = load_file(str(vectors / f"sentence-{i:03d}.safetensors"))
        env = {
            "input_ids": rec["input_ids"].astype(np.int64),
            "mask": rec["attention_mask"] != 0,
            "positions": np.arange(len(rec["input_ids"])),
        }
        for node in program.nodes:
            args = [env.get(name, rec.get(name)) for name in node["inputs"]]
            args = [a.astype(np.int64) if a.dtype != bool else a for a in args]
            got = _narrow(F.OPS[node["op"]](program, node, *args), _stored(node))
            if got.tobytes() != rec[node["output"]].tobytes():
                raise AssertionError(f"sentence {i}, op {node['output']} ({node['op']}) differs")
            checked += 1
    return checked
