"""What a data set says about the run it feeds: a teacher at chance level, a class too rare
to be measured, too little data for distillation. Each is one warning line (or none)."""

from __future__ import annotations

from pocketbert.core.data import LabelledData

RARE_CLASS = 10  # a class with fewer examples than this is named in a warning
MIN_DISTILL_ROWS = 500  # fewer training rows than this: distillation is warned about

CHANCE_MARGIN = 0.05  # an accuracy this close to the best blind guess is chance level


def chance_warning(
    accuracy: float,
    data: LabelledData,
    split: str,
    who: str,
    *,
    kept: bool = False,
    cause: str | None = None,
) -> str | None:
    """A warning when ``accuracy`` on ``data``'s ``split`` is no better than guessing.

    Guessing: always the most common class of that split, or 1 / classes, whichever is
    higher. ``kept``: the warning is about a student's "kept" figure, which is then
    measured against a model that learned nothing. ``cause``: the likely cause, added.
    """
    counts = data.counts(split)
    total = sum(counts.values())
    if not total:
        return None
    majority = max(counts.values()) / total
    guess = max(majority, 1 / len(counts))
    if accuracy > guess + CHANCE_MARGIN:
        return None
    what = (
        "so the student's accuracy kept is measured against a model that learned nothing"
        if kept
        else "it has learned nothing useful yet"
    )
    fix = (
        "fine-tune the teacher further (pocketbert finetune --epochs, more data, another --lr)"
        if kept or who == "teacher"
        else "train longer or on more data"
    )
    return (
        f"the {who}'s {split} accuracy {accuracy:.1%} is at chance level (always guessing the "
        f"most common class scores {majority:.1%} on {total} examples), {what}"
        + (f"; likely cause: {cause}" if cause else "")
        + f"; {fix}"
    )


def rare_class_warnings(data: LabelledData) -> list[str]:
    """One line per class with fewer than ``RARE_CLASS`` examples: its counts and what follows.

    Such a class is still trained on (the run goes on), but its scores rest on a sentence
    or two, or on none: the seeded stratified split gives a class validation and test rows
    only from 6 examples up (10% each, rounded), and keeps a smaller one whole in train.
    """
    lines = []
    per_split = {split: data.counts(split) for split in ("train", "validation", "test")}
    for label in data.labels:
        train, val, test = (per_split[s][label] for s in ("train", "validation", "test"))
        if train + val + test >= RARE_CLASS:
            continue
        if val + test == 0:
            what = (
                "the seeded stratified split keeps a class this small whole in train (it "
                "needs 6+ examples for a validation and a test row)"
                if data.split_made
                else "the given validation and test files hold none of it"
            )
            what += ", so no validation or test score measures it"
        else:
            what = f"its validation and test scores rest on {val} and {test} sentences"
        lines.append(
            f"class '{label}' has only {train + val + test} examples ({train} train, {val} "
            f"validation, {test} test): {what}; label more of it ({RARE_CLASS} or more)"
        )
    return lines


def small_data_warning(data: LabelledData) -> str | None:
    """A warning when the training split is too small for distillation to help."""
    rows = len(data.train)
    if rows >= MIN_DISTILL_ROWS:
        return None
    return (
        f"only {rows} training rows: distillation rarely keeps the teacher's accuracy on "
        f"fewer than {MIN_DISTILL_ROWS} (the word-swap variants repeat the same words); give "
        "unlabelled text from the task with --unlabelled FILE, or more labelled data"
    )
