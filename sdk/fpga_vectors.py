"""Golden vectors of an fpga bundle for real sentences (``runtimes.fpga_vectors`` layout).

from pocketbert.fpga_vectors import write_vectors, replay_vectors
write_vectors("out/fpga", ["a warm and funny film", "dull"], "out/vectors")
replay_vectors("out/fpga", "out/vectors")  # every op again, to the byte
"""

from __future__ import annotations

from pathlib import Path

from pocketbert.bundle import open_bundle
from pocketbert.core.errors import UserError
from pocketbert.runtimes import fpga_vectors
from pocketbert.tokenize import Encoder


def _fpga_bundle(bundle: str | Path):
    opened = open_bundle(bundle)
    if opened.manifest["format"] != "fpga":
        raise UserError(
            f"bundle '{bundle}' is {opened.manifest['format']}, not fpga; golden vectors "
            "come from an fpga bundle (pocketbert export --format fpga)"
        )
    return opened


def write_vectors(bundle: str | Path, texts: list[str], out: str | Path) -> Path:
    """Tokenize ``texts`` as the bundle does and write every op's integers at ``out``."""
    opened = _fpga_bundle(bundle)
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise UserError("no sentences for the golden vectors; give at least one text")
    m = opened.manifest
    encoder = Encoder(opened.tokenizer_path, m["max_seq_len"])
    return fpga_vectors.write(opened.model_path, [encoder.feed(t) for t in texts], Path(out))


def replay_vectors(bundle: str | Path, vectors: str | Path) -> int:
    """Replay every op of ``vectors`` on the bundle's program; the number of ops checked."""
    return fpga_vectors.replay(_fpga_bundle(bundle).model_path, Path(vectors))
