"""The results store: one JSON record per line, appended and never rewritten.

Each record is written (and fsynced) as soon as it is known, so a crash or a failed device
later in a run never loses what was already gathered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from pocketbert.core.errors import UserError

DEFAULT_STORE = Path("pocketbert-results.jsonl")
SCHEMA = 1


class ResultsStore:
    """Appends records to ``path`` (default: ./pocketbert-results.jsonl in the current directory)."""

    def __init__(self, path: str | Path = DEFAULT_STORE) -> None:
        self.path = Path(path)
        self.written = 0  # records this object appended

    def append(self, record: dict) -> None:
        line = json.dumps({"schema": SCHEMA, **record}, separators=(",", ":"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self.written += 1
        except OSError as exc:
            raise UserError(
                f"cannot append to results store '{self.path}' ({exc.strerror})"
            ) from exc

    def __iter__(self) -> Iterator[dict]:
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(
                        f"{self.path}:{n} is not a JSON record; the store is corrupt there"
                    ) from exc
