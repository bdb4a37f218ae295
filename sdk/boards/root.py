"""An aarch64 Python for boards that are not attached: Debian bookworm's arm64 python3.11,
unpacked (``dpkg-deb -x``) into a user-level cache and run under ``qemu-aarch64-static -L``.

No chroot, no binfmt, no root: the packages' own files, the dynamic loader and libc
included, are unpacked into one folder, and qemu looks up absolute paths there first. The
folder is built once (about a minute, ~70 MB) into a temporary name and renamed when whole,
so a killed build leaves nothing half-made; a stamp file records the packages and a digest
of every file, and a root whose files no longer match it is rebuilt, with a line saying so.

Trap: with the host's /sys visible, onnxruntime and ai-edge-litert crash under qemu
(SIGSEGV in cpuinfo reading /sys/devices/system/cpu/{possible,present}); empty files of
those names in the root, which qemu finds first, avoid it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from pocketbert.core.errors import UserError

SUITE = "bookworm"
ARCH = "arm64"
PYTHON = "3.11"  # bookworm's python3; a board on another version cannot be emulated here
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What the root must hold: the interpreter, and the C++ runtime the wheels' libraries need.
ROOTS = ("python3.11", "libstdc++6", "libgcc-s1", "libgomp1")
# Packages the dependency walk meets that only maintainer scripts use (never run here).
SKIPPED = {
    "debconf",
    "debconf-2.0",
    "perl-base",
    "dpkg",
    "tar",
    "coreutils",
    "debianutils",
    "init-system-helpers",
    "sensible-utils",
    "libc-bin",
    "install-info",
}
STAMP = ".pocketbert-root.json"
QEMU = "qemu-aarch64-static"
INSTALL_QEMU = "apt-get install qemu-user-static"
TIMEOUT_S = 60


def cache_dir() -> Path:
    """pocketbert's user-level cache: $POCKETBERT_CACHE, else $XDG_CACHE_HOME/pocketbert,
    else ~/.cache/pocketbert."""
    given = os.environ.get("POCKETBERT_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pocketbert"


def emulation_dir() -> Path:
    return cache_dir() / "emulation"


def qemu_path() -> str:
    """The qemu-user binary, or a UserError saying what to install."""
    found = shutil.which(QEMU)
    if not found:
        raise UserError(
            f"{QEMU} is not installed here; the emulated board check needs it: "
            f"run `{INSTALL_QEMU}` (Debian/Ubuntu)"
        )
    return found


def root_path(python: str = PYTHON) -> Path:
    return emulation_dir() / f"debian-{SUITE}-{ARCH}-python{python}"


def ensure_root(python: str = PYTHON, say: Callable[[str], None] = print) -> Path:
    """The cached aarch64 root for ``python``; built (or rebuilt when corrupt) first."""
    if python != PYTHON:
        raise UserError(
            f"the emulated board check runs Python {PYTHON} (Debian {SUITE}'s arm64 python3); "
            f"a board on Python {python} cannot be emulated here: set its devices.yaml "
            f'software.python to "{PYTHON}", or check it on the board itself'
        )
    root = root_path(python)
    with locked(root):
        problem = check_tree(root)
        if problem is None:
            return root
        if problem != "missing":
            say(f"emulated root {root} is {problem}; rebuilding it")
            discard(root)
        build_root(root, say)
    return root


@contextlib.contextmanager
def locked(target: Path) -> Iterator[None]:
    """One builder at a time for ``target`` (other processes wait for it to finish)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def tree_digest(folder: Path) -> str:
    """sha256 over every regular file's path, size and content, and every link's target."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if rel == STAMP or rel.startswith("__pycache__") or "/__pycache__/" in f"/{rel}":
            continue
        if p.is_symlink():
            h.update(f"L {rel} {os.readlink(p)}\n".encode())
        elif p.is_file():
            h.update(f"F {rel} {p.stat().st_size}\n".encode())
            with p.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def check_tree(folder: Path) -> str | None:
    """None when ``folder`` matches its stamp; else what is wrong ('missing', ...)."""
    if not folder.exists():
        return "missing"
    try:
        stamp = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return "corrupt (no readable stamp file)"
    if stamp.get("digest") != tree_digest(folder):
        return "corrupt (its files no longer match the digest in its stamp)"
    return None


def write_stamp(folder: Path, record: dict) -> None:
    (folder / STAMP).write_text(json.dumps({**record, "digest": tree_digest(folder)}, indent=1))


def discard(folder: Path) -> None:
    """Remove ``folder``: renamed away first, so it is never seen half-removed."""
    if not folder.exists():
        return
    trash = folder.with_name(f".{folder.name}.trash-{os.getpid()}")
    folder.replace(trash)
    shutil.rmtree(trash, ignore_errors=True)


def staging(final: Path) -> Path:
    """A fresh temporary folder beside ``final`` (same file system: the rename is atomic);
    leftovers of a killed build are removed first."""
    for old in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))


def mirror() -> str:
    """The Debian mirror apt uses here (its sources), else deb.debian.org."""
    sources = [*Path("/etc/apt/sources.list.d").glob("*.sources"), Path("/etc/apt/sources.list")]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            uri = None
            if words[:1] == ["URIs:"] and len(words) > 1:
                uri = words[1]
            elif words[:1] == ["deb"] and len(words) > 1:
                uri = next((w for w in words[1:] if "://" in w), None)
            if uri and uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"could not download {url} ({reason}); building the emulated root needs the "
            "Debian mirror once (later checks use the cached root)"
        ) from exc


def parse_packages(text: str) -> dict[str, dict[str, str]]:
    """A Packages index as {name: fields}; for a name listed twice, the last."""
    out: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" in fields:
            out[fields["Package"]] = fields
    return out


def provides(index: dict[str, dict[str, str]]) -> dict[str, str]:
    """Virtual package -> the first real package that provides it."""
    out: dict[str, str] = {}
    for name, fields in sorted(index.items()):
        for item in fields.get("Provides", "").split(","):
            virtual = item.split("(")[0].strip()
            if virtual:
                out.setdefault(virtual, name)
    return out


def resolve(index: dict[str, dict[str, str]], wanted: tuple[str, ...]) -> list[str]:
    """``wanted`` and everything it Depends/Pre-Depends on (first alternative that exists)."""
    virtual = provides(index)
    seen: list[str] = []
    todo = list(wanted)
    while todo:
        name = todo.pop(0)
        if name in SKIPPED or name in seen:
            continue
        if name not in index:
            raise UserError(f"Debian {SUITE} {ARCH} has no package '{name}'")
        seen.append(name)
        fields = index[name]
        for rel in ("Pre-Depends", "Depends"):
            for clause in filter(None, (c.strip() for c in fields.get(rel, "").split(","))):
                options = [a.split("(")[0].split(":")[0].strip() for a in clause.split("|")]
                real = [o for o in options if o in index] or [
                    virtual[o] for o in options if o in virtual
                ]
                if not real:
                    raise UserError(f"Debian {SUITE} {ARCH}: nothing provides '{clause}'")
                todo.append(real[0])
    return seen


def packages_index(base: str) -> dict[str, dict[str, str]]:
    """bookworm main arm64's Packages, checked against the (signed, where gpgv can) Release."""
    release = fetch(f"{base}/dists/{SUITE}/InRelease")
    keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
    if shutil.which("gpgv") and keyring.is_file():
        with tempfile.NamedTemporaryFile(suffix=".InRelease") as fh:
            fh.write(release)
            fh.flush()
            signed = subprocess.run(
                ["gpgv", "--keyring", str(keyring), fh.name], capture_output=True
            )
        if signed.returncode != 0:
            raise UserError(f"{base}/dists/{SUITE}/InRelease does not carry a valid signature")
    member = f"main/binary-{ARCH}/Packages.xz"
    data = fetch(f"{base}/dists/{SUITE}/{member}")
    digest = hashlib.sha256(data).hexdigest()
    if f" {digest} " not in release.decode(errors="replace"):
        raise UserError(f"{base}/dists/{SUITE}/{member} does not match its Release file")
    return parse_packages(lzma.decompress(data).decode())


