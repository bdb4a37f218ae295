"""Open a page in a real headless Chromium (Debian's ``chromium``): its DOM after load, its
console errors, and a screenshot read back as pixels (a small PNG decoder, no imaging library)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium() -> str | None:
    return next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )


def open_page(
    page: Path, shot: Path, size: tuple[int, int] = (1200, 2400)
) -> tuple[str, list[str]]:
    """(the DOM after load, console error lines); writes a screenshot to ``shot``."""
    exe = chromium()
    url = page.resolve().as_uri()
    dom = subprocess.run(
        [exe, *FLAGS, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    subprocess.run(
        [exe, *FLAGS, f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    logs = dom.stderr.splitlines()
    errors = [line for line in logs if "CONSOLE" in line or "Uncaught" in line]
    return dom.stdout, errors


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), f"PNG depth {depth}, color type {color}"
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride, rows, prev = width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def count_color(path: Path, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels within ``tolerance`` (per channel) of ``rgb``."""
    width, _, rows = png_pixels(path)
    bpp = len(rows[0]) // width
    n = 0
    for row in rows:
        for x in range(0, len(row), bpp):
            if all(abs(row[x + k] - rgb[k]) <= tolerance for k in range(3)):
                n += 1
    return n
