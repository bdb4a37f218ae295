"""What the parity gate verifies on and what int8-static calibrates on, kept apart.

Verification, in order: ``--eval FILE`` (a .txt of sentences, or a .csv/.tsv/.jsonl with a
text and optionally a label column), else the model directory's ``task_text.json`` verify
rows (``pocketbert.core.task_text``), else the built-in sentences. Calibration: the
``calibration`` given, else task_text.json's calibration sentences, else the built-in ones.

The gate never judges on text the quantizer calibrated on. When the user gave both sets
and they share sentences, the export is refused. Otherwise what was not asked for
yields: a default set drops the sentences it shares with a given one; two default sets
drop the shared sentences from calibration (it needs fewer); the built-in set used for
both is split into two disjoint halves. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pocketbert.core.data import LABEL_COLUMNS, TEXT_COLUMNS, is_missing, read_records
from pocketbert.core.errors import UserError
from pocketbert.core.task_text import FILE as TASK_TEXT_FILE
from pocketbert.core.task_text import read_task_text
from pocketbert.core.texts import BUILTIN, read_texts, sample_in_order

VERIFY_SAMPLES = 1000  # rows the gate runs, at most (a seeded sample, in the file's order)
SHOWN = 6  # labels named in an unknown-label message
KINDS = "a .txt of sentences, or a .csv/.tsv/.jsonl with a text (and optional label) column"


@dataclass(frozen=True)
class TextSet:
    """Sentences from one source: ``given`` by the user, ``task_text`` or ``builtin``."""

    texts: list[str]
    source: str
    name: str | None = None  # the file (or list digest) as given, or task_text.json's path
    labels: list[str] | None = None  # verification only: one label a row, or None
    removed: int = 0  # sentences dropped because the other set holds them
    split: bool = False  # half of the built-in sentences; the other half calibrates

    @property
    def given(self) -> bool:
        return self.source == "given"

    def without(self, other: set[str]) -> TextSet:
        keep = [i for i, t in enumerate(self.texts) if t not in other]
        labels = [self.labels[i] for i in keep] if self.labels is not None else None
        gone = len(self.texts) - len(keep)
        return replace(
            self, texts=[self.texts[i] for i in keep], labels=labels, removed=self.removed + gone
        )

    def record(self, samples: int) -> dict:
        """The manifest's record of this set: where it came from and how much was used."""
        if not samples:
            return {"source": None, "samples": 0}  # a recipe that calibrates on nothing
        record = {"source": self.source, "name": self.name, "samples": samples}
        if self.labels is not None:
            record["labelled"] = True
        if self.split:
            record["split"] = True
        return {**record, "overlap_removed": self.removed} if self.removed else record


@dataclass(frozen=True)
class GateText:
    """The verification rows (``ids``: class ids once bound to the model) and the
    calibration sentences of one export run."""

    verify: TextSet
    calibration: TextSet
    ids: list[int] | None = None

    def bind(self, model_labels: list[str], task: str) -> GateText:
        """Map the verification labels to the model's class ids (UserError: unknown ones).

        Embedding models have no classes: their verification labels are not used.
        """
        if self.verify.labels is None or task != "classification":
            return replace(self, verify=replace(self.verify, labels=None), ids=None)
        where = self.verify.name or self.verify.source
        return replace(self, ids=label_ids(self.verify.labels, model_labels, where))


def label_ids(labels: list[str], model_labels: list[str], where: str) -> list[int]:
    """Labels by name (or by class id 0..n-1) -> class ids; unknown labels: one UserError."""
    index = {name: i for i, name in enumerate(model_labels)}

    def known(label: str) -> int | None:
        if label in index:
            return index[label]
        if label.lstrip("-").isdigit() and 0 <= int(label) < len(model_labels):
            return int(label)
        return None

    unknown = sorted({lab for lab in labels if known(lab) is None})
    if unknown:
        shown = ", ".join(unknown[:SHOWN]) + (
            f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else ""
        )
        raise UserError(
            f"'{where}' has labels the model does not know: {shown}; the model's labels are "
            f"{', '.join(model_labels)} (or class ids 0..{len(model_labels) - 1})"
        )
    return [known(lab) for lab in labels]


