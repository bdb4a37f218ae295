"""Files written whole or not at all: a sibling ``.NAME.partial-<pid>`` renamed over the target."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def write_text_atomic(path: Path, text: str) -> None:
    tmp = _partial(path)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_csv_atomic(path: Path, header: list[str], rows: Iterable) -> None:
    tmp = _partial(path)
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)
