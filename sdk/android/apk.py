"""``pocketbert android BUNDLE -o app.apk``: the demo app with BUNDLE inside, signed for debugging
(android_demo/build.sh: aapt2, javac, dx, zipalign, apksigner; no Gradle)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pocketbert.android import toolchain
from pocketbert.core.errors import UserError


def build_apk(bundle: str | Path, out: str | Path) -> Path:
    """Check that the app can run ``bundle``, then build ``out`` (an .apk) with it inside."""
    bundle, out = Path(bundle), Path(out)
    if out.suffix != ".apk":
        raise UserError(f"-o '{out}' must name an .apk file, e.g. -o pocketbert-demo.apk")
    if not bundle.is_dir():
        raise UserError(
            f"'{bundle}' is not a bundle directory; the APK carries an unzipped bundle "
            "(pocketbert export ... -o DIR)"
        )
    toolchain.check_app_bundle(bundle)
    script = toolchain.demo_sources() / "build.sh"
    if not shutil.which("bash"):
        raise UserError("bash is not installed here; build.sh needs it")
    proc = subprocess.run(
        ["bash", str(script), str(bundle), str(out)], capture_output=True, text=True
    )
    if proc.returncode == 2:  # build.sh's own one-line refusal (a missing tool, a bad bundle)
        raise UserError(proc.stderr.strip().splitlines()[-1].removeprefix("build.sh: "))
    if proc.returncode != 0:
        raise RuntimeError(f"android_demo/build.sh failed:\n{proc.stderr[-2000:]}")
    return out
