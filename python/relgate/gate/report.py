"""Gate reports: JSON, parquet (per-row and per-slice), a text table and an HTML page.

The HTML report is one self-contained file (no network assets). Its first picture is an inline
SVG of per-slice scores with their confidence intervals, the candidate beside the previous
release, the worst slice first; the aggregate is drawn last, greyed and labelled non-decisive.

``write_report`` writes everything into one directory; ``load_scores`` reads the per-row scores
and the calibration back, so ``decide(scores, calibration, other_policy)`` re-applies a policy
from disk without any judge.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict
from pathlib import Path

import polars as pl

from relgate.errors import InvalidInputError
from relgate.gate.calibration import Calibration
from relgate.gate.result import GateResult
from relgate.gate.verdict import GateScores, SliceResult

__all__ = ["format_table", "load_scores", "render_html", "render_svg", "write_report"]

_AXIS_MIN, _AXIS_MAX = -1.0, 2.0
_COLORS = {
    "PASS": "#1a7f37",
    "FAIL": "#cf222e",
    "INSUFFICIENT": "#9a6700",
    "JUDGE_UNTRUSTED": "#8250df",
}


def _fmt(value: float, digits: int = 3) -> str:
    return "-" if not math.isfinite(value) else f"{value:.{digits}f}"


def _axis_values(result: GateResult) -> tuple[str, list[tuple[str, float, float, float]]]:
    """The policy's scale label and per slice (name, point, low, high) for the candidate."""
    normalized = result.policy.get("scale", "normalized") == "normalized"
    rows = [
        (r.slice, *((r.q, r.q_low, r.q_high) if normalized else (r.rho, r.rho_low, r.rho_high)))
        for r in result.slices
    ]
    return ("q = rho / ceiling" if normalized else "raw rho"), rows


def _previous(r: SliceResult, normalized: bool) -> tuple[float, float, float]:
    if normalized:
        return r.previous_q, r.previous_q_low, r.previous_q_high
    return r.previous_rho, r.previous_rho_low, r.previous_rho_high


