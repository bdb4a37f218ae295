"""``pocketbert.export``: a model directory or hub id -> verified bundles."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from pocketbert.converters.quantization import PRECISIONS, Precision, as_config, config_dict
from pocketbert.core.errors import UserError, choices, first_line
from pocketbert.core.progress import Progress, native_output_to
from pocketbert.core.texts import read_texts
from pocketbert.export_job import Job, Result, save_tokenizer
from pocketbert.export_output import StagedSet, check_target, remove_stale
from pocketbert.gate_text import GateText, TextSet, gate_text, read_eval

__all__ = ["PRECISIONS", "ExportBug", "ExportFailed", "ExportOptions", "Result", "export"]


@dataclass(frozen=True)
class ExportOptions:
    """Everything that decides an export; hashed into the manifest as the recipe."""

    formats: tuple[str, ...]
    precisions: tuple[Precision, ...]
    task: str | None = None
    max_seq_len: int = 128
    calibration: str | None = None
    eval: str | None = None  # the --eval file the gate verifies on
    allow_parity_failure: bool = False

    def __post_init__(self) -> None:
        from pocketbert.converters import EXPORTERS

        for f in self.formats:
            if f not in EXPORTERS:
                raise UserError(
                    f"unknown format '{f}'; choose one of: {choices([*EXPORTERS, 'all'])}"
                )
        object.__setattr__(self, "precisions", tuple(map(as_config, self.precisions)))
        names = [p.name for p in self.precisions]
        if len(set(names)) < len(names):
            raise UserError(f"precisions {names} name one twice; give each precision once")
        for f in self.formats:
            for p in self.precisions:
                EXPORTERS[f].handler(p)  # UserError: this format does not handle p
        if not 8 <= self.max_seq_len <= 4096:
            raise UserError(f"--max-seq-len {self.max_seq_len} is out of range; give 8 to 4096")

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "precisions": [{"precision": p.name, **config_dict(p)} for p in self.precisions],
        }

    def recipe_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


class ExportFailed(UserError):
    """Some exports failed on bad input; ``results`` holds every job's outcome."""

    def __init__(self, message: str, results: list[Result]) -> None:
        super().__init__(message)
        self.results = results


class ExportBug(RuntimeError):
    """An export failed on a bug in pocketbert or a converter; ``results`` holds every
    job's outcome (the failed ones name their converter log)."""

    def __init__(self, message: str, results: list[Result]) -> None:
        super().__init__(message)
        self.results = results


def _calibration_name(calibration) -> str | None:
    if calibration is None:
        return None
    if isinstance(calibration, list | tuple):
        digest = hashlib.sha256("\n".join(map(str, calibration)).encode()).hexdigest()
        return f"list:{len(calibration)}:{digest[:16]}"
    return str(calibration)


HEARTBEAT_S = 30.0  # a progress line this often during one long export


def _expand(value, every: tuple) -> tuple:
    values = list(value) if isinstance(value, list | tuple) else [value]
    return every if "all" in values else tuple(values)


def _formats_for(precisions: tuple, exporters: dict) -> tuple:
    """``--format all``: the formats that export every precision asked for (the fpga
    integer program has no fp32, so ``--format all --precision fp32`` leaves it out)."""
    try:
        configs = [as_config(p) for p in precisions]
    except UserError:
        return tuple(exporters)  # ExportOptions names the bad precision
    return tuple(
        name for name, info in exporters.items() if all(type(c) in info.handles for c in configs)
    ) or tuple(exporters)


@contextmanager
def _run_dir() -> Iterator[Path]:
    """One temporary directory for every file of this run, removed on every exit path.

    While it exists it is the process's temp dir too, so libraries that make their own
    (onnxruntime's calibration, litert-torch) make them inside it.
    """
    work = Path(tempfile.mkdtemp(prefix="pocketbert-export-"))
    saved = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(work), str(work)
    try:
        yield work
    finally:
        tempfile.tempdir = saved[0]
        if saved[1] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[1]
        shutil.rmtree(work, ignore_errors=True)


def export(
    model: str | Path,
    out: str | Path,
    *,
    format: str | list[str] = "onnx",
    precision: str | Precision | list[str | Precision] = "fp32",
    task: str | None = None,
    calibration: str | Path | list[str] | None = None,
    eval: str | Path | None = None,
    max_seq_len: int = 128,
    allow_parity_failure: bool = False,
    quiet: bool = False,
) -> list[Result]:
    """Export ``model`` to every requested format x precision; verify each; write bundles.

    ``precision``: a name (``"int8-static"``), a config (``Int8Static(calibration_samples=64)``),
    a list of them, or ``"all"``. One format and precision: ``out`` is the bundle (a
    directory, or a ``.zip``). Several: ``out/<format>-<precision>``, written as one set
    that replaces ``out`` at the end. A bundle is written only if its file loads in its own
    runtime and passes the parity gate (or ``allow_parity_failure``); an int8-static recipe
    that misses it gives way to its fallbacks (``Int8Static.fallbacks``), and the manifest
    says which recipe shipped.

    ``eval``: the text the gate verifies on (.txt, or .csv/.tsv/.jsonl with a text and an
    optional label column); by default the model directory's task_text.json, else the
    built-in sentences (``pocketbert.gate_text``). ``calibration``: the text int8-static
    calibrates on, by the same defaults; never the text the gate verifies on. Bad input raises
    UserError (``ExportFailed`` once jobs ran); a bug in a job raises ``ExportBug`` after
    the other jobs ran. Converter warnings and native log lines go to the run's log.
    """
    from pocketbert.converters.architectures import preflight

    info = preflight(model, task, max_seq_len)  # bad model input is refused before torch loads
    from pocketbert.converters import EXPORTERS

    precisions = _expand(precision, tuple(c() for c in PRECISIONS.values()))
    options = ExportOptions(
        formats=_expand(format, _formats_for(precisions, EXPORTERS)),
        precisions=precisions,
        task=task,
        max_seq_len=max_seq_len,
        calibration=_calibration_name(calibration),
        eval=None if eval is None else str(eval),
        allow_parity_failure=allow_parity_failure,
    )
    jobs = [(f, p) for f in options.formats for p in options.precisions]
    out = Path(out)
    check_target(out, len(jobs), {n: i.suffix for n, i in EXPORTERS.items()}, options.formats)
    gate = _gate_text(model, options, eval, calibration)
    if info.local and info.labels:  # unknown --eval labels: refused before torch loads
        gate.bind(info.labels, info.task)
    with warnings.catch_warnings(), _run_dir() as work:
        warnings.simplefilter("ignore")  # converter chatter, inside this call only
        return _export(model, out, options, jobs, gate, work, Progress(quiet=quiet))


