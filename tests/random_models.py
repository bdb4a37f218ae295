"""Random-weight BERT-family models saved as ordinary transformers directories.

Test and benchmark support (not part of the installed package): tests import it as
``random_models`` (pytest puts tests/ on sys.path), benchmarks after inserting tests/
into sys.path. Tiny presets export in seconds; "small" ones are sized like
all-MiniLM-L6-v2. The tokenizer is copied from a real model directory, or a small one of
the architecture's own kind (``ARCHITECTURES[arch].tokenizer``: WordPiece, byte-level
BPE or SentencePiece unigram) is trained here on the built-in English sentences.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import torch

from pocketbert.converters.architectures import ARCHITECTURES
from pocketbert.core.errors import UserError, choices
from pocketbert.core.texts import BUILTIN

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)

_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
_SMALL = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
_ROBERTA_POSITIONS = dict(max_position_embeddings=514)  # 512 tokens after padding_idx + 1

# (architecture, size) -> config keyword arguments
SIZES: dict[tuple[str, str], dict] = {
    ("bert", "tiny"): _TINY,
    ("distilbert", "tiny"): dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64),
    ("mobilebert", "tiny"): {
        **_TINY,
        "hidden_size": 64,
        "embedding_size": 32,
        "intra_bottleneck_size": 32,
        "true_hidden_size": 32,
        "num_feedforward_networks": 2,
    },
    ("squeezebert", "tiny"): {
        **_TINY,
        "hidden_size": 64,
        "embedding_size": 64,
        "intermediate_size": 128,
    },
    ("roberta", "tiny"): {**_TINY, **_ROBERTA_POSITIONS},
    ("xlm-roberta", "tiny"): {**_TINY, **_ROBERTA_POSITIONS},
    ("electra", "tiny"): {**_TINY, "embedding_size": 16},  # projected up to hidden_size
    ("albert", "tiny"): {**_TINY, "embedding_size": 16, "num_hidden_groups": 1},
    ("bert", "small"): _SMALL,
    ("distilbert", "small"): dict(dim=384, n_layers=6, n_heads=12, hidden_dim=1536),
    ("mobilebert", "small"): dict(),  # the published MobileBERT shape: 24 thin layers
    ("squeezebert", "small"): {**_SMALL, "embedding_size": 384},
    ("roberta", "small"): {**_SMALL, **_ROBERTA_POSITIONS},
    ("xlm-roberta", "small"): {**_SMALL, **_ROBERTA_POSITIONS},
    ("electra", "small"): dict(  # ELECTRA-small's published shape
        hidden_size=256,
        embedding_size=128,
        num_hidden_layers=12,
        num_attention_heads=4,
        intermediate_size=1024,
    ),
    ("albert", "small"): {**_SMALL, "embedding_size": 128, "num_hidden_groups": 1},
}


def _tiny_vocab() -> list[str]:
    words = sorted({w for t in BUILTIN for w in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]", t.lower())})
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    return SPECIALS + sorted(set(letters) | set(words)) + pieces


def _wordpiece(out: Path) -> int:
    from transformers import BertTokenizerFast

    vocab = _tiny_vocab()
    (out / "vocab.txt").write_text("".join(f"{v}\n" for v in vocab))
    BertTokenizerFast(vocab_file=str(out / "vocab.txt"), do_lower_case=True).save_pretrained(out)
    return len(vocab)


def _byte_level_bpe(out: Path) -> int:
    """RoBERTa's kind: <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4, byte-level BPE."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(BUILTIN, vocab_size=600, min_frequency=1, special_tokens=specials)
    bpe.save_model(str(out))
    tok = RobertaTokenizerFast(
        vocab_file=str(out / "vocab.json"), merges_file=str(out / "merges.txt")
    )
    tok.save_pretrained(out)
    return len(tok)


def _unigram(out: Path, arch: str) -> int:
    """SentencePiece unigram, with XLM-R's or ALBERT's special tokens and template."""
    from tokenizers import SentencePieceUnigramTokenizer, processors
    from transformers import AlbertTokenizerFast, XLMRobertaTokenizerFast

    if arch == "albert":
        specials, cls, sep = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], "[CLS]", "[SEP]"
        wrapper, names = (
            AlbertTokenizerFast,
            dict(cls_token=cls, sep_token=sep, mask_token="[MASK]"),
        )
    else:
        specials, cls, sep = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<s>", "</s>"
        wrapper, names = XLMRobertaTokenizerFast, {}
    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(BUILTIN, vocab_size=400, special_tokens=specials, unk_token="<unk>")
    tokenizer = sp._tokenizer  # noqa: SLF001 (the tokenizers.Tokenizer it wraps)
    ids = {t: tokenizer.token_to_id(t) for t in (cls, sep)}
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B {sep}",
        special_tokens=list(ids.items()),
    )
    tok = wrapper(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", **names)
    tok.save_pretrained(out)
    return len(tok)


def _save_tokenizer(arch: str, out: Path) -> int:
    kind = ARCHITECTURES[arch].tokenizer
    if kind == "wordpiece":
        return _wordpiece(out)
    if kind == "byte-level-bpe":
        return _byte_level_bpe(out)
    return _unigram(out, arch)


def save_random_model(
    arch: str,
    out: str | Path,
    *,
    size: str = "tiny",
    task: str = "classification",
    labels: tuple[str, ...] = ("negative", "positive"),
    tokenizer_from: str | Path | None = None,
    seed: int = 0,
    **overrides,
) -> Path:
    """Write a random-weight ``arch`` model (and a tokenizer) to ``out``.

    ``overrides`` are extra config fields (e.g. ``max_position_embeddings``).
    """
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
        vocab_size = _save_tokenizer(arch, out)
    fields = {"max_position_embeddings": 512, **SIZES[(arch, size)], **overrides}
    config = AutoConfig.for_model(
        arch,
        vocab_size=vocab_size,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        **fields,
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


def write_labelled_csv(path: Path, rows) -> Path:
    """A text,label CSV of ``rows`` ((text, label) pairs) at ``path``."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path
