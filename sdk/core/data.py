"""Labelled text for fine-tuning and distillation (no torch).

Reads CSV / TSV / JSONL files with a text and a label column, a directory of split files
(``train.csv`` + optional ``validation.csv``/``dev.csv`` and ``test.csv``, any of the three
suffixes), or a directory written by ``datasets.save_to_disk``. When no split is given, a
seeded, stratified train/validation/test split is made, so every run uses the same one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from pocketbert.core.errors import UserError

TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "target")
SUFFIXES = (".csv", ".tsv", ".jsonl")
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "valid", "dev"), "test": ("test",)}
FRACTIONS = (0.8, 0.1, 0.1)
KINDS = "a .csv/.tsv/.jsonl file with text and label columns, or a directory of such split files"

Row = tuple[str, str]  # (text, label)
# label cells that mean "no label" (what pandas, spreadsheets and json.dumps(NaN) write)
MISSING = frozenset({"", "nan", "-nan", "null", "na", "n/a", "<na>", "#n/a"})
SHOWN_ROWS = 5  # row numbers named in a missing-label message


@dataclass
class LabelledData:
    """Train/validation/test examples with string labels, in a fixed label order."""

    train: list[Row]
    validation: list[Row]
    test: list[Row]
    labels: list[str]
    source: str
    sha256: str
    dropped: int = 0  # unlabelled rows left out (drop_unlabelled=True)
    split_made: bool = False  # the validation/test rows come from ``stratified_split``

    def ids(self, split: str) -> tuple[list[str], list[int]]:
        index = {lab: i for i, lab in enumerate(self.labels)}
        rows = getattr(self, split)
        return [t for t, _ in rows], [index[lab] for _, lab in rows]

    def counts(self, split: str = "train") -> dict[str, int]:
        """Examples per label in ``split``, in label order."""
        found = Counter(lab for _, lab in getattr(self, split))
        return {lab: found.get(lab, 0) for lab in self.labels}

    def describe(self) -> str:
        """One line: the examples per split and per class, and the unlabelled rows dropped."""
        classes = ", ".join(f"{lab}: {n}" for lab, n in self.counts().items())
        line = (
            f"data: {len(self.train)} train ({classes}), {len(self.validation)} validation, "
            f"{len(self.test)} test"
        )
        return line + (f"; {self.dropped} unlabelled rows dropped" if self.dropped else "")


def is_missing(label: object) -> bool:
    """True for a label cell that holds no label: None, NaN, or an empty/"nan"/"null" cell."""
    if label is None or (isinstance(label, float) and label != label):
        return True
    return str(label).strip().lower() in MISSING


def _pick(
    columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, path: Path
) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise UserError(
                f"'{path}' has no {what} column '{wanted}' (columns: {', '.join(columns) or 'none'})"
            )
        return wanted
    found = next((c for c in candidates if c in columns), None)
    if found is None:
        raise UserError(
            f"'{path}' has no {what} column (columns: {', '.join(columns) or 'none'}); "
            f"name it one of: {', '.join(candidates)}, or pass the column name"
        )
    return found


def read_records(path: Path) -> list[dict]:
    """The rows of a .csv/.tsv table or the objects of a .jsonl file (UTF-8)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read '{path}' as UTF-8 text ({exc}); give {KINDS}") from exc
    if path.suffix.lower() == ".jsonl":
        records = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"'{path}' line {n} is not JSON ({exc.msg}); write one object a line"
                ) from exc
            if not isinstance(record, dict):
                raise UserError(
                    f'\'{path}\' line {n} is not a JSON object; write {{"text": ..., "label": ...}}'
                )
            records.append(record)
        return records
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        return list(csv.DictReader(io.StringIO(raw, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise UserError(f"'{path}' is not a valid {path.suffix} table ({exc})") from exc


def _rows(
    records: list[dict],
    path: Path,
    text_column: str | None,
    label_column: str | None,
    drop_unlabelled: bool = False,
) -> tuple[list[Row], int]:
    """(rows, unlabelled rows dropped); a UserError for unlabelled rows unless dropping them."""
    if not records:
        raise UserError(f"'{path}' holds no examples; give {KINDS}")
    columns = list(records[0].keys())
    tcol = _pick(columns, text_column, TEXT_COLUMNS, "text", path)
    lcol = _pick(columns, label_column, LABEL_COLUMNS, "label", path)
    rows, unlabelled = [], []
    line0 = 1 if path.suffix.lower() == ".jsonl" else 2  # CSV: the header is row 1
    for n, record in enumerate(records, line0):
        text, label = record.get(tcol), record.get(lcol)
        if is_missing(label):
            unlabelled.append(n)
            continue
        if not isinstance(text, str) or not text.strip():
            raise UserError(
                f"'{path}' row {n} has no text in column '{tcol}'; every example needs one"
            )
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        rows.append((text.strip(), str(label).strip()))
    if unlabelled and not drop_unlabelled:
        shown = ", ".join(map(str, unlabelled[:SHOWN_ROWS]))
        more = f" and {len(unlabelled) - SHOWN_ROWS} more" if len(unlabelled) > SHOWN_ROWS else ""
        raise UserError(
            f"'{path}' has {len(unlabelled)} row(s) with no label in column '{lcol}' "
            f"(empty, nan or null: row {shown}{more}); label them, or pass --drop-unlabelled "
            "to leave them out"
        )
    return rows, len(unlabelled)


def _datasets_dir(
    path: Path, text_column: str | None, label_column: str | None, drop_unlabelled: bool
) -> tuple[dict[str, list[Row]], int]:
    try:
        import datasets
    except ImportError as exc:
        raise UserError(
            f"'{path}' is a datasets directory; install the 'datasets' package to read it"
        ) from exc
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many kinds for a broken directory
        raise UserError(f"cannot read datasets directory '{path}' ({exc})") from exc
    splits = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    out, dropped = {}, 0
    for name, ds in splits.items():
        lcol = _pick(list(ds.column_names), label_column, LABEL_COLUMNS, "label", path / name)
        feature = ds.features.get(lcol)
        records = [dict(r) for r in ds]
        if hasattr(feature, "int2str"):
            for r in records:
                # a ClassLabel of -1 is datasets' "no label"
                r[lcol] = None if r.get(lcol) in (None, -1) else feature.int2str(r[lcol])
        out[name], n = _rows(records, path / name, text_column, lcol, drop_unlabelled)
        dropped += n
    return out, dropped


def _split_files(path: Path) -> dict[str, Path]:
    found = {}
    for split, names in SPLIT_NAMES.items():
        for name in names:
            for suffix in SUFFIXES:
                if (path / f"{name}{suffix}").is_file():
                    found.setdefault(split, path / f"{name}{suffix}")
    return found


def _hash(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def stratified_split(
    rows: list[Row], *, seed: int = 0, fractions: tuple[float, float, float] = FRACTIONS
):
    """(train, validation, test): each label split in the same proportions, seeded."""
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise UserError(f"split fractions {fractions} must be non-negative and sum to 1")
    by_label: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    parts: tuple[list[Row], list[Row], list[Row]] = ([], [], [])
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        n_val, n_test = round(len(group) * fractions[1]), round(len(group) * fractions[2])
        if len(group) - n_val - n_test < 1:
            n_val, n_test = 0, 0
        parts[1].extend(group[:n_val])
        parts[2].extend(group[n_val : n_val + n_test])
        parts[0].extend(group[n_val + n_test :])
    for part in parts:
        rng.shuffle(part)
    return parts


def label_order(found: set[str], teacher_labels: list[str] | None = None) -> list[str]:
    """The label list (index = class id): the teacher's when it names them, else sorted."""
    named = teacher_labels and not all(lab.startswith("LABEL_") for lab in teacher_labels)
    if named:
        unknown = sorted(found - set(teacher_labels))
        if unknown:
            raise UserError(
                f"data labels {', '.join(unknown)} are not among the teacher's labels "
                f"({', '.join(teacher_labels)}); relabel the data or fine-tune a teacher on it"
            )
        return list(teacher_labels)
    if teacher_labels and len(found) > len(teacher_labels):
        raise UserError(
            f"the data has {len(found)} labels but the teacher predicts {len(teacher_labels)}"
        )
    if all(lab.lstrip("-").isdigit() for lab in found):
        return sorted(found, key=int)
    return sorted(found)


def load_data(
    path: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    seed: int = 0,
    teacher_labels: list[str] | None = None,
    drop_unlabelled: bool = False,
    label_names: list[str] | tuple[str, ...] | None = None,
) -> LabelledData:
    """Read labelled text and split it (seeded, stratified) unless it comes split.

    A row whose label is empty, NaN or null is refused (a UserError naming the rows), or
    left out and counted with ``drop_unlabelled=True``. ``label_names`` names the data's
    labels in their order (numeric labels by value, others alphabetically), e.g.
    ``["negative", "positive"]`` for 0/1 data.
    """
    path = Path(path)
    dropped = 0
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            splits, dropped = _datasets_dir(path, text_column, label_column, drop_unlabelled)
            digest = _hash([p for p in path.rglob("*") if p.is_file()])
        else:
            files = _split_files(path)
            if "train" not in files:
                raise UserError(f"directory '{path}' has no train.csv/.tsv/.jsonl; give {KINDS}")
            splits = {}
            for k, p in files.items():
                splits[k], n = _rows(read_records(p), p, text_column, label_column, drop_unlabelled)
                dropped += n
            digest = _hash(list(files.values()))
    elif path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise UserError(f"'{path}' has an unknown suffix '{path.suffix}'; give {KINDS}")
        rows, dropped = _rows(read_records(path), path, text_column, label_column, drop_unlabelled)
        splits = {"train": rows}
        digest = _hash([path])
    else:
        raise UserError(f"data '{path}' does not exist; give {KINDS}")
    given_splits = set(splits)
    if "validation" not in splits or "test" not in splits:
        given = splits["train"]
        fractions = (
            (0.8, 0.1, 0.1)
            if "validation" not in splits and "test" not in splits
            else (0.9, 0.1, 0.0)
        )
        train, extra, test = stratified_split(given, seed=seed, fractions=fractions)
        splits = {
            "train": train,
            "validation": splits.get("validation", extra),
            "test": splits.get("test", test if "validation" not in splits else extra),
        }
    train_labels = {lab for _, lab in splits["train"]}
    if len(train_labels) < 2:
        raise UserError(
            f"'{path}' has only one label ({', '.join(train_labels)}); a classifier needs at least 2"
        )
    for name in ("validation", "test"):
        unseen = sorted({lab for _, lab in splits[name]} - train_labels)
        if unseen:
            raise UserError(
                f"'{path}': {name} labels {', '.join(unseen)} never occur in train; labels must agree"
            )
    labels = label_order(train_labels, teacher_labels)
    if label_names is not None:
        splits, labels = _renamed(splits, labels, list(label_names), path)
    return LabelledData(
        splits["train"],
        splits["validation"],
        splits["test"],
        labels,
        str(path),
        digest,
        dropped,
        split_made="validation" not in given_splits or "test" not in given_splits,
    )


def _renamed(splits: dict, labels: list[str], names: list[str], path: Path):
    """The splits with the data's labels (in ``labels`` order) replaced by ``names``."""
    names = [str(n).strip() for n in names]
    if len(names) != len(labels) or len(set(names)) != len(names) or not all(names):
        raise UserError(
            f"--label-names gives {len(names)} name(s) ({', '.join(names)}) but '{path}' has "
            f"{len(labels)} labels ({', '.join(labels)}); give {len(labels)} distinct names "
            "in that order"
        )
    rename = dict(zip(labels, names, strict=True))
    renamed = {k: [(text, rename[lab]) for text, lab in rows] for k, rows in splits.items()}
    return renamed, names
