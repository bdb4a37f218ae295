"""Teacher -> student -> distilled -> quantized -> exported file (needs torch)."""

from pocketbert.converters import export_executorch, export_onnx, export_tflite  # noqa: F401
from pocketbert.converters.registry import EXPORTERS, ExporterInfo, register_exporter

__all__ = ["EXPORTERS", "ExporterInfo", "register_exporter"]
