"""Distill a fine-tuned teacher into a student: ``run_distill(teacher, data, out, config)``.

The loss (``distill_loss``) mixes hard labels, softened logits, hidden states and attention
maps; a loss with terms of both kinds trains in TinyBERT's two stages (intermediate layers
first, then the prediction layer) unless told otherwise; unlabelled text and augmented
variants of the training sentences (``augment``) join the training set for the
distillation terms only. Settings left None are chosen from the data by the rule in
``pocketbert.core.defaults`` (a transfer set of augmented variants among them).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from pocketbert.converters import compression, evaluation, run_dir
from pocketbert.converters.augment import augment
from pocketbert.converters.distill_config import DistillConfig, resolve
from pocketbert.converters.distill_loss import IGNORE
from pocketbert.converters.results import (
    data_summary,
    save_result,
    training_record,
    warn,
    warning_fields,
)
from pocketbert.converters.run_dir import is_main as _is_main
from pocketbert.converters.student_init import freeze_embeddings
from pocketbert.converters.student_size import resolve_size
from pocketbert.converters.students import (
    StudentSpec,
    build_student,
    describe,
    layer_map,
    student_config,
)
from pocketbert.converters.train_loop import encode, train
from pocketbert.converters.transfer_hygiene import clean
from pocketbert.core.data import LabelledData, load_data
from pocketbert.core.data_warnings import chance_warning, rare_class_warnings, small_data_warning
from pocketbert.core.errors import UserError
from pocketbert.core.progress import Progress


def load_classifier(source: str | Path, what: str = "teacher"):
    """(model, tokenizer, labels) of a sequence classifier directory, or a UserError."""
    from pocketbert.converters.model import load_model

    loaded = load_model(source, task=None)
    if loaded.task != "classification":
        raise UserError(
            f"{what} '{source}' is not a classifier (no *ForSequenceClassification in its config); "
            "fine-tune it on your data first: pocketbert finetune"
        )
    return loaded.module.model, loaded.tokenizer, loaded.labels, loaded.source_hash


PROBE_EXAMPLES = 64  # training sentences a new student's norms are calibrated on


def _student(cfg: DistillConfig, teacher, tokenizer, texts: list[str]):
    if isinstance(cfg.student, StudentSpec):
        config = student_config(teacher.config, cfg.student)
        batch = tokenizer(
            texts[:PROBE_EXAMPLES],
            padding=True,
            truncation=True,
            max_length=cfg.train.max_seq_len,
            return_tensors="pt",
        )
        probe = {k: batch[k] for k in ("input_ids", "attention_mask")}
        student = build_student(
            teacher if cfg.init_from_teacher else None, config, seed=cfg.train.seed, probe=probe
        )
        return student, config.to_dict()
    model, student_tok, labels, _ = load_classifier(cfg.student, "student")
    if student_tok.get_vocab() != tokenizer.get_vocab():
        raise UserError(
            f"student '{cfg.student}' has a different tokenizer from the teacher's; "
            "a student must share the teacher's vocabulary"
        )
    if len(labels) != teacher.config.num_labels:
        raise UserError(
            f"student '{cfg.student}' predicts {len(labels)} labels, the teacher {teacher.config.num_labels}"
        )
    model.config.id2label, model.config.label2id = (
        dict(teacher.config.id2label),
        dict(teacher.config.label2id),
    )
    return model, model.config.to_dict()


def _file_hash(path: str | None) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise UserError(f"unlabelled text file '{path}' does not exist")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_before_loading(cfg: DistillConfig, teacher_dir, data, out: Path) -> None:
    """Everything that can be refused before a model loads."""
    run_dir.check_output(
        out,
        {
            "teacher": teacher_dir,
            "data": data.source if isinstance(data, LabelledData) else data,
            "unlabelled text": cfg.unlabelled,
            "student": cfg.student if isinstance(cfg.student, str) else None,
        },
        kept={"cache directory": cfg.cache_dir},
    )
    if cfg.cache_dir:
        try:
            Path(cfg.cache_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot use '{cfg.cache_dir}' as the cache directory ({exc.strerror or exc}); "
                "give a writable directory"
            ) from exc
    if cfg.train.epochs is not None:
        cfg.schedule()  # a stage-1 length that does not fit the epochs is refused here
    if (cfg.unlabelled or cfg.augment) and not any(w.needs_teacher for w in cfg.stages()):
        raise UserError(
            "unlabelled or augmented text needs a distillation term (kd, hidden or attention > 0)"
        )


def _say_sizes(sizes: dict, family: str, say: Callable[[str], None]) -> None:
    s, t = sizes["student"], sizes["teacher"]
    say(
        f"student {family}: {s['params'] / 1e6:.2f}M params "
        f"({s['transformer_layer_params'] / 1e6:.2f}M in layers, teacher "
        f"{t['transformer_layer_params'] / 1e6:.2f}M), "
        f"{s['flops_seq128'] / 1e9:.2f} GFLOPs at seq 128 (teacher {t['flops_seq128'] / 1e9:.2f})"
    )


def _unlabelled(cfg: DistillConfig) -> list[str]:
    from pocketbert.core.texts import read_texts

    return read_texts(cfg.unlabelled) if cfg.unlabelled else []


def _extra_texts(cfg: DistillConfig, unlabelled, train_texts, tokenizer, teacher, say) -> list[str]:
    """Text only the teacher labels: the unlabelled file and augmented variants."""
    extra = list(unlabelled)
    if cfg.augment:
        variants = augment(
            train_texts,
            tokenizer.get_vocab(),
            teacher.get_input_embeddings().weight,
            variants=cfg.augment,
            lowercase=bool(getattr(tokenizer, "do_lower_case", True)),
            seed=cfg.train.seed,
        )
        say(
            f"transfer set: {len(variants)} variants of {len(train_texts)} training sentences "
            "(words swapped for neighbours), labelled by the teacher"
        )
        extra += variants
    return extra


def _cache_path(cfg: DistillConfig, teacher_hash: str, train_set) -> Path | None:
    if not cfg.cache_dir:
        return None
    key = hashlib.sha256(json.dumps([teacher_hash, train_set]).encode()).hexdigest()[:24]
    return Path(cfg.cache_dir) / f"teacher-logits-{key}.pt"


def run_distill(
    teacher_dir: str | Path,
    data: str | Path | LabelledData,
    out: str | Path,
    cfg: DistillConfig | None = None,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    drop_unlabelled: bool = False,
    resume: bool = False,
    quiet: bool = False,
    say: Callable[[str], None] | None = None,
) -> dict:
    """Distill ``teacher_dir`` on ``data`` into a student directory at ``out``; returns the summary."""
    cfg = cfg or DistillConfig()
    out = Path(out)
    say = say or Progress(quiet or not _is_main()).say
    _check_before_loading(cfg, teacher_dir, data, out)
    teacher, tokenizer, teacher_labels, teacher_hash = load_classifier(teacher_dir)
    if not isinstance(data, LabelledData):
        data = load_data(
            data,
            text_column=text_column,
            label_column=label_column,
            seed=cfg.train.seed,
            teacher_labels=teacher_labels,
            drop_unlabelled=drop_unlabelled,
        )
    if len(data.labels) != teacher.config.num_labels:
        raise UserError(
            f"the data has {len(data.labels)} labels ({', '.join(data.labels)}) but the teacher "
            f"predicts {teacher.config.num_labels}; labels must agree"
        )
    say(data.describe())
    unlabelled, hygiene = _unlabelled(cfg), None
    if cfg.dedup:  # converters.transfer_hygiene: near duplicates of the test split, repeats
        data.train, unlabelled, hygiene = clean(
            data.train, [t for t, _ in data.test], unlabelled, cfg.dedup
        )
        say(
            f"transfer-set hygiene: dropped {hygiene['train_near_test']} training rows near a "
            f"test row, {hygiene['unlabelled_near_duplicates']} repeated and "
            f"{hygiene['unlabelled_near_test']} test-like unlabelled lines"
        )
    warnings = warn([*rare_class_warnings(data), small_data_warning(data)], say)
    cfg, chosen = resolve(cfg, data)
    say(chosen.line())
    schedule = cfg.schedule()
    train_texts, train_labels = data.ids("train")
    cfg, size_choice = resolve_size(cfg, teacher, tokenizer, train_texts, say)  # --size auto
    student, student_cfg = _student(cfg, teacher, tokenizer, train_texts)
    compression.check_methods(cfg.compress, student.config)
    vocabulary = compression.plan_vocabulary(
        cfg.compress, tokenizer, train_texts + unlabelled, [t for t, _ in data.test]
    )
    warnings += warn([vocabulary and vocabulary.warning], say)
    student, compressed = compression.before_training(
        student, cfg.compress, tokenizer, train_texts, train_labels, cfg.train.max_seq_len, say
    )
    if frozen := freeze_embeddings(student, teacher, cfg.freeze_embeddings):
        say("word embeddings: frozen as initialized")
    sizes = {"teacher": describe(teacher), "student": describe(student)}
    _say_sizes(sizes, student.config.model_type, say)
    fingerprint = run_dir.run_fingerprint(
        teacher=teacher_hash,
        data=data.sha256,
        student=student_cfg,
        schedule=schedule,
        train=cfg.train,
        unlabelled=_file_hash(cfg.unlabelled),
        augment=cfg.augment,
        init_from_teacher=cfg.init_from_teacher,
        **({"frozen_embeddings": True} if frozen else {}),
        **({"compress": compression.fingerprint(cfg.compress)} if cfg.compress else {}),
        **({"dedup": cfg.dedup.threshold} if cfg.dedup else {}),
    )
    work = run_dir.start(out, fingerprint, resume)

    max_len = cfg.train.max_seq_len
    extra = _extra_texts(cfg, unlabelled, train_texts, tokenizer, teacher, say)
    train_set = encode(
        tokenizer, train_texts + extra, train_labels + [IGNORE] * len(extra), max_len
    )
    mapping = layer_map(student.config.num_hidden_layers, teacher.config.num_hidden_layers)
    result = train(
        student,
        teacher,
        train_set,
        encode(tokenizer, *data.ids("validation"), max_len),
        schedule,
        cfg.train,
        work,
        layer_map=mapping,
        teacher_cache=_cache_path(cfg, teacher_hash, train_set),
        resume=resume,
        quiet=quiet,
        say=say,
    )
    student, student_tok, pruned = compression.after_training(
        student, tokenizer, vocabulary, work, say
    )
    if pruned:
        compressed.append(pruned)
        sizes["student"] = describe(student)
    t0 = time.perf_counter()
    toks = {"student": student_tok, "teacher": tokenizer}
    scores = {
        who: evaluation.scores_on(
            model,
            encode(toks[who], *data.ids("test"), max_len),
            data.labels,
            cfg.train.eval_batch_size,
        )
        for who, model in (("student", student), ("teacher", teacher))
    }
    summary = {
        "teacher": str(teacher_dir),
        "student_family": student.config.model_type,
        "student_spec": asdict(cfg.student)
        if isinstance(cfg.student, StudentSpec)
        else str(cfg.student),
        **size_choice,
        **{f"student_{k}": v for k, v in sizes["student"].items()},
        **{f"teacher_{k}": v for k, v in sizes["teacher"].items()},
        "layer_map": mapping,
        "frozen_embeddings": frozen,  # the word-embedding table kept as initialized
        **({"compression": compressed} if compressed else {}),
        **({"transfer_hygiene": hygiene} if hygiene else {}),
        "loss": [asdict(w) for w in schedule],
        "train": asdict(cfg.train),
        "defaults": chosen.record(),
        **data_summary(data, unlabelled=len(train_set) - len(data.train)),
        **training_record(result),
        **evaluation.summary_fields(scores["student"], data.labels),
        **evaluation.summary_fields(scores["teacher"], data.labels, "teacher_"),
        **evaluation.compare(scores["student"], scores["teacher"], data.labels),
    }
    for line in evaluation.score_lines(summary, data.labels):
        say(line)
    if _is_main():  # one process times, on the CPU, while the others wait
        timed = evaluation.latency_on_sentences(
            {"teacher": teacher, "student": student},
            toks,
            [t for t, _ in data.test],
            max_len,
        )
        summary.update(evaluation.speed_fields(timed, threads=1))
        if summary["speedup_on_test_sentences"]:
            say(
                f"speed-up on {summary['latency_sentences']} test sentences: "
                f"{summary['speedup_on_test_sentences']:.2f}x (p50 teacher "
                f"{summary['teacher_p50_ms_on_test_sentences']:.2f} ms, student "
                f"{summary['student_p50_ms_on_test_sentences']:.2f} ms; torch, batch 1, "
                "1 thread, tokenization included)"
            )
    summary["eval_seconds"] = round(time.perf_counter() - t0, 1)
    lost = summary["lost_classes"]
    warnings += warn(
        [
            chance_warning(scores["teacher"]["accuracy"], data, "test", "teacher", kept=True),
            f"the student never gets class(es) {', '.join(lost)} right (test F1 0) where the "
            "teacher does; more epochs, unlabelled text of those classes or a larger student help"
            if lost
            else None,
        ],
        say,
    )
    summary.update(warning_fields(warnings))
    save_result(student, student_tok, summary, work, out, data, seed=cfg.train.seed)
    return summary
