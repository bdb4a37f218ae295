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
from pocketbert.converters.quantization import Precision, config_dict, describe
from pocketbert.core.errors import UserError
from pocketbert.core.progress import native_output_to
from pocketbert.core.texts import BUILTIN
from pocketbert.gate_text import GateText
from pocketbert.tokenize import Encoder
from pocketbert.verify import check, failure


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
    shipped: str | None = None  # the recipe written, when a fallback replaced ``precision``

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

    def __init__(
        self, loaded, module, options, gate: GateText, tok_dir: Path, work_dir: Path, say=None
    ):
        self.loaded, self.module, self.options, self.tok_dir = loaded, module, options, tok_dir
        self.work_dir = work_dir
        self.gate = gate
        self.say = say or (lambda message: None)
        self._references: dict[int | None, tuple] = {}
        self._variants: dict[tuple, object] = {}  # export_ready(**options) per recipe kind
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
            feeds = self.encoder(pad_to).feeds(self.gate.verify.texts)
            self._references[pad_to] = (feeds, torch_outputs(self.loaded.module, feeds))
        return self._references[pad_to]

    def calibration_texts(self, config: Precision) -> list[str]:
        n = config.calibration_samples
        return self.gate.calibration.texts[:n] if n else []

    def spec(self, fmt: str, config: Precision):
        from pocketbert.converters.spec import ExportSpec

        n = self.options.max_seq_len
        sample = self.encoder(n).feed(BUILTIN[0])
        calibration = self.encoder(None).feeds(self.calibration_texts(config))
        return ExportSpec(
            fmt, config, self.loaded.task, n, sample, calibration, work_dir=self.work_dir
        )

    def module_for(self, fmt: str, config: Precision):
        """The export-ready module of one recipe: the default one, or the rewrites its
        exporter asks for (``rewrites`` in converters/registry.py), made once per kind."""
        from pocketbert.converters import EXPORTERS

        options = EXPORTERS[fmt].rewrites(config, self.loaded.module)
        if not options:
            return self.module
        key = tuple(sorted(options.items()))
        if key not in self._variants:
            from pocketbert.converters.model import export_ready

            self._variants[key] = export_ready(self.loaded, **options)
        return self._variants[key]

    def log_path(self, fmt: str, config: Precision) -> Path:
        return self.work_dir / f"{fmt}-{config.name}.log"

    def recipes(self, fmt: str, config: Precision) -> list[Precision]:
        """The requested recipe, then its fallbacks that this format exports.

        ``--allow-parity-failure`` asks for the requested recipe as it is: no fallback.
        """
        from pocketbert.converters import EXPORTERS

        if self.options.allow_parity_failure:
            return [config]
        handled = EXPORTERS[fmt].handles
        return [config, *(c for c in config.fallbacks() if type(c) in handled)]

    def _attempt(self, fmt: str, config: Precision, out: Path, log: Path):
        """Export one recipe at ``out`` and judge it: (exported, parity record)."""
        from pocketbert.converters import EXPORTERS

        # the converters' and runtimes' native chatter (XNNPACK, cpuinfo) goes to the log
        with native_output_to(log):
            exported = EXPORTERS[fmt].export(
                self.module_for(fmt, config), self.spec(fmt, config), out
            )
            feeds, reference = self.feeds_and_reference(
                None if exported.dynamic_seq else self.options.max_seq_len
            )
            parity = check(
                exported.path,
                feeds,
                reference,
                precision=config,
                task=self.loaded.task,
                labels=self.gate.ids,
            )
        return exported, parity

    def run(self, fmt: str, config: Precision, target: Path) -> Result:
        """Export, verify and write one bundle at ``target`` (atomically).

        A recipe that misses its gate gives way to the next of ``recipes`` (one line
        each); the manifest records every recipe tried and which one shipped.
        """
        from pocketbert.converters import EXPORTERS

        start = time.perf_counter()
        recipes = self.recipes(fmt, config)
        tried, misses = [], []
        with staging(target) as stage:
            out = stage / f"model{EXPORTERS[fmt].suffix}"
            for i, recipe in enumerate(recipes):
                out.unlink(missing_ok=True)
                # every recipe of the job logs to the job's log (kept beside out on a bug)
                exported, parity = self._attempt(fmt, recipe, out, self.log_path(fmt, config))
                record = {"precision": describe(recipe), "quantization": config_dict(recipe)}
                tried.append({**record, **parity})
                if parity["passed"]:
                    break
                misses.append(failure(parity, recipe, self.loaded.task))
                if i + 1 < len(recipes):
                    self.say(
                        f"{fmt} {describe(recipe)} missed the parity gate ({misses[-1]}); "
                        f"trying {describe(recipes[i + 1])}"
                    )
            if not parity["passed"] and not self.options.allow_parity_failure:
                each = (
                    misses[0]
                    if len(misses) == 1
                    else "; ".join(
                        f"{t['precision']}: {m}" for t, m in zip(tried, misses, strict=True)
                    )
                )
                raise UserError(
                    f"{fmt} {config.name} failed the parity gate ({each}); no bundle written; "
                    "try another precision or pass --allow-parity-failure"
                )
            self._write_assets(stage, exported)
            parity = {**parity, "tried": tried}
            write_manifest(stage, self._manifest(fmt, config, recipe, exported, parity))
            open_bundle(stage)
        seconds = time.perf_counter() - start
        return Result(
            fmt, config.name, target, parity, exported.checks, seconds=seconds, shipped=recipe.name
        )

    def _write_assets(self, stage: Path, exported) -> None:
        # the bundle's tokenizer cuts (and, for a fixed-length file, pads) at the bundle's
        # own length, not at whatever the source's tokenizer.json was saved with
        n = self.options.max_seq_len
        pad_to = None if exported.dynamic_seq else n
        write_tokenizer(self.tok_dir / "tokenizer.json", stage / "tokenizer.json", n, pad_to=pad_to)
        shutil.copy(self.tok_dir / "vocab.txt", stage / "vocab.txt")
        (stage / "labels.json").write_text(json.dumps(self.loaded.labels, indent=2) + "\n")

    def _manifest(
        self, fmt: str, requested: Precision, config: Precision, exported, parity: dict
    ) -> dict:
        """The bundle's manifest; ``config`` is the recipe that shipped."""
        from pocketbert.converters import EXPORTERS

        n = self.options.max_seq_len
        seq = "seq" if exported.dynamic_seq else n
        return {
            "format": fmt,
            "precision": config.name,
            "quantization": config_dict(config),
            "requested": {"precision": requested.name, "quantization": config_dict(requested)},
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
            "verification": self.gate.verify.record(len(self.gate.verify.texts)),
            "calibration": self.gate.calibration.record(len(self.calibration_texts(config))),
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