def read_eval(path: str | Path) -> TextSet:
    """An --eval file as a given verification set (labels when it has a label column)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise UserError(f"--eval file '{path}' {what}; give {KINDS}")
    if path.suffix.lower() not in (".csv", ".tsv", ".jsonl"):
        return TextSet(read_texts(path), "given", str(path))
    records = read_records(path)  # unreadable or not UTF-8: one line
    if not records:
        raise UserError(f"--eval file '{path}' holds no rows; give {KINDS}")
    columns = list(records[0])
    tcol = next((c for c in TEXT_COLUMNS if c in columns), None)
    if tcol is None:
        raise UserError(
            f"--eval file '{path}' has no text column (columns: {', '.join(columns) or 'none'}); "
            f"name it one of: {', '.join(TEXT_COLUMNS)}"
        )
    lcol = next((c for c in LABEL_COLUMNS if c in columns), None)
    rows = [(str(r.get(tcol) or "").strip(), r.get(lcol) if lcol else None) for r in records]
    rows = [(t, lab) for t, lab in rows if t]
    if not rows:
        raise UserError(f"--eval file '{path}' has no text in column '{tcol}'; give {KINDS}")
    if lcol is None:
        return TextSet([t for t, _ in rows], "given", str(path))
    missing = sum(is_missing(lab) for _, lab in rows)
    if missing:
        raise UserError(
            f"--eval file '{path}' has {missing} row(s) with no label in column '{lcol}'; "
            "label every row, or leave the label column out to judge without labels"
        )
    labels = [_label_text(lab) for _, lab in rows]
    return TextSet([t for t, _ in rows], "given", str(path), labels)


def _label_text(label: object) -> str:
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    return str(label).strip()


def gate_text(
    model: str | Path,
    *,
    eval_set: TextSet | None,
    calibration: TextSet | None,
    calibrating: int,
) -> GateText:
    """Choose the verification and calibration sets, disjoint (see the module docstring).

    ``calibrating``: the most calibration sentences any recipe of the run takes (0: none
    calibrates, so calibration text cannot leak into the gate and is left as it is).
    """
    task_text = read_task_text(model) if Path(model).is_dir() else None
    where = str(Path(model) / TASK_TEXT_FILE)
    verify = eval_set
    if verify is None and task_text and task_text.verify:
        texts = [t for t, _ in task_text.verify]
        labels = [lab for _, lab in task_text.verify] if task_text.labelled else None
        verify = TextSet(texts, "task_text", where, labels)
    if calibration is None and task_text and task_text.calibration:
        calibration = TextSet(list(task_text.calibration), "task_text", where)
    if verify is None and calibration is None and calibrating:
        return _split_builtin()
    verify = verify or TextSet(list(BUILTIN), "builtin")
    calibration = calibration or TextSet(list(BUILTIN), "builtin")
    if calibrating:
        verify, calibration = _disjoint(verify, calibration, calibrating)
    return GateText(_capped(verify), calibration)


def _split_builtin() -> GateText:
    # pairs of neighbours go together: the list alternates praise and complaint in pairs
    verify = [t for i, t in enumerate(BUILTIN) if (i // 2) % 2 == 0]
    calibration = [t for i, t in enumerate(BUILTIN) if (i // 2) % 2 == 1]
    return GateText(
        TextSet(verify, "builtin", split=True), TextSet(calibration, "builtin", split=True)
    )


def _disjoint(verify: TextSet, calibration: TextSet, calibrating: int) -> tuple[TextSet, TextSet]:
    used = calibration.texts[:calibrating]
    shared = set(verify.texts) & set(used)
    if not shared:
        return verify, calibration
    if verify.given and calibration.given:
        raise UserError(
            f"{len(shared)} of the {len(verify.texts)} --eval sentences are also calibration "
            "sentences; the gate must not judge on text the quantizer calibrated on: "
            "remove them from one of the two"
        )
    if verify.given or not calibration.given:
        calibration = calibration.without(set(verify.texts))
        if not calibration.texts:
            raise UserError(
                "every calibration sentence is also a verification sentence; "
                "give --calibration with other text"
            )
        return verify, calibration
    verify = verify.without(set(used))
    if not verify.texts:
        raise UserError(
            "every verification sentence is also a calibration sentence; "
            "give --eval with other text"
        )
    return verify, calibration


def _capped(verify: TextSet) -> TextSet:
    if len(verify.texts) <= VERIFY_SAMPLES:
        return verify
    keep = sample_in_order(range(len(verify.texts)), VERIFY_SAMPLES)
    labels = [verify.labels[i] for i in keep] if verify.labels is not None else None
    return replace(verify, texts=[verify.texts[i] for i in keep], labels=labels)
