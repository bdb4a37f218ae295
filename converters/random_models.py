"""Random-weight BERT-family models saved as ordinary transformers directories.

For tests (tiny, seconds to export) and benchmarks (sized like all-MiniLM-L6-v2). The
tokenizer is either copied from a real model directory or a small WordPiece vocabulary
built here from the built-in English sentences.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import torch

from pocketbert.core.errors import UserError, choices
from pocketbert.core.texts import BUILTIN

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)

# (architecture, size) -> config keyword arguments
SIZES: dict[tuple[str, str], dict] = {
    ("bert", "tiny"): dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    ),
    ("distilbert", "tiny"): dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64),
    ("mobilebert", "tiny"): dict(
        hidden_size=64,
        embedding_size=32,
        intra_bottleneck_size=32,
        true_hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_feedforward_networks=2,
    ),
    ("squeezebert", "tiny"): dict(
        hidden_size=64,
        embedding_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
    ),
    ("bert", "small"): dict(
        hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
    ),
    ("distilbert", "small"): dict(dim=384, n_layers=6, n_heads=12, hidden_dim=1536),
    ("mobilebert", "small"): dict(),  # the published MobileBERT shape: 24 thin layers
    ("squeezebert", "small"): dict(
        hidden_size=384,
        embedding_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
    ),
}


def _tiny_vocab() -> list[str]:
    words = sorted({w for t in BUILTIN for w in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]", t.lower())})
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    return SPECIALS + sorted(set(letters) | set(words)) + pieces


def _save_tiny_tokenizer(out: Path) -> int:
    from transformers import BertTokenizerFast

    vocab = _tiny_vocab()
    (out / "vocab.txt").write_text("".join(f"{v}\n" for v in vocab))
    BertTokenizerFast(vocab_file=str(out / "vocab.txt"), do_lower_case=True).save_pretrained(out)
    return len(vocab)


def save_random_model(
    arch: str,
    out: str | Path,
    *,
    size: str = "tiny",
    task: str = "classification",
    labels: tuple[str, ...] = ("negative", "positive"),
    tokenizer_from: str | Path | None = None,
    seed: int = 0,
) -> Path:
    """Write a random-weight ``arch`` model (and a tokenizer) to ``out``."""
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    if (arch, size) not in SIZES:
        raise UserError(
            f"no random model preset '{arch}/{size}'; choose one of: {choices(f'{a}/{s}' for a, s in SIZES)}"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer_from:
        for name in TOKENIZER_FILES:
            if (Path(tokenizer_from) / name).is_file():
                shutil.copy(Path(tokenizer_from) / name, out / name)
        vocab_size = sum(1 for _ in (out / "vocab.txt").open())
    else:
        vocab_size = _save_tiny_tokenizer(out)
    config = AutoConfig.for_model(
        arch,
        vocab_size=vocab_size,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        max_position_embeddings=512,
        **SIZES[(arch, size)],
    )
    torch.manual_seed(seed)
    cls = AutoModelForSequenceClassification if task == "classification" else AutoModel
    model = cls.from_config(config)
    if task == "classification":
        _widen_classifier(model)
    model.save_pretrained(out)
    return out


@torch.no_grad()
def _widen_classifier(model: torch.nn.Module) -> None:
    """Give the random head a spread of logits, so argmax is not decided by rounding."""
    heads = [
        m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "classifier" in n
    ]
    if heads:
        heads[-1].weight.normal_(0.0, 1.0)