def build_root(root: Path, say: Callable[[str], None] = print) -> None:
    """Download, check and unpack the packages into a temporary folder; rename it to ``root``."""
    if not shutil.which("dpkg-deb"):
        raise UserError(
            "dpkg-deb is not installed here; building the emulated root unpacks Debian "
            "packages with it: run `apt-get install dpkg` (Debian/Ubuntu)"
        )
    base = mirror()
    say(
        f"building the emulated aarch64 root (Debian {SUITE} python{PYTHON}, ~70 MB, about a minute) in {root}"
    )
    index = packages_index(base)
    names = resolve(index, ROOTS)
    tmp = staging(root)
    try:
        debs = tmp / ".debs"
        debs.mkdir()
        tree = tmp / "root"
        tree.mkdir()
        for i, name in enumerate(names, 1):
            fields = index[name]
            say(f"  [{i}/{len(names)}] {name} {fields['Version']}")
            data = fetch(f"{base}/{fields['Filename']}")
            if hashlib.sha256(data).hexdigest() != fields["SHA256"]:
                raise UserError(f"{name}'s .deb from {base} does not match its sha256 in Packages")
            deb = debs / f"{name}.deb"
            deb.write_bytes(data)
            unpack = subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], capture_output=True)
            if unpack.returncode != 0:
                raise UserError(f"dpkg-deb could not unpack {name}: {unpack.stderr.decode()[:200]}")
        cpu = tree / "sys" / "devices" / "system" / "cpu"
        cpu.mkdir(parents=True)
        for name in ("possible", "present"):  # the cpuinfo trap (module docstring)
            (cpu / name).write_text("")
        shutil.rmtree(debs)
        for p in tree.iterdir():
            p.rename(tmp / p.name)
        tree.rmdir()
        packages = {n: index[n]["Version"] for n in names}
        write_stamp(tmp, {"suite": SUITE, "arch": ARCH, "mirror": base, "packages": packages})
        tmp.replace(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"emulated root ready: {len(names)} packages, {_mb(root):.0f} MB")


def _mb(folder: Path) -> float:
    return (
        sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6
    )


def qemu_cpu(core: str | None) -> str | None:
    """qemu's model of the board's core ("Cortex-A72" -> cortex-a72), where qemu has one."""
    found = re.search(r"cortex-a\d+", (core or "").lower())
    if not found:
        return None
    listed = subprocess.run([qemu_path(), "-cpu", "help"], capture_output=True, text=True).stdout
    return found.group(0) if found.group(0) in listed.split() else None


def python_command(root: Path, core: str | None = None) -> list[str]:
    """The argv prefix that runs the root's python3.11 under qemu (as the board's core
    where qemu models it: its instruction set, e.g. no dot-product on a Cortex-A72)."""
    cpu = qemu_cpu(core)
    return [
        qemu_path(),
        *(["-cpu", cpu] if cpu else []),
        "-L",
        str(root),
        str(root / "usr" / "bin" / f"python{PYTHON}"),
    ]
