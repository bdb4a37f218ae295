"""One model's format x precision jobs: spec, export, parity gate, bundle files, manifest."""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pocketbert import __version__
from pocketbert.bundle import open_bundle, staging, write_manifest, write_tokenizer
from pocketbert.converters.quantization import Precision, config_dict
from pocketbert.core.errors import UserError
from pocketbert.core.progress import native_output_to
from pocketbert.core.texts import BUILTIN
from pocketbert.tokenize import Encoder
from pocketbert.verify import check

VERIFY_SAMPLES = 256


@dataclass
class Result:
    """One job's outcome: a written bundle (``path``), or ``error`` (``bug``: not the input's
    fault; ``log``: the converter's log, kept beside the output)."""

    format: str
    precision: str
    path: Path | None
    parity: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)  # the exporter's shipping checks
    error: str | None = None
    seconds: float = 0.0
    bug: bool = False
    log: Path | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> str:
        return "written" if self.path else ("bug" if self.bug else "failed")


def save_tokenizer(tokenizer, directory: Path) -> Path:
    """tokenizer.json + vocab.txt of the model's tokenizer, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(directory / "tokenizer.json"))
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    (directory / "vocab.txt").write_text("".join(f"{tok}\n" for tok, _ in vocab))
    return directory


class Job:
    """One model's shared state across its format x precision exports.

    ``work_dir`` is the run's temporary directory (removed by the caller on every exit
    path): converter logs and the exporters' intermediate files live there.
    """

    def __init__(self, loaded, module, options, texts: list[str], tok_dir: Path, work_dir: Path):
        self.loaded, self.module, self.options, self.tok_dir = loaded, module, options, tok_dir
        self.work_dir = work_dir
        self.texts = texts
        self.verify_texts = texts[:VERIFY_SAMPLES]
        self._references: dict[int | None, tuple] = {}
        self._encoders: dict[int | None, Encoder] = {}

    def encoder(self, pad_to: int | None) -> Encoder:
        """The model's tokenizer at natural length (None) or padded to ``pad_to``; built once."""
        if pad_to not in self._encoders:
            path = self.tok_dir / "tokenizer.json"
            self._encoders[pad_to] = Encoder(path, self.options.max_seq_len, pad_to=pad_to)
        return self._encoders[pad_to]

    def feeds_and_reference(self, pad_to: int | None):
        """Verification feeds (natural length, or padded) and torch's outputs on them."""
        from pocketbert.converters.reference import torch_outputs

        if pad_to not in self._references:
            feeds = self.encoder(pad_to).feeds(self.verify_texts)
            self._references[pad_to] = (feeds, torch_outputs(self.loaded.module, feeds))
        return self._references[pad_to]

    def calibration_texts(self, config: Precision) -> list[str]:
        return self.texts[: config.calibration_samples] if config.calibration_samples else []

    def spec(self, fmt: str, config: Precision):
        from pocketbert.converters.spec import ExportSpec

        n = self.options.max_seq_len
        sample = self.encoder(n).feed(BUILTIN[0])
        calibration = self.encoder(None).feeds(self.calibration_texts(config))
        return ExportSpec(
            fmt, config, self.loaded.task, n, sample, calibration, work_dir=self.work_dir
        )

    def log_path(self, fmt: str, config: Precision) -> Path:
        return self.work_dir / f"{fmt}-{config.name}.log"

    def run(self, fmt: str, config: Precision, target: Path) -> Result:
        """Export, verify and write one bundle at ``target`` (atomically)."""
        from pocketbert.converters import EXPORTERS

        info = EXPORTERS[fmt]
        start = time.perf_counter()
        with staging(target) as stage:
            # the converters' and runtimes' native chatter (XNNPACK, cpuinfo) goes to the log
            with native_output_to(self.log_path(fmt, config)):
                exported = info.export(
                    self.module, self.spec(fmt, config), stage / f"model{info.suffix}"
                )
                feeds, reference = self.feeds_and_reference(
                    None if exported.dynamic_seq else self.options.max_seq_len
                )
                parity = check(
                    exported.path, feeds, reference, precision=config, task=self.loaded.task
                )
            if not parity["passed"] and not self.options.allow_parity_failure:
                tolerance = config.tolerance(self.loaded.task)
                raise UserError(
                    f"{fmt} {config.name} failed the parity gate "
                    f"({tolerance.failure(parity[tolerance.metric])}); no bundle written; "
                    "try another precision or pass --allow-parity-failure"
                )
            self._write_assets(stage, exported)
            write_manifest(stage, self._manifest(fmt, config, exported, parity))
            open_bundle(stage)
        seconds = time.perf_counter() - start
        return Result(fmt, config.name, target, parity, exported.checks, seconds=seconds)

    def _write_assets(self, stage: Path, exported) -> None:
        # the bundle's tokenizer cuts (and, for a fixed-length file, pads) at the bundle's
        # own length, not at whatever the source's tokenizer.json was saved with
        n = self.options.max_seq_len
        pad_to = None if exported.dynamic_seq else n
        write_tokenizer(self.tok_dir / "tokenizer.json", stage / "tokenizer.json", n, pad_to=pad_to)
        shutil.copy(self.tok_dir / "vocab.txt", stage / "vocab.txt")
        (stage / "labels.json").write_text(json.dumps(self.loaded.labels, indent=2) + "\n")

    def _manifest(self, fmt: str, config: Precision, exported, parity: dict) -> dict:
        from pocketbert.converters import EXPORTERS

        n = self.options.max_seq_len
        seq = "seq" if exported.dynamic_seq else n
        return {
            "format": fmt,
            "precision": config.name,
            "quantization": config_dict(config),
            "task": self.loaded.task,
            "runtime": EXPORTERS[fmt].runtime,
            "model_file": exported.path.name,
            "inputs": [
                {"name": name, "dtype": exported.input_dtype, "shape": [1, seq]}
                for name in ("input_ids", "attention_mask")
            ],
            "output": {"name": "output", "dtype": "float32", "kind": self.loaded.task},
            "max_seq_len": n,
            "dynamic_seq": exported.dynamic_seq,
            "architecture": self.loaded.config.model_type,
            # how an embedding is pooled and whether it is normalised (modules.json, if any)
            "pooling": self.loaded.pooling.to_dict() if self.loaded.pooling else None,
            "shape": _shape(self.loaded.config),
            "source": {"model": self.loaded.source, "sha256": self.loaded.source_hash},
            "recipe": {**self.options.as_dict(), "sha256": self.options.recipe_hash()},
            "calibration": {
                "source": self.options.calibration or "builtin",
                "samples": len(self.calibration_texts(config)),
            },
            "tools": {
                "pocketbert": __version__,
                "python": platform.python_version(),
                **exported.tools,
            },
            "checks": exported.checks,
            "parity": parity,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def _shape(config) -> dict:
    """Layers, width and heads of the model (names differ between architectures)."""

    def first(*names):
        return next((getattr(config, n) for n in names if getattr(config, n, None)), None)

    return {
        "layers": first("num_hidden_layers", "n_layers"),
        "hidden": first("hidden_size", "dim"),
        "heads": first("num_attention_heads", "n_heads"),
        "intermediate": first("intermediate_size", "hidden_dim"),
    }
