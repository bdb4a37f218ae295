"""The device catalog (devices.yaml): load it, check every entry, look devices up.

A device is data. The catalog is, in this order: the file given (``--devices``), else
``./devices.yaml`` in the current directory, else the packaged catalog (sdk/assets). An
entry that breaks the schema is reported as one line naming the file, the entry and the
field, so `pocketbert devices` and `pocketbert profile` exit 2; a broken ./devices.yaml
is never skipped for the packaged one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketbert.core.errors import UserError, choices

KINDS = ("host", "board", "phone", "fpga")
FORMATS = ("onnx", "executorch", "tflite", "fpga")
_NUMBERS = ("peak_gflops_fp32", "peak_gops_int8", "mem_bandwidth_gbs", "ram_gb")
_KNOWN = {
    "id",
    "kind",
    "description",
    "cpu",
    "formats",
    "runtimes",
    "transport",
    "connect",
    "fpga",
    "software",
    *_NUMBERS,
}


@dataclass(frozen=True)
class Device:
    id: str
    kind: str
    transport: str
    formats: tuple[str, ...]
    runtimes: tuple[str, ...]
    description: str = ""
    cpu: dict[str, Any] = field(default_factory=dict)
    peak_gflops_fp32: float | None = None
    peak_gops_int8: float | None = None
    mem_bandwidth_gbs: float | None = None
    ram_gb: float | None = None
    connect: dict[str, Any] = field(default_factory=dict)
    fpga: dict[str, Any] = field(default_factory=dict)
    software: dict[str, Any] = field(default_factory=dict)  # what its Python installs

    @property
    def threads(self) -> int | None:
        return self.cpu.get("threads") or self.cpu.get("cores")

    @property
    def can_estimate(self) -> bool:
        if self.kind == "fpga":  # the fpga model reads the fpga block (checked at load)
            return bool(self.fpga)
        return bool(self.peak_gflops_fp32 and self.mem_bandwidth_gbs)


CATALOG = "devices.yaml"


def default_path() -> Path:
    """The catalog that ships with pocketbert."""
    return Path(__file__).resolve().parent / "assets" / CATALOG


def catalog_path(path: str | Path | None = None) -> Path:
    """The catalog to use: ``path`` if given, else ./devices.yaml if present, else the packaged one."""
    if path:
        return Path(path)
    here = Path.cwd() / CATALOG
    return here if here.exists() or here.is_symlink() else default_path()


def catalog_origin(path: Path) -> str:
    """Where ``path`` came from, for the line that says which catalog was used."""
    if path == default_path():
        return "the packaged catalog"
    if path == Path.cwd() / CATALOG:
        return "found in the current directory"
    return "given with --devices"


def _check_entry(entry: Any, where: str) -> Device:
    def bad(field_name: str, what: str) -> UserError:
        return UserError(f"{where}: '{field_name}' {what}")

    if not isinstance(entry, dict):
        raise UserError(
            f"{where}: an entry must be a mapping with id, kind, transport, formats, runtimes"
        )
    for key in ("id", "kind", "transport", "formats", "runtimes"):
        if key not in entry:
            raise bad(key, "is missing")
    unknown = sorted(set(entry) - _KNOWN)
    if unknown:
        raise bad(unknown[0], f"is not a device field; the fields are: {choices(_KNOWN)}")
    if (
        not isinstance(entry["id"], str)
        or not entry["id"].replace("-", "").replace("_", "").isalnum()
    ):
        raise bad("id", "must be a name of letters, digits, - and _")
    if entry["kind"] not in KINDS:
        raise bad("kind", f"is '{entry['kind']}'; choose one of: {choices(KINDS)}")
    from pocketbert.lab import TRANSPORTS  # the registry is the one list of transports

    if entry["transport"] not in TRANSPORTS:
        raise bad("transport", f"is '{entry['transport']}'; choose one of: {choices(TRANSPORTS)}")
    for key, valid in (("formats", FORMATS), ("runtimes", None)):
        value = entry[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise bad(key, "must be a non-empty list of names")
        if valid and set(value) - set(valid):
            raise bad(
                key, f"names {sorted(set(value) - set(valid))}; choose from: {choices(valid)}"
            )
    for key in _NUMBERS:
        value = entry.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise bad(key, f"is {value!r}; give a positive number (or leave it out)")
    for key in ("cpu", "connect", "fpga", "software"):
        if not isinstance(entry.get(key) or {}, dict):
            raise bad(key, "must be a mapping")
    if entry["transport"] == "emulated" and not (
        entry.get("peak_gflops_fp32") and entry.get("mem_bandwidth_gbs")
    ):
        raise bad("transport", "is emulated, which needs peak_gflops_fp32 and mem_bandwidth_gbs")
    if entry["kind"] == "fpga" or entry["transport"] == "fpga-model":
        from pocketbert.lab.fpga_model import check_fpga_block

        problem = check_fpga_block(entry.get("fpga"))
        if problem:
            raise bad("fpga", problem)
    if entry["transport"] == "ssh" and not (entry.get("connect") or {}).get("host"):
        raise bad("connect", "needs 'host' for the ssh transport")
    return Device(
        id=entry["id"],
        kind=entry["kind"],
        transport=entry["transport"],
        formats=tuple(entry["formats"]),
        runtimes=tuple(entry["runtimes"]),
        description=str(entry.get("description") or ""),
        cpu=dict(entry.get("cpu") or {}),
        connect=dict(entry.get("connect") or {}),
        fpga=dict(entry.get("fpga") or {}),
        software=_software(entry.get("software") or {}, bad),
        **{k: (float(entry[k]) if entry.get(k) is not None else None) for k in _NUMBERS},
    )


def _software(value: dict, bad) -> dict[str, Any]:
    """``software``: python (a version string) and, per format, the runtime requirements."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "python":
            if not isinstance(item, str):
                raise bad("software", f'python is {item!r}; give a version string such as "3.11"')
            out[key] = item
        elif key in FORMATS:
            if not isinstance(item, list) or not all(isinstance(v, str) for v in item):
                raise bad("software", f"{key} must be a list of pip requirements")
            out[key] = list(item)
        else:
            raise bad("software", f"names '{key}'; give python and formats: {choices(FORMATS)}")
    return out


