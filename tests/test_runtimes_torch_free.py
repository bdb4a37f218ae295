import re
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIMES_DIR = Path(__file__).resolve().parents[1] / "runtimes"


def test_runtimes_source_never_imports_torch_or_transformers():
    pattern = re.compile(r"^\s*(import|from)\s+(torch|transformers|pocketbert\.converters)\b", re.M)
    offenders = [p.name for p in RUNTIMES_DIR.glob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_importing_runtimes_and_predictor_leaves_torch_unloaded():
    code = (
        "import sys, pocketbert, pocketbert.runtimes, pocketbert.predict, pocketbert.verify;"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_onnx_bundle_runs_in_a_process_without_torch(onnx_bundle):
    code = (
        "import sys, pocketbert;"
        f"p = pocketbert.load({str(onnx_bundle)!r}).predict(['a fine film']);"
        "assert 'torch' not in sys.modules, 'torch was imported';"
        "print(p[0]['label'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("negative", "positive")


def _run_blocking_torch(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python where ``import torch`` raises ImportError."""
    guard = "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
    return subprocess.run([sys.executable, "-c", guard + code], capture_output=True, text=True)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_bundle_runs_in_a_process_that_cannot_import_torch(fp32_bundle, fmt):
    bundle = fp32_bundle(fmt)
    code = f"import pocketbert; print(pocketbert.load({str(bundle)!r}).predict(['a fine film'])[0]['label'])"
    out = _run_blocking_torch(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("negative", "positive")


def test_executorch_bundle_loads_without_the_executorch_exporter(fp32_bundle):
    """executorch 1.5.1 runs .pte files only with torch (see runtimes/executorch.py); what
    the runtime avoids is executorch.exir, which executorch.runtime would import."""
    bundle = fp32_bundle("executorch")
    code = (
        "import sys, pocketbert;"
        f"p = pocketbert.load({str(bundle)!r}).predict(['a fine film']);"
        "print(p[0]['label'], sorted(m for m in sys.modules if m.startswith('executorch.exir')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    label, exir = out.stdout.split(" ", 1)
    assert label in ("negative", "positive") and exir.strip() == "[]"


def test_executorch_load_says_what_to_install_when_torch_is_missing(fp32_bundle):
    bundle = fp32_bundle("executorch")
    code = (
        "from pocketbert import runtimes\n"
        "from pocketbert.core.errors import UserError\n"
        f"try: runtimes.load({str(bundle / 'model.pte')!r})\n"
        "except UserError as exc: print(exc)\n"
    )
    out = _run_blocking_torch(code)
    assert out.returncode == 0, out.stderr
    assert "'torch' is not installed here; run: pip install" in out.stdout