def format_table(result: GateResult) -> str:
    """A plain-text per-slice table, worst slice first, then the (non-decisive) aggregate."""
    normalized = result.policy.get("scale", "normalized") == "normalized"
    head = (
        f"{'slice':<18} {'verdict':<16} {'n':>5} {'rho':>7} {'ceiling':>7} {'q':>7} "
        f"{'q CI':>15} {'prev q':>7} {'change':>7} {'p(worse)':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in result.slices:
        ci = f"[{_fmt(r.q_low, 2)}, {_fmt(r.q_high, 2)}]"
        lines.append(
            f"{r.slice[:18]:<18} {r.verdict.value:<16} {r.n_rows:>5} {_fmt(r.rho):>7} "
            f"{_fmt(r.ceiling):>7} {_fmt(r.q):>7} {ci:>15} {_fmt(r.previous_q):>7} "
            f"{_fmt(r.change):>7} {_fmt(r.p_adjusted, 4):>8}"
        )
    agg = result.aggregate
    lines.append(
        f"aggregate (mean over slices, NOT decisive): rho {_fmt(agg['mean_rho'])} "
        f"(previous {_fmt(agg['previous_mean_rho'])}), q {_fmt(agg['mean_q'])} "
        f"(previous {_fmt(agg['previous_mean_q'])})"
    )
    scale = "q (normalized)" if normalized else "raw rho"
    lines.append(f"outcome: {result.outcome.value.upper()} (policy on {scale})")
    if result.failed_slices:
        lines.append(f"failed slices: {', '.join(result.failed_slices)}")
    if result.unvouched:
        lines.append(f"not vouched for: {', '.join(result.unvouched)}")
    for r in result.slices:
        for reason in r.reasons:
            lines.append(f"  {r.slice}: {reason}")
    return "\n".join(lines)


def render_svg(result: GateResult) -> str:
    """Per-slice score with CIs, candidate (dark) beside previous (light), worst first."""
    normalized = result.policy.get("scale", "normalized") == "normalized"
    label, rows = _axis_values(result)
    values = [v for _, p, lo, hi in rows for v in (p, lo, hi) if math.isfinite(v)]
    values += [v for r in result.slices for v in _previous(r, normalized) if math.isfinite(v)]
    floor = float(result.policy.get("floor", 0.65))
    # The axis covers what a verdict turns on; wider intervals (small or untrusted slices) are
    # clipped at its edges and marked with an arrowhead, so they cannot squeeze the rest.
    lo_v = max(_AXIS_MIN, min([-0.25, floor, *values]))
    hi_v = min(_AXIS_MAX, max([1.25, floor, *values]))
    left, width, row_h, top = 170, 520, 34, 40
    n_rows = len(rows) + 1  # + aggregate
    height = top + n_rows * row_h + 40

    def sx(v: float) -> float:
        return left + (min(max(v, lo_v), hi_v) - lo_v) / (hi_v - lo_v) * width

    def clipped(v: float, y: float, fill: str) -> str:
        if lo_v <= v <= hi_v:
            return ""
        x, d = (sx(v), -6) if v < lo_v else (sx(v), 6)
        return (
            f'<polygon points="{x + d:.1f},{y:.1f} {x:.1f},{y - 4:.1f} {x:.1f},{y + 4:.1f}" '
            f'fill="{fill}"/>'
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 170}" '
        f'height="{height}" font-family="sans-serif" font-size="12" role="img" '
        f'aria-label="per-slice {html.escape(label)} with confidence intervals">',
        f'<text x="{left}" y="16" font-weight="bold">per-slice {html.escape(label)}, '
        "worst first (dark: candidate, light: previous; bars: CI)</text>",
    ]
    for v, name, dash in ((0.0, "0", "2,3"), (1.0, "1", "2,3"), (floor, f"floor {floor}", "6,3")):
        x = sx(v)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{top + n_rows * row_h}" '
            f'stroke="#888" stroke-dasharray="{dash}"/>'
            f'<text x="{x:.1f}" y="{top - 12}" text-anchor="middle" fill="#555">{name}</text>'
        )
    for i, ((name, p, lo, hi), r) in enumerate(zip(rows, result.slices, strict=True)):
        y = top + i * row_h + row_h / 2
        color = _COLORS[r.verdict.value]
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{html.escape(name)}</text>'
        )
        for (pv, plo, phi), dy, fill in (
            ((p, lo, hi), -5, color),
            (_previous(r, normalized), 6, "#aaa"),
        ):
            if math.isfinite(plo) and math.isfinite(phi):
                parts.append(
                    f'<line x1="{sx(plo):.1f}" y1="{y + dy:.1f}" x2="{sx(phi):.1f}" '
                    f'y2="{y + dy:.1f}" stroke="{fill}" stroke-width="2"/>'
                    + clipped(plo, y + dy, fill)
                    + clipped(phi, y + dy, fill)
                )
            if math.isfinite(pv):
                parts.append(f'<circle cx="{sx(pv):.1f}" cy="{y + dy:.1f}" r="4" fill="{fill}"/>')
        parts.append(
            f'<text x="{left + width + 16}" y="{y + 4:.1f}" fill="{color}" '
            f'font-weight="bold">{r.verdict.value}</text>'
        )
    agg = result.aggregate
    key = "mean_q" if normalized else "mean_rho"
    y = top + len(rows) * row_h + row_h / 2
    parts.append(
        f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="#888" '
        'font-style="italic">aggregate</text>'
        f'<text x="{left + width + 10}" y="{y + 4:.1f}" fill="#888" font-style="italic">'
        "not decisive</text>"
    )
    for value, dy, fill in ((agg[key], -5, "#666"), (agg[f"previous_{key}"], 6, "#bbb")):
        if math.isfinite(value):
            parts.append(
                f'<rect x="{sx(value) - 4:.1f}" y="{y + dy - 4:.1f}" width="8" height="8" '
                f'fill="none" stroke="{fill}" stroke-width="2"/>'
            )
    axis_y = top + n_rows * row_h + 14
    ticks = [lo_v + k * (hi_v - lo_v) / 6 for k in range(7)]
    parts.append(
        f'<line x1="{left}" y1="{axis_y - 8}" x2="{left + width}" y2="{axis_y - 8}" stroke="#333"/>'
    )
    for t in ticks:
        parts.append(f'<text x="{sx(t):.1f}" y="{axis_y + 6}" text-anchor="middle">{t:.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: GateResult, title: str = "relgate gate report") -> str:
    """A self-contained HTML report: the chart first, then the table and identities."""
    body = result.to_dict()
    ids = {
        k: body[k]
        for k in (
            "suite_sha256",
            "judge_sha256",
            "calibration_sha256",
            "candidate_answers_sha256",
            "previous_answers_sha256",
        )
    }
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:24px}pre{background:#f6f8fa;padding:12px;"
        "overflow-x:auto}</style></head><body>\n"
        f"{render_svg(result)}\n"
        f"<h1>{html.escape(title)}: {result.outcome.value.upper()}</h1>\n"
        f"<pre>{html.escape(format_table(result))}</pre>\n"
        "<h2>Identities and policy</h2>\n"
        f"<pre>{html.escape(json.dumps({**ids, 'policy': body['policy']}, indent=2))}</pre>\n"
        f"<p>gate result sha256: <code>{result.sha256}</code></p>\n"
        "</body></html>\n"
    )


def _slices_frame(result: GateResult) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {**asdict(r), "verdict": r.verdict.value, "reasons": list(r.reasons)}
            for r in result.slices
        ]
    )


def write_report(
    result: GateResult, out_dir: str | Path, title: str = "relgate gate report"
) -> dict[str, Path]:
    """Write result.json, calibration.json, rows.parquet, slices.parquet and report.html."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "result.json",
        "calibration": out / "calibration.json",
        "rows": out / "rows.parquet",
        "slices": out / "slices.parquet",
        "html": out / "report.html",
    }
    body = {**result.to_dict(), "sha256": result.sha256}
    paths["json"].write_text(json.dumps(body, indent=2) + "\n")
    result.calibration.write(paths["calibration"])
    result.scores.rows.write_parquet(paths["rows"])
    _slices_frame(result).write_parquet(paths["slices"])
    paths["html"].write_text(render_html(result, title))
    return paths


def load_scores(out_dir: str | Path) -> tuple[GateScores, Calibration]:
    """Per-row scores and calibration of a written report (for re-applying a policy)."""
    out = Path(out_dir)
    try:
        body = json.loads((out / "result.json").read_text())
        rows = pl.read_parquet(out / "rows.parquet")
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise InvalidInputError(f"gate report in {out} cannot be read: {exc}") from exc
    scores = GateScores(
        rows=rows,
        suite_sha256=body["suite_sha256"],
        judge_sha256=body["judge_sha256"],
        candidate_sha256=body["candidate_answers_sha256"],
        previous_sha256=body["previous_answers_sha256"],
    )
    return scores, Calibration.read(out / "calibration.json")