def load_devices(path: str | Path | None = None) -> dict[str, Device]:
    """Every device in the catalog (see :func:`catalog_path`), by id, after checking each entry."""
    import yaml

    path = catalog_path(path)
    if not path.is_file():
        raise UserError(
            f"device catalog '{path}' does not exist or is not a file; give --devices FILE"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"device catalog '{path}' cannot be read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"device catalog '{path}' is not UTF-8 text; fix the catalog") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"'{path}' is not valid YAML{at}; fix the catalog") from exc
    if not isinstance(data, dict) or not isinstance(data.get("devices"), list):
        raise UserError(f"'{path}' must hold a top-level 'devices:' list")
    devices: dict[str, Device] = {}
    for i, entry in enumerate(data["devices"]):
        name = entry.get("id") if isinstance(entry, dict) else None
        device = _check_entry(entry, f"{path}: device #{i + 1}" + (f" ({name})" if name else ""))
        if device.id in devices:
            raise UserError(f"{path}: device id '{device.id}' appears twice; ids must be unique")
        devices[device.id] = device
    return devices


def get_devices(ids: list[str], catalog: dict[str, Device]) -> list[Device]:
    """The devices named by ``ids``; an unknown id lists the known ones."""
    unknown = [i for i in ids if i not in catalog]
    if unknown:
        raise UserError(f"unknown device '{unknown[0]}'; known devices: {choices(catalog)}")
    return [catalog[i] for i in dict.fromkeys(ids)]


def device_rows(catalog: dict[str, Device], path: Path | None = None) -> list[dict[str, Any]]:
    """One plain dict per device, for `pocketbert devices` (table or --json); ``catalog``
    names the file it came from when ``path`` is given."""
    rows = [
        {
            "id": d.id,
            "kind": d.kind,
            "transport": d.transport,
            "cpu": d.cpu,
            "peak_gflops_fp32": d.peak_gflops_fp32,
            "peak_gops_int8": d.peak_gops_int8,
            "mem_bandwidth_gbs": d.mem_bandwidth_gbs,
            "ram_gb": d.ram_gb,
            "formats": list(d.formats),
            "runtimes": list(d.runtimes),
            "description": d.description,
        }
        for d in catalog.values()
    ]
    return [{**r, "catalog": str(path)} for r in rows] if path else rows


def format_table(rows: list[dict[str, Any]]) -> str:
    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:g}"

    lines = [f"{'id':<9}{'kind':<7}{'transport':<10}{'GFLOP/s':>8}{'GOP/s':>8}{'GB/s':>6}  formats"]
    for r in rows:
        lines.append(
            f"{r['id']:<9}{r['kind']:<7}{r['transport']:<10}{num(r['peak_gflops_fp32']):>8}"
            f"{num(r['peak_gops_int8']):>8}{num(r['mem_bandwidth_gbs']):>6}  {', '.join(r['formats'])}"
        )
    return "\n".join(lines)
