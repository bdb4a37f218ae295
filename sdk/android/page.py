"""The app's page in headless Chromium on this machine, on a real bundle.

The page (android_demo/app/src/main/assets/web) and the Java Bridge are the app's own: a
loopback HTTP server serves the page, onnxruntime-web and the bundle as the app's WebView gets
them, and hands the page's bridge calls to the Bridge class running in a JVM here
(``HostBridge``). What the page writes through ``finish`` is the record, as on the phone.
"""

from __future__ import annotations

import json
import mimetypes
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pocketbert.android import toolchain
from pocketbert.core.errors import UserError

MODES = ("bench", "classify")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio"]


def _die_with_parent() -> None:
    """In the child: SIGKILL when the process that started it dies (Linux), so a harness that is
    killed leaves no browser behind; elsewhere nothing."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise UserError("no Chromium here to run the page in; install it: apt-get install chromium")


class _JavaBridge:
    """The HostBridge JVM: one request a line in, one answer a line out."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.lock = threading.Lock()

    def call(self, method: str, arg: str) -> str:
        with self.lock:
            line = json.dumps({"method": method, "arg": arg}, ensure_ascii=False) + "\n"
            self.proc.stdin.write(line.encode("utf-8"))
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError("the Java bridge ended: " + self.proc.stderr.read().decode()[-500:])
        return json.loads(answer)["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _handler(roots: dict[str, Path], bridge: _JavaBridge):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):  # the browser may be gone
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].lstrip("/") or "index.html"
            top, _, rest = path.partition("/")
            root, rel = (roots[top], rest) if top in roots and rest else (roots[""], path)
            file = (root / rel).resolve()
            if root.resolve() not in file.parents or not file.is_file():
                self._send(404, b"not found", "text/plain")
                return
            kind = {".wasm": "application/wasm", ".mjs": "text/javascript"}.get(file.suffix)
            self._send(200, file.read_bytes(), kind or mimetypes.guess_type(file.name)[0] or "")

        def do_POST(self) -> None:
            method = self.path.rsplit("/", 1)[-1]
            arg = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            try:
                result = bridge.call(method, arg)
            except Exception as exc:  # the page sees a failed call; the harness sees the error
                self._send(500, str(exc).encode(), "text/plain")
                return
            self._send(200, result.encode("utf-8"), "text/plain; charset=utf-8")

    return Handler


@contextmanager
def serve(
    bundle: str | Path,
    mode: str,
    *,
    texts: list[str] | None = None,
    runs: int = 50,
    warmup: int = 5,
    seq_len: int = 0,
    record_out: str | Path | None = None,
):
    """The page on ``bundle`` at a loopback URL, with the Java Bridge behind it: yields
    (url, where the record will be, the bridge)."""
    if mode not in (*MODES, "ui"):
        raise UserError(f"mode '{mode}' is not one of: {', '.join(MODES)}, ui")
    classes = toolchain.host_classes()
    _, java = toolchain.java()
    ort = toolchain.ort_web_dir()
    with tempfile.TemporaryDirectory(prefix="pocketbert-page-") as tmp:
        out = Path(record_out) if record_out else Path(tmp) / "record.json"
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts or [], ensure_ascii=False), encoding="utf-8")
        bridge = _JavaBridge(
            [java, "-cp", str(classes), "org.pocketbert.demo.HostBridge", str(bundle), mode]
            + [str(runs), str(warmup), str(seq_len), str(out), str(texts_file)]
        )
        roots = {"": toolchain.WEB, "ort": ort, "bundle": Path(bundle)}
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(roots, bridge))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/index.html", out, bridge
        finally:
            server.shutdown()
            server.server_close()
            bridge.close()


def run_page(
    bundle: str | Path,
    *,
    mode: str = "classify",
    texts: list[str] | None = None,
    runs: int = 50,
    warmup: int = 5,
    seq_len: int = 0,
    timeout: float = 300.0,
    record_out: str | Path | None = None,
) -> dict:
    """Open the page on ``bundle`` in headless Chromium and return the record it finishes with:
    ``bench`` times ``runs`` inferences (the agent's schema), ``classify`` gives each text's
    result ({label, score, probabilities} or {embedding})."""
    if mode not in MODES:
        raise UserError(f"mode '{mode}' is not one of: {', '.join(MODES)}")
    exe = chromium()
    served = serve(
        bundle, mode, texts=texts, runs=runs, warmup=warmup, seq_len=seq_len, record_out=record_out
    )
    with served as (url, out, bridge), tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        browser = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            return _wait(out, browser, bridge, timeout)
        finally:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()


def screenshot(bundle: str | Path, png: str | Path, *, budget_ms: int = 30000) -> str:
    """The app's screen (its ``ui`` mode, the default text classified) as a PNG; returns the DOM."""
    exe = chromium()
    with serve(bundle, "ui") as (url, _, _), tempfile.TemporaryDirectory(prefix="chromium-") as p:
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={p}", f"--virtual-time-budget={budget_ms}"]
        dom = subprocess.run(
            [exe, *flags, "--window-size=420,640", f"--screenshot={png}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return dom.stdout


def _wait(out: Path, browser: subprocess.Popen, bridge: _JavaBridge, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.is_file():
            return json.loads(out.read_text(encoding="utf-8"))
        if browser.poll() is not None:
            raise RuntimeError(
                f"Chromium ended (exit {browser.returncode}) before the page finished: "
                + browser.stderr.read().decode(errors="replace")[-800:]
            )
        if bridge.proc.poll() is not None:
            raise RuntimeError(
                "the Java bridge ended: " + bridge.proc.stderr.read().decode()[-800:]
            )
        time.sleep(0.05)
    raise UserError(f"the page did not finish within {timeout:g}s")
