"""Teacher -> student -> distilled -> quantized -> exported file (needs torch).

``EXPORTERS`` fills on first use (the exporter modules import torch), so that the config
modules (``quantization``, ``methods``, ``registry``) and
``pocketbert.converters.architectures.preflight`` import, and refuse bad input, without torch.
"""

from pocketbert.converters.registry import ExporterInfo, register_exporter

__all__ = ["EXPORTERS", "ExporterInfo", "register_exporter"]


def __getattr__(name: str):
    if name == "EXPORTERS":
        from pocketbert.converters import (  # noqa: F401
            export_executorch,
            export_fpga,
            export_onnx,
            export_tflite,
        )
        from pocketbert.converters.registry import EXPORTERS

        globals()["EXPORTERS"] = EXPORTERS
        return EXPORTERS
    raise AttributeError(f"module 'pocketbert.converters' has no attribute {name!r}")
