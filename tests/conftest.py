import logging
import warnings
from pathlib import Path

import pytest

from pocketbert.converters.architectures import ARCHITECTURES as TABLE

# The four the conformance suite walks at every precision in the default run; the rest of
# the table is walked by test_architectures.py (full matrix: pytest -m slow).
ARCHITECTURES = ("bert", "distilbert", "mobilebert", "squeezebert")
ALL_ARCHITECTURES = tuple(TABLE)
NEW_ARCHITECTURES = tuple(a for a in ALL_ARCHITECTURES if a not in ARCHITECTURES)


class _Models(dict):
    """architecture -> a tiny random classifier directory, written on first use."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, arch: str) -> Path:
        from random_models import save_random_model

        self[arch] = save_random_model(arch, self.root / arch)
        return self[arch]


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from threads; oversubscribed cores lose a lot."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _quiet_converters():
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Random-weight tiny classifiers, one per architecture of the table (written on first use)."""
    return _Models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory) -> Path:
    """A random-weight tiny BERT encoder, exported as a sentence-embedding model."""
    from random_models import save_random_model

    return save_random_model("bert", tmp_path_factory.mktemp("embedder") / "bert", task="embedding")


@pytest.fixture(scope="session")
def onnx_bundle(tiny_models, tmp_path_factory) -> Path:
    """One fp32 ONNX bundle of the tiny BERT classifier, shared by read-only tests."""
    import pocketbert

    out = tmp_path_factory.mktemp("bundles") / "bert-onnx"
    pocketbert.export(tiny_models["bert"], out, format="onnx", precision="fp32", quiet=True)
    return out


@pytest.fixture(scope="session")
def reviews_csv(tmp_path_factory) -> Path:
    """160 real movie-review sentences, labelled like the tiny teachers (negative/positive)."""
    import csv
    import random

    from pocketbert.examples import movie_reviews

    rows = random.Random(0).sample(movie_reviews("rotten_tomatoes"), 160)
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows((t, "positive" if y == "1" else "negative") for t, y in rows)
    return path


@pytest.fixture(scope="session")
def fp32_bundle(tiny_models, tmp_path_factory):
    """``fp32_bundle(fmt)``: an fp32 bundle of the tiny BERT classifier (max 32 tokens) in
    format ``fmt``, exported on first request and shared by the whole session (a format
    with no fp32, e.g. the fpga integer program, passes its own ``precision``)."""
    import pocketbert

    made: dict[tuple[str, str], Path] = {}

    def get(fmt: str, precision: str = "fp32") -> Path:
        if (fmt, precision) not in made:
            out = tmp_path_factory.mktemp("fp32-bundles") / f"{fmt}-{precision}"
            pocketbert.export(
                tiny_models["bert"],
                out,
                format=fmt,
                precision=precision,
                max_seq_len=32,
                quiet=True,
            )
            made[fmt, precision] = out
        return made[fmt, precision]

    return get
