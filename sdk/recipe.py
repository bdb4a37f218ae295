"""The build recipe (``recipe.yaml``, ``version: 1``): what ``pocketbert build`` makes.

    version: 1
    teacher: {model: examples:all-MiniLM-L6-v2, finetune: {epochs: 1}}
    data: {path: examples:rotten_tomatoes}
    students: [{family: squeezebert, size: small}, {family: mobilebert, size: medium}]
    distill: {max_seq_len: 64}
    export: {formats: [onnx, executorch, tflite, fpga], precisions: [int8-dynamic],
             per_format: {fpga: [int8-static]}, max_seq_len: 64}
    profile: {runs: 30, seq_len: 64}
    devices:
      - {id: host, budgets: {max_latency_ms: 20, min_kept: 95}}
      - {id: pixel4, measure: estimated}

Relative paths are read from the recipe's folder; ``examples:`` names the packaged model
(``examples:all-MiniLM-L6-v2``) and data (``examples:rotten_tomatoes``). Every field is
checked when the recipe loads, before any work: an error names the file, the field's path
and the valid choices, on one line (:class:`UserError`). The ``finetune`` and ``distill``
blocks take the fields of :class:`pocketbert.FinetuneOptions` / :class:`DistillOptions`.
``export.per_format`` gives some formats their own precisions instead of ``precisions``
(the fpga program exists only as int8-static); each must be one the format exports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketbert.core.errors import UserError, choices
from pocketbert.recipe_fields import Fields, RecipeError

VERSION = 1
DEFAULT_RECIPE = Path(__file__).parent / "assets" / "recipe.yaml"
EXAMPLES = "examples:"
EXAMPLE_MODELS = ("all-MiniLM-L6-v2",)
EXAMPLE_DATA = ("rotten_tomatoes",)
MEASURE = ("auto", "measured", "estimated")
BUDGETS = ("max_latency_ms", "max_size_mb", "max_memory_mb", "min_kept")
# fields of the training options a recipe sets elsewhere, or the build sets itself
_TRAIN_OWNED = {"resume", "quiet", "text_column", "label_column", "drop_unlabelled", "label_names"}
_DISTILL_OWNED = _TRAIN_OWNED | {"student", "size", "knobs", "cache_dir", "speedup"}
_DISTILL_OWNED |= {"max_latency_ms", "device"}


@dataclass(frozen=True)
class Student:
    family: str
    size: str = "small"
    knobs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        knobs = "".join(f"-{k}{v}" for k, v in sorted(self.knobs.items()))
        return f"{self.family}-{self.size}{knobs}"


@dataclass(frozen=True)
class Budgets:
    max_latency_ms: float | None = None  # p50 at the profiled length
    max_size_mb: float | None = None  # the model file
    max_memory_mb: float | None = None  # peak memory of the process running it (measured)
    min_kept: float | None = None  # test accuracy, % of the teacher's


@dataclass(frozen=True)
class Target:
    id: str
    measure: str = "auto"  # auto: measured where the device is reachable, else estimated
    budgets: Budgets = Budgets()


@dataclass(frozen=True)
class Recipe:
    teacher: str
    finetune: dict[str, Any] | None
    data: str
    data_options: dict[str, Any]
    students: tuple[Student, ...]
    distill: dict[str, Any]
    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    export_max_seq_len: int
    export_teacher: bool
    profile: dict[str, Any]
    devices: tuple[Target, ...]
    source: str = "<recipe>"
    version: int = VERSION
    per_format: dict[str, tuple[str, ...]] = field(default_factory=dict)  # format -> precisions

    def precisions_for(self, fmt: str) -> tuple[str, ...]:
        return self.per_format.get(fmt, self.precisions)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("source")
        if not d["per_format"]:  # recipes without it hash as they did before it existed
            d.pop("per_format")
        return d

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


def load_recipe(path: str | Path | None = None) -> Recipe:
    """Read and check a recipe file (default: the packaged one)."""
    import yaml

    path = Path(path) if path else DEFAULT_RECIPE
    if not path.is_file():
        raise UserError(
            f"recipe '{path}' does not exist; give a recipe.yaml (see pocketbert build --help)"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where else ""
        raise UserError(f"{path}: not readable YAML{at}; a recipe is a YAML mapping") from exc
    return parse_recipe(raw, path)


def parse_recipe(raw: Any, path: str | Path = "<recipe>") -> Recipe:
    """A recipe from its parsed YAML; ``path`` names it in errors and anchors relative paths."""
    path = Path(path)
    try:
        return _parse(Fields(raw, str(path), ""), path.parent)
    except RecipeError as exc:
        raise UserError(str(exc)) from None


def _parse(top: Fields, base: Path) -> Recipe:
    from pocketbert.converters import EXPORTERS
    from pocketbert.converters.quantization import PRECISIONS
    from pocketbert.devices import catalog_path, load_devices

    top.allow("version", "teacher", "data", "students", "distill", "export", "profile", "devices")
    version = top.get("version", int, required=True)
    if version != VERSION:
        top.fail("version", f"is {version}; this pocketbert reads version {VERSION}")
    teacher = top.block("teacher", required=True)
    teacher.allow("model", "finetune")
    model = _source(teacher, "model", base, EXAMPLE_MODELS)
    finetune = teacher.block("finetune") if teacher.has("finetune") else None
    data = top.block("data", required=True)
    data.allow("path", "text_column", "label_column", "label_names", "seed", "drop_unlabelled")
    data_path = _source(data, "path", base, EXAMPLE_DATA)
    data_options = {
        "text_column": data.get("text_column", str),
        "label_column": data.get("label_column", str),
        "label_names": data.get_list("label_names", str),
        "seed": data.get("seed", int, default=0),
        "drop_unlabelled": data.get("drop_unlabelled", bool, default=False),
    }
    students = tuple(_student(s) for s in top.items("students", required=True, bare="family"))
    names = [s.name for s in students]
    if len(set(names)) < len(names):
        top.fail("students", f"name one student twice ({', '.join(names)}); give each once")
    distill = top.block("distill") if top.has("distill") else None
    export = top.block("export", required=True)
    export.allow("formats", "precisions", "max_seq_len", "teacher", "per_format")
    formats = tuple(export.get_list("formats", str, required=True, valid=EXPORTERS))
    precisions = tuple(export.get_list("precisions", str, required=True, valid=PRECISIONS))
    per_format = {}
    if export.has("per_format"):
        block = export.block("per_format")
        for fmt in map(str, block.raw):
            if fmt not in formats:
                block.fail(fmt, f"is not in export.formats ({', '.join(formats)}); add it there")
        for fmt in formats:
            handled = [n for n, c in PRECISIONS.items() if c in EXPORTERS[fmt].handles]
            if block.has(fmt):
                per_format[fmt] = tuple(block.get_list(fmt, str, required=True, valid=handled))
    max_seq_len = export.get("max_seq_len", int, default=128)
    if not 8 <= max_seq_len <= 4096:
        export.fail("max_seq_len", f"is {max_seq_len}; give 8 to 4096")
    prof = top.block("profile") if top.has("profile") else Fields({}, top.file, "profile")
    prof.allow("runs", "warmup", "seq_len", "threads")
    profile = {
        "runs": prof.get("runs", int, default=30, minimum=1),
        "warmup": prof.get("warmup", int, default=5, minimum=0),
        "seq_len": prof.get("seq_len", int, default=max_seq_len, minimum=1),
        "threads": prof.get("threads", int, minimum=1),
    }
    catalog = load_devices(catalog_path(None))
    devices = tuple(_target(d, catalog) for d in top.items("devices", required=True, bare="id"))
    ids = [d.id for d in devices]
    if len(set(ids)) < len(ids):
        top.fail("devices", f"name one device twice ({', '.join(ids)}); give each once")
    for d in devices:
        if not set(catalog[d.id].formats) & set(formats):
            top.fail(
                "devices",
                f"'{d.id}' runs {', '.join(catalog[d.id].formats)} and export makes only "
                f"{', '.join(formats)}; add one of its formats to export.formats",
            )
    return Recipe(
        teacher=model,
        finetune=_options(finetune, "FinetuneOptions", _TRAIN_OWNED),
        data=data_path,
        data_options=data_options,
        students=students,
        distill=_options(distill, "DistillOptions", _DISTILL_OWNED) or {},
        formats=formats,
        precisions=precisions,
        export_max_seq_len=max_seq_len,
        export_teacher=export.get("teacher", bool, default=True),
        profile=profile,
        devices=devices,
        source=top.file,
        per_format=per_format,
    )


def _source(block: Fields, key: str, base: Path, examples: tuple[str, ...]) -> str:
    """A local path (relative to the recipe), ``examples:NAME``, or a hub id."""
    value = block.get(key, str, required=True)
    if value.startswith(EXAMPLES):
        if value[len(EXAMPLES) :] not in examples:
            block.fail(
                key,
                f"'{value}' is not packaged; choose from: {choices(EXAMPLES + e for e in examples)}",
            )
        return value
    local = base / value
    if local.exists():
        return str(local.resolve())
    if Path(value).is_absolute() or value.startswith(".") or value.count("/") != 1:
        block.fail(key, f"'{value}' does not exist (read from {base}); give a path or a hub id")
    return value  # a hub id (org/name)


def _student(item: Fields) -> Student:
    from pocketbert.training import FAMILIES, KNOBS, SIZES

    item.allow("family", "size", "knobs")
    family = item.get("family", str, required=True, valid=FAMILIES)
    size = item.get("size", str, default="small", valid=SIZES)
    knobs = item.block("knobs").raw if item.has("knobs") else {}
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        item.fail(
            "knobs", f"has unknown knob(s) {', '.join(unknown)}; choose from: {choices(KNOBS)}"
        )
    return Student(family, size, dict(sorted(knobs.items())))


def _target(item: Fields, catalog: dict) -> Target:
    item.allow("id", "measure", "budgets")
    device = item.get("id", str, required=True, valid=catalog)
    measure = item.get("measure", str, default="auto", valid=MEASURE)
    if measure == "measured" and catalog[device].transport in ("emulated", "fpga-model"):
        item.fail(
            "measure", f"is measured and '{device}' can only be estimated; give auto or estimated"
        )
    budgets = Budgets()
    if item.has("budgets"):
        b = item.block("budgets")
        b.allow(*BUDGETS)
        given = {k: b.get(k, float, positive=True) for k in BUDGETS}
        if given["min_kept"] is not None and given["min_kept"] > 100:
            b.fail(
                "min_kept", f"is {given['min_kept']}; it is a % of the teacher's accuracy, 0-100"
            )
        budgets = Budgets(**given)
    return Target(device, measure, budgets)


def _options(block: Fields | None, cls_name: str, owned: set[str]) -> dict[str, Any] | None:
    """A finetune/distill block checked by the options class it becomes."""
    if block is None:
        return None
    import pocketbert.training as training

    cls = getattr(training, cls_name)
    valid = [f.name for f in dataclasses.fields(cls) if f.name not in owned]
    block.allow(*valid)
    values = dict(block.raw)
    try:
        cls(**values)
    except (UserError, TypeError) as exc:
        block.fail("", f"{exc}")
    return values
