"""Teacher -> student -> distilled -> quantized -> exported file (needs torch).

``EXPORTERS`` fills on first use (the exporter modules import torch); the config
modules (``quantization``, ``methods``, ``registry``) import without torch.
"""

from pocketbert.converters.registry import ExporterInfo, register_exporter


def __getattr__(name: str):
    if name == "EXPORTERS":
        from pocketbert.converters import export_executorch, export_onnx, export_tflite  # noqa: F401
        from pocketbert.converters.registry import EXPORTERS

        return EXPORTERS
    raise AttributeError(f"module 'pocketbert.converters' has no attribute {name!r}")


__all__ = ["EXPORTERS", "ExporterInfo", "register_exporter"]