def _gate_text(model, options: ExportOptions, eval, calibration) -> GateText:
    """The verification and calibration text of this run (``pocketbert.gate_text``)."""
    given = None
    if isinstance(calibration, list | tuple):
        texts = [t for t in (str(x).strip() for x in calibration) if t]
        if not texts:
            raise UserError("the calibration list holds no text; give at least one sentence")
        given = TextSet(texts, "given", options.calibration)
    elif calibration:
        given = TextSet(read_texts(calibration), "given", options.calibration)
    recipes = [r for p in options.precisions for r in (p, *p.fallbacks())]
    return gate_text(
        model,
        eval_set=read_eval(eval) if eval is not None else None,
        calibration=given,
        calibrating=max(r.calibration_samples for r in recipes),
    )


def _export(model, out: Path, options: ExportOptions, jobs, gate: GateText, work: Path, progress):
    with progress.step(f"loading {model}"), native_output_to(work / "load.log"):
        from pocketbert.converters.model import export_ready, load_model

        loaded = load_model(model, options.task, max_seq_len=options.max_seq_len)
        module = export_ready(loaded)
    gate = gate.bind(loaded.labels, loaded.task)
    tok = save_tokenizer(loaded.tokenizer, work / "tok")
    job = Job(loaded, module, options, gate, tok, work, say=progress.say)
    remove_stale(out)
    single = len(jobs) == 1
    staged = None if single else StagedSet(out)
    results = []
    try:
        name = lambda j: f"{j[0]} {j[1].name}"  # noqa: E731
        for fmt, config in progress.iterate(jobs, "exporting", name, heartbeat_s=HEARTBEAT_S):
            if single and out.suffix == ".zip":
                target = work / "zip" / out.stem
            else:
                target = out if single else staged.dir / f"{fmt}-{config.name}"
            result = _run_one(job, fmt, config, target, out, single)
            if result.error and not single:
                progress.say(f"✗ {fmt} {config.name}: {result.error}")
            results.append(result)
        if single and out.suffix == ".zip" and results[0].path:
            results[0].path = _zip(results[0].path, out)
        written = [r for r in results if r.path]
        if staged and written:  # the whole set replaces out: never two runs' bundles in one
            staged.commit()
            for r in written:
                r.path = out / r.path.name
    finally:
        if staged:
            staged.discard()  # nothing left once committed
    _raise_failures(results, out, single)
    return results


def _run_one(job: Job, fmt: str, config: Precision, target: Path, out: Path, single: bool):
    """One job; its failure becomes a failed Result (a bug's keeps its converter log)."""
    try:
        return job.run(fmt, config, target)
    except UserError as exc:
        return Result(fmt, config.name, None, error=str(exc))
    except Exception as exc:  # a bug here must not cost the remaining jobs
        log = job.log_path(fmt, config)
        kept = Path(f"{out}.log") if single else Path(f"{out}.{fmt}-{config.name}.log")
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(log if log.exists() else _empty(log), kept)
        except OSError:
            kept = None
        error = f"{type(exc).__name__}: {first_line(exc)}"
        return Result(fmt, config.name, None, error=error, bug=True, log=kept, exception=exc)


def _empty(path: Path) -> Path:
    path.write_text("")
    return path


def _zip(directory: Path, out: Path) -> Path:
    from pocketbert.bundle import zip_bundle

    out.parent.mkdir(parents=True, exist_ok=True)
    return zip_bundle(directory, out)


def _raise_failures(results: list[Result], out: Path, single: bool) -> None:
    """One short line for what failed and what was written; a bug outranks bad input."""
    failed = [r for r in results if r.error]
    if not failed:
        return
    bugs = [r for r in failed if r.bug]
    if single:
        r = failed[0]
        if r.bug:
            raise ExportBug(
                f"{r.format} {r.precision} export failed ({r.error}); converter log: {r.log}",
                results,
            ) from r.exception
        raise ExportFailed(r.error, results)
    written = len(results) - len(failed)
    reasons = "; ".join(f"{r.format} {r.precision}: {_short(r)}" for r in failed)
    where = f"written to {out}" if written else f"{out} left as it was"
    message = (
        f"{len(failed)} of {len(results)} exports failed ({reasons}); "
        f"{written} verified bundle(s) {where}"
    )
    if bugs:
        raise ExportBug(message, results) from bugs[0].exception
    raise ExportFailed(message, results)


def _short(result: Result) -> str:
    """A failure's first clause, without the format and precision it repeats."""
    if result.bug:
        return f"bug, log {result.log}"
    text = result.error.split("; ")[0].removeprefix(f"{result.format} {result.precision} ")
    return text if len(text) <= 90 else text[:87] + "..."
