"""``pocketbert examples -o DIR``: the packaged real model and reviews as ordinary files.

    DIR/all-MiniLM-L6-v2/   a link to the installed all-MiniLM-L6-v2 (a transformers directory)
    DIR/reviews.csv         8,530 Rotten Tomatoes sentences: text,label (negative|positive)
    DIR/sentences.txt       200 of them, one per line, for calibration or `pocketbert run`
    DIR/recipe.yaml         the default build's recipe, to edit for `pocketbert build`

so that every command of the README's tour runs as written on a fresh install.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LABEL_NAMES = {"0": "negative", "1": "positive"}
MODEL_LINK = "all-MiniLM-L6-v2"


def write_examples(out: Path) -> dict[str, str]:
    from pocketbert.core.errors import UserError
    from pocketbert.core.files import write_csv_atomic, write_text_atomic
    from pocketbert.examples import minilm_path, movie_reviews, sample_sentences
    from pocketbert.recipe import DEFAULT_RECIPE

    model, rows = minilm_path(), movie_reviews("rotten_tomatoes")
    try:
        out.mkdir(parents=True, exist_ok=True)
        link = out / MODEL_LINK
        if link.is_symlink() or link.exists():
            if not link.is_symlink() or link.resolve() != model.resolve():
                raise UserError(f"'{link}' exists and is not the example model; give another -o")
        else:
            link.symlink_to(model, target_is_directory=True)
        write_csv_atomic(
            out / "reviews.csv", ["text", "label"], [(t, LABEL_NAMES[lab]) for t, lab in rows]
        )
        sentences = "".join(f"{s}\n" for s in sample_sentences(200, seed=3))
        write_text_atomic(out / "sentences.txt", sentences)
        write_text_atomic(out / "recipe.yaml", DEFAULT_RECIPE.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(
            f"cannot write the examples into '{out}' ({exc.strerror}); give a writable -o"
        ) from exc
    return {
        "model": str(out / MODEL_LINK),
        "reviews": str(out / "reviews.csv"),
        "sentences": str(out / "sentences.txt"),
        "recipe": str(out / "recipe.yaml"),
        "rows": str(len(rows)),
    }


def cmd_examples(args: argparse.Namespace) -> int:
    written = write_examples(Path(args.output))
    if args.json:
        print(json.dumps(written, indent=2))
    elif not args.quiet:
        print(f"model     {written['model']}  (all-MiniLM-L6-v2, a 6-layer BERT encoder)")
        print(f"reviews   {written['reviews']}  ({written['rows']} labelled sentences)")
        print(f"sentences {written['sentences']}  (200, one per line)")
        print(f"recipe    {written['recipe']}  (the default build, for pocketbert build)")
    return 0


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "examples",
        parents=[common],
        help="write the packaged real model and movie reviews as files for the README's tour",
    )
    p.add_argument(
        "-o", "--output", default="examples", help="directory to write (default: examples)"
    )
    p.set_defaults(func=cmd_examples)
