"""The build's data: read once, split once (seeded), written as split files every step reads.

Every step of a build (fine-tune, each distillation, each bundle's evaluation) sees the same
train/validation/test rows: ``WORK/data/<sha256>/{train,validation,test}.csv``, written
whole or not at all, with the recipe's column names, label names and seed already applied.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pocketbert.core.data import LabelledData, load_data
from pocketbert.core.files import write_csv_atomic
from pocketbert.recipe import EXAMPLES, Recipe

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class BuildData:
    path: Path  # the split directory
    labels: list[str]
    identity: dict  # source, sha256 of its rows and the options that read them
    test: list[tuple[str, str]]
    describe: str


def prepare_data(recipe: Recipe, root: Path) -> BuildData:
    source = recipe.data
    opts = recipe.data_options
    if source.startswith(EXAMPLES):
        source = str(_examples_csv(root))
    data = load_data(
        source,
        text_column=opts["text_column"],
        label_column=opts["label_column"],
        seed=opts["seed"],
        drop_unlabelled=opts["drop_unlabelled"],
        label_names=opts["label_names"],
    )
    identity = {"source": recipe.data, "sha256": data.sha256, "options": opts}
    out = root / data.sha256[:16]
    if not all((out / f"{s}.csv").is_file() for s in SPLITS):
        _write_splits(data, out)
    return BuildData(out, data.labels, identity, data.test, data.describe())


def _write_splits(data: LabelledData, out: Path) -> None:
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for split in SPLITS:
        write_csv_atomic(tmp / f"{split}.csv", ["text", "label"], getattr(data, split))
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)


def _examples_csv(folder: Path) -> Path:
    """The packaged Rotten Tomatoes sentences as a CSV (labels negative/positive)."""
    from pocketbert.cli.examples import LABEL_NAMES
    from pocketbert.examples import movie_reviews

    path = folder / "rotten_tomatoes.csv"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        rows = ((t, LABEL_NAMES[y]) for t, y in movie_reviews("rotten_tomatoes"))
        write_csv_atomic(path, ["text", "label"], rows)
    return path


def teacher_labels(teacher: Path | str) -> list[str] | None:
    """The teacher's class names when it is a local classifier; None for an encoder (or a hub id)."""
    if not isinstance(teacher, Path):
        return None
    from pocketbert.converters.architectures import preflight

    info = preflight(teacher, pooling=False)
    return info.labels if info.task == "classification" else None
