"""pocketbert: BERT-family models on phones, boards and FPGAs, verified and measured.

    import pocketbert
    pocketbert.export("my-model", "out/bundle", format="onnx", precision="int8-dynamic")
    pocketbert.load("out/bundle").predict(["a fine film"])

Importing pocketbert loads neither torch nor a runtime; each verb imports what it needs.
"""

from __future__ import annotations

__version__ = "0.1.0"

from pocketbert.core.errors import UserError  # noqa: E402


def export(model, out, **options):
    """Export a model to verified bundles; see :func:`pocketbert.exporter.export`."""
    from pocketbert.exporter import export as _export

    return _export(model, out, **options)


def load(bundle, **options):
    """Load a bundle for prediction; see :func:`pocketbert.predict.load`."""
    from pocketbert.predict import load as _load

    return _load(bundle, **options)


def profile(bundles, devices, **options):
    """Measure (or estimate) bundles on devices; see :func:`pocketbert.profiler.run.profile`."""
    from pocketbert.profiler.run import profile as _profile

    return _profile(bundles, devices, **options)


def distill(*args, **options):
    """Distill a teacher into a student; see :func:`pocketbert.distilling.distill`."""
    from pocketbert.distilling import distill as _distill

    return _distill(*args, **options)


def finetune(*args, **options):
    """Fine-tune a pretrained encoder into a task teacher; see :func:`pocketbert.distilling.finetune`."""
    from pocketbert.distilling import finetune as _finetune

    return _finetune(*args, **options)


def propose_student(*args, **options):
    """A student config with its params and FLOPs; see :func:`pocketbert.distilling.propose_student`."""
    from pocketbert.distilling import propose_student as _propose

    return _propose(*args, **options)


__all__ = [
    "UserError",
    "__version__",
    "distill",
    "export",
    "finetune",
    "load",
    "profile",
    "propose_student",
]
