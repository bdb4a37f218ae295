"""pocketbert: BERT-family models on phones, boards and FPGAs, verified and measured.

    import pocketbert
    pocketbert.export("my-model", "out/bundle", format="onnx", precision="int8-dynamic")
    pocketbert.load("out/bundle").predict(["a fine film"])

Importing pocketbert loads neither torch nor a runtime; each verb imports what it needs.
"""

from __future__ import annotations

__version__ = "0.1.0"

from pocketbert.errors import UserError  # noqa: E402


def export(model, out, **options):
    """Export a model to verified bundles; see :func:`pocketbert.exporter.export`."""
    from pocketbert.exporter import export as _export

    return _export(model, out, **options)


def load(bundle, **options):
    """Load a bundle for prediction; see :func:`pocketbert.predict.load`."""
    from pocketbert.predict import load as _load

    return _load(bundle, **options)


def profile(bundles, devices, **options):
    """Measure (or estimate) bundles on devices; see :func:`pocketbert.profiler.profile`."""
    from pocketbert.profiler import profile as _profile

    return _profile(bundles, devices, **options)


__all__ = ["UserError", "__version__", "export", "load", "profile"]
