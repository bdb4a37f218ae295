import re
import subprocess
import sys
from pathlib import Path

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
