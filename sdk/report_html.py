"""``report.html``: the build report as one self-contained page (inline CSS and SVG, no script).

Per device a Pareto plot: the bundle's test accuracy against its p50 latency, marker area
proportional to the bundle's MB, measured bundles as filled circles, estimated ones as
hollow diamonds, the Pareto front as a line and the pick ringed.
"""

from __future__ import annotations

import json
import math
from html import escape

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 560, 320, 62, 20, 16, 44
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1b1f24;max-width:1100px}
h1{font-size:22px} h2{font-size:18px;margin-top:28px} table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right} th{background:#f3f5f7}
td.l,th.l{text-align:left} tr.pick td{background:#fff5d6} .failed{color:#a40e26}
.muted{color:#57606a} svg{background:#fafbfc;border:1px solid #d0d7de} code{font-size:12px}
details{margin:4px 0} pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:12px}
"""
LEGEND = (
    '<p class="muted">Filled circles: measured; hollow diamonds: estimated; marker area: '
    "bundle MB; dashed line: the Pareto front; ringed: the pick.</p>"
)
COLORS = {"measured": "#0b63c5", "estimated": "#c2410c"}


def _f(value, fmt: str = "{:.2f}", none: str = "–") -> str:
    return none if value is None else fmt.format(value)


def _scale(lo: float, hi: float, a: float, b: float, log: bool):
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    span = (hi - lo) or 1.0

    def to(v: float) -> float:
        v = math.log10(v) if log else v
        return a + (v - lo) / span * (b - a)

    return to


def pareto_front(points: list[dict]) -> list[dict]:
    """The points no other point beats on both latency (lower) and accuracy (higher)."""
    front, best = [], -1.0
    for p in sorted(points, key=lambda p: (p["p50_ms"], -p["test_accuracy"])):
        if p["test_accuracy"] > best:
            front.append(p)
            best = p["test_accuracy"]
    return front


def plot(device: str, rows: list[dict], pick: str | None) -> str:
    pts = [
        r for r in rows if r["status"] == "ok" and r["p50_ms"] and r["test_accuracy"] is not None
    ]
    if not pts:
        return f'<p class="muted">No bundle ran on {escape(device)}: nothing to plot.</p>'
    xs, ys = [p["p50_ms"] for p in pts], [100 * p["test_accuracy"] for p in pts]
    log = max(xs) / min(xs) > 8
    x_lo, x_hi = (min(xs) / 1.3, max(xs) * 1.3) if log else (0.0, max(xs) * 1.15)
    y_lo, y_hi = min(ys) - 2, max(ys) + 2
    sx = _scale(x_lo, x_hi, PAD_L, W - PAD_R, log)
    sy = _scale(y_lo, y_hi, H - PAD_B, PAD_T, False)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" '
        f'aria-label="accuracy against latency on {escape(device)}">'
    ]
    out.append(
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="#57606a"/>'
    )
    out.append(f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" stroke="#57606a"/>')
    for i in range(5):
        xv = (
            (10 ** (math.log10(x_lo) + i / 4 * (math.log10(x_hi) - math.log10(x_lo))))
            if log
            else x_lo + i / 4 * (x_hi - x_lo)
        )
        yv = y_lo + i / 4 * (y_hi - y_lo)
        out.append(
            f'<text x="{sx(xv):.1f}" y="{H - PAD_B + 16}" font-size="11" text-anchor="middle">{xv:.3g}</text>'
        )
        out.append(
            f'<text x="{PAD_L - 6}" y="{sy(yv) + 4:.1f}" font-size="11" text-anchor="end">{yv:.1f}</text>'
        )
    out.append(
        f'<text x="{(W + PAD_L) / 2}" y="{H - 8}" font-size="12" text-anchor="middle">p50 latency, ms{" (log)" if log else ""}</text>'
    )
    out.append(
        f'<text x="14" y="{H / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {H / 2})">test accuracy, %</text>'
    )
    front = pareto_front(pts)
    if len(front) > 1:
        path = " ".join(f"{sx(p['p50_ms']):.1f},{sy(100 * p['test_accuracy']):.1f}" for p in front)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="#8c959f" stroke-dasharray="4 3"/>'
        )
    for p in pts:
        x, y = sx(p["p50_ms"]), sy(100 * p["test_accuracy"])
        r = 4 + 3 * math.sqrt(max(p["file_mb"] or 0, 0))
        color = COLORS.get(p["method"], "#444")
        title = f"<title>{escape(p['bundle'])}: {p['p50_ms']:.3g} ms, {100 * p['test_accuracy']:.2f}%, {p['file_mb']:.1f} MB, {p['method']}</title>"
        if p["method"] == "estimated":
            shape = f'<polygon points="{x:.1f},{y - r:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r:.1f} {x - r:.1f},{y:.1f}" fill="none" stroke="{color}" stroke-width="2">{title}</polygon>'
        else:
            shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{color}" fill-opacity="0.55" stroke="{color}">{title}</circle>'
        out.append(shape)
        if p["bundle"] == pick:
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r + 5:.1f}" fill="none" stroke="#d4a72c" stroke-width="3"/>'
            )
            out.append(f'<text x="{x + r + 8:.1f}" y="{y - 4:.1f}" font-size="11">pick</text>')
    out.append("</svg>")
    return "".join(out)


def _bundle_table(bundles: list[dict]) -> str:
    head = [
        "bundle",
        "model",
        "family",
        "format",
        "precision",
        "params",
        "test acc",
        "kept %",
        "MB",
    ]
    lines = [
        "<table><tr>"
        + "".join(f'<th class="{"l" if i < 5 else ""}">{h}</th>' for i, h in enumerate(head))
        + "</tr>"
    ]
    for r in bundles:
        if r["status"] != "ok":
            cells = [r["bundle"], r["model"], r["family"], r["format"], r["precision"]]
            lines.append(
                "<tr>"
                + "".join(f'<td class="l">{escape(str(c))}</td>' for c in cells)
                + f'<td colspan="4" class="l failed">not made: {escape(str(r["error"]))}</td></tr>'
            )
            continue
        cells = [
            escape(r["bundle"]),
            escape(r["model"]),
            escape(r["family"]),
            r["format"],
            escape(r["precision"]),
        ]
        nums = [
            _f(r["params"], "{:,}"),
            _f(100 * r["test_accuracy"], "{:.2f}%"),
            _f(r["kept"], "{:.1f}"),
            _f(r["file_mb"]),
        ]
        lines.append(
            "<tr>"
            + "".join(f'<td class="l">{c}</td>' for c in cells)
            + "".join(f"<td>{n}</td>" for n in nums)
            + "</tr>"
        )
    return "\n".join(lines) + "</table>"


def _device_section(sel: dict) -> str:
    device, pick = sel["device"], sel["pick"]
    budgets = ", ".join(f"{k} {v:g}" for k, v in sel["budgets"].items()) or "none"
    parts = [
        f"<h2>{escape(device)} <span class='muted'>({escape(str(sel['method']))})</span></h2>",
        f"<p>Budgets: {escape(budgets)}.</p>",
    ]
    if pick:
        margins = "; ".join(
            f"{m['budget']}: {m['value']:.4g} {m['unit']} ({m['margin']:.4g} to spare)"
            for m in sel["margins"]
        )
        unjudged = (
            f" Not judged (no figure): {', '.join(sel['not_judged'])}." if sel["not_judged"] else ""
        )
        said = f" {margins}." if margins else ""
        parts.append(f"<p><b>Pick: {escape(pick)}</b>.{escape(said)}{escape(unjudged)}</p>")
    else:
        parts.append(f"<p class='failed'><b>No pick</b>: {escape(sel['reason'])}.</p>")
    parts.append(plot(device, sel["candidates"], pick))
    parts.append(LEGEND)
    head = [
        "bundle",
        "method",
        "p50 ms",
        "p90 ms",
        "peak MB",
        "file MB",
        "test acc",
        "kept %",
        "budgets missed",
    ]
    rows = [
        "<table><tr>"
        + "".join(
            f'<th class="{"l" if i in (0, 1, 8) else ""}">{h}</th>' for i, h in enumerate(head)
        )
        + "</tr>"
    ]
    for c in sel["candidates"]:
        cls = ' class="pick"' if c["bundle"] == pick else ""
        if c["status"] != "ok":
            rows.append(
                f'<tr{cls}><td class="l">{escape(c["bundle"])}</td><td class="l failed" colspan="8">failed: {escape(str(c["error"]))}</td></tr>'
            )
            continue
        missed = (
            ", ".join(f"{m['budget']} by {m['by']:.4g} {m['unit']}" for m in c.get("misses", []))
            or "–"
        )
        nums = [
            _f(c["p50_ms"], "{:.3f}"),
            _f(c["p90_ms"], "{:.3f}"),
            _f(c["memory_mb"], "{:.1f}"),
            _f(c["file_mb"]),
            _f(100 * c["test_accuracy"], "{:.2f}%"),
            _f(c["kept"], "{:.1f}"),
        ]
        rows.append(
            f'<tr{cls}><td class="l">{escape(c["bundle"])}</td><td class="l">{c["method"]}</td>'
            + "".join(f"<td>{n}</td>" for n in nums)
            + f'<td class="l">{escape(missed)}</td></tr>'
        )
    parts.append("\n".join(rows) + "</table>")
    return "\n".join(parts)


def render(report: dict) -> str:
    t = report["teacher"]
    timing = report["timing"]
    warnings = "".join(f"<li>{escape(w)}</li>" for w in report["warnings"]) or "<li>none</li>"
    lineage = "".join(
        f"<details><summary>{escape(r['bundle'])}</summary><pre>{escape(json.dumps(r['lineage'], indent=2))}</pre></details>"
        for r in report["bundles"]
        if r.get("lineage")
    )
    steps = "".join(
        f"<tr><td class='l'>{escape(s['step'])}</td><td class='l'>{s['status']}</td><td>{s['seconds']:.1f}</td></tr>"
        for s in timing["steps"]
    )
    picks = "".join(
        f"<li>{escape(d)}: <b>{escape(str(p or 'no pick'))}</b></li>"
        for d, p in report["picks"].items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pocketbert build report</title><style>{CSS}</style></head>
<body>
<h1>pocketbert build report</h1>
<p class="muted">Recipe {escape(report["recipe"]["source"])} (sha256 {report["recipe"]["sha256"][:12]}); machine: {escape(str(report["machine"]["cpu"]))}, {report["machine"]["cores"]} cores, {escape(report["machine"]["isa"])}.</p>
<p>Teacher {escape(t["source"])}: test accuracy {_f(None if t["test_accuracy"] is None else 100 * t["test_accuracy"], "{:.2f}%")}. Data: {escape(report["data"]["rows"])}.</p>
<h2>Picks</h2><ul>{picks}</ul>
<h2>Bundles</h2>
{_bundle_table(report["bundles"])}
{"".join(_device_section(s) for s in report["devices"].values())}
<h2>Warnings</h2><ul>{warnings}</ul>
<h2>Lineage</h2>{lineage or '<p class="muted">no bundle was made</p>'}
<h2>Timing</h2><p>Total {timing["total_s"]:.1f} s, of which steps {timing["steps_s"]:.1f} s (pipeline overhead {timing["pipeline_overhead_s"]:.2f} s).</p>
<table><tr><th class="l">step</th><th class="l">status</th><th>seconds</th></tr>{steps}</table>
</body></html>
"""
