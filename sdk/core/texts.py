"""Real English text for verification and calibration: a built-in set, or the user's file."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from pocketbert.core.errors import UserError

T = TypeVar("T")

TEXT_COLUMNS = ("text", "sentence", "review", "content")

# Varied, everyday English: short and long, positive and negative, questions and facts.
BUILTIN = [
    "The movie was a delight from start to finish.",
    "I want my two hours back; the plot made no sense at all.",
    "A warm, funny and surprisingly moving story about a family.",
    "The acting is wooden and the dialogue is painfully clichéd.",
    "What time does the next train to Edinburgh leave?",
    "Please remind me to call the dentist tomorrow morning.",
    "The battery lasts two full days, which is better than I expected.",
    "The app crashes every time I open the camera.",
    "Stir the sauce slowly and let it simmer for ten minutes.",
    "Our flight was delayed by three hours and nobody told us why.",
    "The new library opens on Monday with a reading for children.",
    "It rained all weekend, so we stayed in and played board games.",
    "This is the best pizza I have had in years.",
    "The service was slow and the soup arrived cold.",
    "Scientists found water ice in craters near the moon's south pole.",
    "The committee will publish its final report next spring.",
    "I loved the soundtrack, but the ending felt rushed.",
    "Could you send me the slides from this morning's meeting?",
    "The hotel room was clean, quiet and close to the station.",
    "Terrible customer support: they hung up on me twice.",
    "She finished the marathon in under four hours.",
    "The update fixed the bug that drained the battery overnight.",
    "A beautifully shot film with nothing to say.",
    "The price went up again and the quality went down.",
    "Honestly one of the most charming performances of the year.",
    "Turn left at the bakery and the museum is on your right.",
    "The meeting has been moved to Thursday at half past two.",
    "I would not recommend this phone to anyone.",
    "The garden looks wonderful after the spring rain.",
    "The second half drags, but the first hour is superb.",
    "Our team shipped the release a week ahead of schedule.",
    "The instructions were confusing and two screws were missing.",
    "He plays the violin every evening after dinner.",
    "An overlong, tedious mess that wastes a talented cast.",
    "The museum's new wing displays paintings from the sixteenth century.",
    "Fast delivery, sturdy packaging, works exactly as described.",
    "Why does the printer always jam on the last page?",
    "The children's choir gave a lovely performance at the festival.",
    "Every joke lands, and the pacing never lets up.",
    "The road was closed because of the flooding near the bridge.",
    "I am not sure whether the sequel is better than the original.",
    "The keyboard feels cheap and several keys already stick.",
    "A tender, intelligent film that trusts its audience.",
    "The bank will be closed on the public holiday.",
    "It is neither good nor bad, just forgettable.",
    "The soup was salty, but the bread was fresh and warm.",
    "Thanks to the new bus line, my commute is twenty minutes shorter.",
    "The villain is more interesting than the hero, which is a problem.",
    "Remember to water the plants while I am away.",
    "The final chapter ties every thread together beautifully.",
    "Loud, chaotic and utterly exhausting to sit through.",
    "The weather forecast says it will be sunny all week.",
    "I expected more from such an experienced director.",
    "The lecture on black holes was clear and fascinating.",
    "My order arrived damaged and the refund took a month.",
    "The documentary is informative, balanced and often moving.",
    "Let's meet at the cafe near the park at noon.",
    "A clever premise buried under a lazy script.",
    "The firmware update added support for two more languages.",
    "This sequel is funnier, sharper and kinder than the first film.",
    "The audio drops out whenever I walk into the kitchen.",
    "The festival attracts thousands of visitors every summer.",
    "Nothing happens for ninety minutes, and then it simply ends.",
    "The staff were friendly and the view from the terrace was stunning.",
]


def read_texts(path: str | Path, *, limit: int | None = None) -> list[str]:
    """Read text from .txt (one per line), .csv/.tsv (a ``text`` column) or .jsonl."""
    from pocketbert.core.data import read_records

    path = Path(path)
    kinds = ".txt, .csv, .tsv or .jsonl"
    if not path.is_file():
        raise UserError(f"text file '{path}' does not exist; give a {kinds} file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".jsonl"):
        records = read_records(path)
        columns = list(records[0]) if records else []
        column = next((c for c in TEXT_COLUMNS if c in columns), None)
        if column is None:
            raise UserError(
                f"'{path}' has no text column (columns: {', '.join(columns) or 'none'}); "
                "name the column 'text'"
            )
        texts = [str(r.get(column) or "").strip() for r in records]
    elif suffix in (".txt", ".text", ""):
        try:
            texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(
                f"cannot read '{path}' as UTF-8 text ({exc}); give a {kinds} file"
            ) from exc
    else:
        raise UserError(f"'{path}' has an unknown suffix '{suffix}'; give a {kinds} file")
    texts = [t for t in texts if t]
    if not texts:
        raise UserError(f"'{path}' holds no text; give a {kinds} file with at least one line")
    return texts[:limit] if limit else texts


def sample_in_order(rows: Sequence[T], n: int, seed: int = 0) -> list[T]:
    """Up to ``n`` of ``rows``: all of them, or a seeded sample kept in their order."""
    if len(rows) <= n:
        return list(rows)
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), n))]
