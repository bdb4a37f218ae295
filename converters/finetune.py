"""Fine-tune a pretrained encoder (or a classifier) on labelled text: ``run_finetune``.

Used when only a pretrained encoder is given: it gets a classification head for the
data's labels and is trained with cross-entropy by the same loop as distillation. Epochs
and learning rate left None are chosen from the data (``pocketbert.core.defaults``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch

from pocketbert.converters import run_dir
from pocketbert.converters.distill_loss import LossWeights
from pocketbert.converters.evaluation import scores_on, summary_fields
from pocketbert.converters.lora import LoraSettings, merged, with_lora
from pocketbert.converters.model import load_pretrained, source_hash
from pocketbert.converters.results import (
    data_summary,
    save_result,
    training_record,
    warn,
    warning_fields,
)
from pocketbert.converters.run_dir import is_main as _is_main
from pocketbert.converters.students import describe
from pocketbert.converters.train_loop import TrainConfig, encode, train
from pocketbert.core import defaults
from pocketbert.core.data import LabelledData, load_data
from pocketbert.core.data_warnings import chance_warning, rare_class_warnings
from pocketbert.core.progress import Progress


def load_for_finetuning(source: str | Path, labels: list[str]):
    """(classifier with a head for ``labels``, tokenizer) from an encoder or classifier dir."""
    from transformers import AutoModelForSequenceClassification

    return load_pretrained(
        source,
        AutoModelForSequenceClassification,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )


def run_finetune(
    model_dir: str | Path,
    data: str | Path | LabelledData,
    out: str | Path,
    cfg: TrainConfig | None = None,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    drop_unlabelled: bool = False,
    label_names: tuple[str, ...] | None = None,
    lora: LoraSettings | None = None,
    resume: bool = False,
    quiet: bool = False,
    say: Callable[[str], None] | None = None,
) -> dict:
    """Fine-tune ``model_dir`` on ``data`` into a classifier directory at ``out``; returns the
    summary. ``lora``: train rank-r adapters and the head only, merged into the weights
    before the classifier is scored and saved (``converters.lora``)."""
    cfg = cfg or TrainConfig()
    out = Path(out)
    say = say or Progress(quiet or not _is_main()).say
    run_dir.check_output(
        out, {"model": model_dir, "data": data.source if isinstance(data, LabelledData) else data}
    )
    if not isinstance(data, LabelledData):
        data = load_data(
            data,
            text_column=text_column,
            label_column=label_column,
            seed=cfg.seed,
            drop_unlabelled=drop_unlabelled,
            label_names=label_names,
        )
    say(data.describe())
    warnings = warn(rare_class_warnings(data), say)
    counts = list(data.counts().values())
    chosen = defaults.choose_finetune(
        counts, cfg.batch_size, epochs=cfg.epochs, lr=cfg.lr, lora=lora is not None
    )
    cfg = replace(
        cfg, epochs=chosen.epochs, lr=chosen.lr, select_by=cfg.select_by or chosen.select_by
    )
    say(chosen.line())
    torch.manual_seed(cfg.seed)  # the new head's random init: the same run gives the same model
    model, tokenizer = load_for_finetuning(model_dir, data.labels)
    lora_record = None
    if lora is not None:
        model, lora_record = with_lora(model, lora)
        say(
            f"LoRA: rank {lora.rank} adapters on {lora_record['layers']} Linears; "
            f"{lora_record['trainable_params']:,} of {lora_record['total_params']:,} "
            f"parameters train ({lora_record['trainable_share']:.1%})"
        )
    fingerprint = run_dir.run_fingerprint(
        model=source_hash(str(model_dir)),
        data=data.sha256,
        train=cfg,
        labels=data.labels,
        **({"lora": lora.record()} if lora else {}),
    )
    work = run_dir.start(out, fingerprint, resume)
    train_set = encode(tokenizer, *data.ids("train"), cfg.max_seq_len)
    val_set = encode(tokenizer, *data.ids("validation"), cfg.max_seq_len)
    schedule = [LossWeights(ce=1.0)] * cfg.epochs
    result = train(
        model, None, train_set, val_set, schedule, cfg, work, resume=resume, quiet=quiet, say=say
    )
    if lora is not None:
        model = merged(model)  # an ordinary classifier from here on: scored, then saved
    t0 = time.perf_counter()
    test_set = encode(tokenizer, *data.ids("test"), cfg.max_seq_len)
    scores = scores_on(model, test_set, data.labels, cfg.eval_batch_size)
    summary = {
        "base": str(model_dir),
        **describe(model),
        "train": asdict(cfg),
        "defaults": chosen.record(),
        **({"lora": lora_record} if lora_record else {}),
        **data_summary(data),
        **training_record(result),
        **summary_fields(scores, data.labels),
        "eval_seconds": round(time.perf_counter() - t0, 1),
    }
    say(
        f"test: accuracy {scores['accuracy']:.2%}, macro-F1 {scores['macro_f1']:.3f}; "
        "per-class F1: " + ", ".join(f"{lab} {f:.2f}" for lab, f in summary["test_f1"].items())
    )
    kept_epoch = result.best_epoch or result.history[-1]["epoch"]
    kept = next(r for r in result.history if r["epoch"] == kept_epoch)
    steps = (len(train_set) // cfg.batch_size) * len(result.history)
    cause = defaults.likely_cause(
        len(train_set), steps, [r["loss"] for r in result.history], len(data.labels), cfg.lr
    )
    warnings += warn(
        [chance_warning(kept["val_accuracy"], data, "validation", "teacher", cause=cause)], say
    )
    summary.update(warning_fields(warnings))
    save_result(model, tokenizer, summary, work, out, data, seed=cfg.seed)
    return summary
