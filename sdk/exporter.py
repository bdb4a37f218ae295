"""``pocketbert.export``: a model directory or hub id -> verified bundles."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pocketbert import __version__
from pocketbert.bundle import open_bundle, staging, write_manifest
from pocketbert.core.errors import UserError, choices
from pocketbert.core.progress import Progress, native_output_to
from pocketbert.core.texts import BUILTIN, read_texts
from pocketbert.tokenize import Encoder
from pocketbert.verify import check

PRECISIONS = ("fp32", "int8-dynamic", "int8-static")
CALIBRATION_SAMPLES = 128
VERIFY_SAMPLES = 256


@dataclass(frozen=True)
class ExportOptions:
    """Everything that decides an export; hashed into the manifest as the recipe."""

    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    task: str | None = None
    max_seq_len: int = 128
    calibration: str | None = None
    allow_parity_failure: bool = False

    def __post_init__(self) -> None:
        from pocketbert.converters import EXPORTERS

        for f in self.formats:
            if f not in EXPORTERS:
                raise UserError(
                    f"unknown format '{f}'; choose one of: {choices([*EXPORTERS, 'all'])}"
                )
        for p in self.precisions:
            if p not in PRECISIONS:
                raise UserError(
                    f"unknown precision '{p}'; choose one of: {choices([*PRECISIONS, 'all'])}"
                )
        if not 8 <= self.max_seq_len <= 4096:
            raise UserError(f"--max-seq-len {self.max_seq_len} is out of range; give 8 to 4096")

    def recipe_hash(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass
class Result:
    format: str
    precision: str
    path: Path | None
    parity: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)  # the exporter's shipping checks
    error: str | None = None
    seconds: float = 0.0


def _calibration_name(calibration) -> str | None:
    if calibration is None:
        return None
    if isinstance(calibration, list | tuple):
        digest = hashlib.sha256("\n".join(map(str, calibration)).encode()).hexdigest()
        return f"list:{len(calibration)}:{digest[:16]}"
    return str(calibration)


def _expand(value: str | list[str] | tuple[str, ...], every: tuple[str, ...]) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else list(value)
    return every if "all" in values else tuple(values)


def export(
    model: str | Path,
    out: str | Path,
    *,
    format: str | list[str] = "onnx",
    precision: str | list[str] = "fp32",
    task: str | None = None,
    calibration: str | Path | list[str] | None = None,
    max_seq_len: int = 128,
    allow_parity_failure: bool = False,
    quiet: bool = False,
) -> list[Result]:
    """Export ``model`` to every requested format x precision; verify each; write bundles.

    One format and precision: ``out`` is the bundle. Several: ``out/<format>-<precision>``.
    A bundle is written only if its file loads in its own runtime and passes the parity
    gate (or ``allow_parity_failure``). Bad input raises UserError before anything is written.
    """
    from pocketbert.converters.architectures import preflight

    preflight(model, task, max_seq_len)  # bad model input is refused before torch loads
    from pocketbert.converters import EXPORTERS

    options = ExportOptions(
        formats=_expand(format, tuple(EXPORTERS)),
        precisions=_expand(precision, PRECISIONS),
        task=task,
        max_seq_len=max_seq_len,
        calibration=_calibration_name(calibration),
        allow_parity_failure=allow_parity_failure,
    )
    if isinstance(calibration, list | tuple):
        texts = [t for t in (str(x).strip() for x in calibration) if t]
        if not texts:
            raise UserError("the calibration list holds no text; give at least one sentence")
    else:
        texts = read_texts(calibration) if calibration else list(BUILTIN)
    progress = Progress(quiet=quiet)
    with progress.step(f"loading {model}"):
        from pocketbert.converters.model import export_ready, load_model

        loaded = load_model(model, options.task, max_seq_len=options.max_seq_len)
        module = export_ready(loaded)
    jobs = [(f, p) for f in options.formats for p in options.precisions]
    single = len(jobs) == 1
    out = Path(out)
    with _tokenizer_files(loaded.tokenizer) as tok_dir:
        job = _Job(loaded, module, options, texts, tok_dir)
        results = []
        for fmt, prec in progress.iterate(jobs, "exporting", lambda j: f"{j[0]} {j[1]}"):
            if single:
                results.append(job.run(fmt, prec, out))
                continue
            try:  # one failed format x precision must not cost the others
                results.append(job.run(fmt, prec, out / f"{fmt}-{prec}"))
            except UserError as exc:
                progress.say(f"✗ {fmt} {prec}: {exc}")
                results.append(Result(fmt, prec, None, error=str(exc)))
    failed = [r for r in results if r.error]
    if failed:
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        written = len(results) - len(failed)
        raise ExportFailed(
            f"{len(failed)} of {len(results)} exports failed "
            f"({'; '.join(f'{r.format} {r.precision}: {r.error}' for r in failed)}); "
            f"{written} verified bundle(s) written under {out}",
            results,
        )
    return results


class ExportFailed(UserError):
    """Some of several exports failed; ``results`` holds every outcome."""

    def __init__(self, message: str, results: list[Result]) -> None:
        super().__init__(message)
        self.results = results


class _tokenizer_files:
    """tokenizer.json + vocab.txt of the model's tokenizer, in a temporary directory."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def __enter__(self) -> Path:
        self.dir = Path(tempfile.mkdtemp(prefix="pocketbert-tok-"))
        self.tokenizer.backend_tokenizer.save(str(self.dir / "tokenizer.json"))
        vocab = sorted(self.tokenizer.get_vocab().items(), key=lambda kv: kv[1])
        (self.dir / "vocab.txt").write_text("".join(f"{tok}\n" for tok, _ in vocab))
        return self.dir

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class _Job:
    """One model's shared state across its format x precision exports."""

    def __init__(self, loaded, module, options: ExportOptions, texts: list[str], tok_dir: Path):
        self.loaded, self.module, self.options, self.tok_dir = loaded, module, options, tok_dir
        self.calibration_texts = texts[:CALIBRATION_SAMPLES]
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

    def spec(self, fmt: str, precision: str):
        from pocketbert.converters.spec import ExportSpec

        n = self.options.max_seq_len
        sample = self.encoder(n).feed(BUILTIN[0])
        static = precision == "int8-static"
        calibration = self.encoder(None).feeds(self.calibration_texts) if static else []
        return ExportSpec(fmt, precision, self.loaded.task, n, sample, calibration)

    def run(self, fmt: str, precision: str, target: Path) -> Result:
        from pocketbert.converters import EXPORTERS

        info = EXPORTERS[fmt]
        start = time.perf_counter()
        log = Path(tempfile.mkstemp(prefix=f"pocketbert-{fmt}-{precision}-", suffix=".log")[1])
        with staging(target) as stage:
            try:
                with native_output_to(log):
                    exported = info.export(
                        self.module, self.spec(fmt, precision), stage / f"model{info.suffix}"
                    )
            except UserError:
                log.unlink(missing_ok=True)
                raise
            except Exception as exc:
                raise RuntimeError(
                    f"{fmt} {precision} export failed; converter log: {log}"
                ) from exc
            log.unlink()
            feeds, reference = self.feeds_and_reference(
                None if exported.dynamic_seq else self.options.max_seq_len
            )
            parity = check(
                exported.path, feeds, reference, precision=precision, task=self.loaded.task
            )
            if not parity["passed"] and not self.options.allow_parity_failure:
                raise UserError(
                    f"{fmt} {precision} failed the parity gate ({parity['gate']}: "
                    f"{_figures(parity)}); no bundle written. Try another precision or pass "
                    "--allow-parity-failure to keep it anyway"
                )
            self._write_assets(stage)
            write_manifest(stage, self._manifest(fmt, precision, exported, parity))
            open_bundle(stage)
        seconds = time.perf_counter() - start
        return Result(fmt, precision, target, parity, exported.checks, seconds=seconds)

    def _write_assets(self, stage: Path) -> None:
        for name in ("tokenizer.json", "vocab.txt"):
            shutil.copy(self.tok_dir / name, stage / name)
        (stage / "labels.json").write_text(json.dumps(self.loaded.labels, indent=2) + "\n")

    def _manifest(self, fmt: str, precision: str, exported, parity: dict) -> dict:
        from pocketbert.converters import EXPORTERS

        n = self.options.max_seq_len
        seq = "seq" if exported.dynamic_seq else n
        return {
            "format": fmt,
            "precision": precision,
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
            "shape": _shape(self.loaded.config),
            "source": {"model": self.loaded.source, "sha256": self.loaded.source_hash},
            "recipe": {**asdict(self.options), "sha256": self.options.recipe_hash()},
            "calibration": {
                "source": self.options.calibration or "builtin",
                "samples": len(self.calibration_texts) if precision == "int8-static" else 0,
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


def _figures(parity: dict) -> str:
    keys = ("max_abs_diff", "argmax_agreement", "mean_cosine")
    return ", ".join(f"{k}={parity[k]:.4g}" for k in keys if k in parity)
