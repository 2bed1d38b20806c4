"""A rollout's plots over time (q per slice, p95, 5xx rate, weight) as server-side SVG.

The series come from the rollout's facts (the readings each tick recorded, the observer's
minutes, the steps and the end) plus, while the server runs the rollout, the readings not yet
stored. The SVG is plain markup with presentation attributes only (the dashboard's content
security policy allows no inline style and no script), labelled for screen readers, with no
network assets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from relgate.rollout.status import Fact, FactKind, Reading, RolloutStatus

__all__ = ["Plot", "Series", "line_svg", "rollout_plots"]

# Distinguishable on white (contrast >= 3:1 for graphics), and in grey scale by dash pattern.
_COLORS = ("#1f5fbf", "#b3261e", "#1b7a3a", "#7a4fb3", "#9a5b00", "#006d77", "#5c5c5c")
_DASHES = ("", "6 3", "2 3", "8 3 2 3", "", "6 3", "2 3")
_W, _H = 640, 220
_L, _R, _T, _B = 56, 150, 28, 34  # margins: left axis, right legend, title, bottom axis


@dataclass(frozen=True)
class Series:
    """One line: a label and (seconds since the start, value) points in time order."""

    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Plot:
    """One chart: a title, the y axis unit, its series, and the SVG drawn from them."""

    key: str
    title: str
    unit: str
    series: tuple[Series, ...]
    y_max: float | None = None

    @property
    def empty(self) -> bool:
        """No point to draw yet."""
        return not any(s.points for s in self.series)

    @property
    def svg(self) -> str:
        """The chart as inline SVG markup."""
        return line_svg(self.title, self.series, unit=self.unit, y_max=self.y_max, key=self.key)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def line_svg(
    title: str,
    series: Sequence[Series],
    *,
    unit: str,
    y_max: float | None = None,
    key: str = "plot",
) -> str:
    """A line chart of ``series`` (x: seconds since the start), scaled to fit."""
    pts = [p for s in series for p in s.points]
    xs = [p[0] for p in pts] or [0.0]
    ys = [p[1] for p in pts] or [0.0]
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 1e-9:
        x1 = x0 + 1.0
    top = y_max if y_max is not None else max(max(ys), 1e-9) * 1.1
    bottom = min(0.0, min(ys))
    pw, ph = _W - _L - _R, _H - _T - _B

    def sx(x: float) -> float:
        return _L + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return _T + ph - (y - bottom) / (top - bottom) * ph

    summary = "; ".join(
        f"{s.label}: {len(s.points)} points, last {_fmt(s.points[-1][1])} {unit}"
        for s in series
        if s.points
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="100%" '
        f'role="img" aria-label="{escape(title)}: {escape(summary or "no data yet")}" '
        f'class="plot" id="plot-{escape(key)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_L}" y="18" font-size="13" font-weight="bold" fill="#1a1a1a">'
        f"{escape(title)} ({escape(unit)})</text>",
        f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" fill="none" stroke="#767676"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        yv = bottom + frac * (top - bottom)
        y = sy(yv)
        out.append(
            f'<line x1="{_L}" x2="{_L + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d0d0"/>'
            f'<text x="{_L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#1a1a1a">{_fmt(yv)}</text>'
        )
    for frac in (0.0, 0.5, 1.0):
        xv = x0 + frac * (x1 - x0)
        out.append(
            f'<text x="{sx(xv):.1f}" y="{_H - 12}" font-size="11" text-anchor="middle" '
            f'fill="#1a1a1a">t+{xv:.0f} s</text>'
        )
    for i, s in enumerate(series):
        color, dash = _COLORS[i % len(_COLORS)], _DASHES[i % len(_DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        if len(s.points) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" '
                f'stroke-width="2"{dash_attr}/>'
            )
        for x, y in s.points[-40:]:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>')
        ly = _T + 12 + 16 * i
        out.append(
            f'<line x1="{_W - _R + 10}" x2="{_W - _R + 30}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{color}" stroke-width="2"{dash_attr}/>'
            f'<text x="{_W - _R + 36}" y="{ly}" font-size="11" fill="#1a1a1a">'
            f"{escape(s.label[:20])}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _weights(facts: Iterable[Fact], t0: float, end: float) -> Series:
    """The candidate's served weight (%) as a step line."""
    points: list[tuple[float, float]] = []
    current = 0.0
    for f in facts:
        if f.kind is FactKind.STEP_ENTERED:
            new = float(f.data.get("weight_bp", 0)) / 100
        elif f.kind is FactKind.COMPLETED:
            new = 100.0
        elif f.kind in (FactKind.ROLLED_BACK, FactKind.SHADOW_STARTED):
            new = 0.0
        else:
            continue
        at = f.at - t0
        points += [(at, current), (at, new)]
        current = new
    if points:
        points.append((max(end - t0, points[-1][0]), current))
    return Series("candidate", tuple(points))


def rollout_plots(
    facts: Sequence[Fact], status: RolloutStatus, *, end: float | None = None
) -> list[Plot]:
    """The four plots of a rollout: q per slice, p95, 5xx rate and weight, over time."""
    t0 = status.started_at or (facts[0].at if facts else 0.0)
    readings: dict[float, Reading] = {}
    minutes: list[Fact] = []
    for f in facts:
        if f.kind is FactKind.READING:
            readings[f.at] = Reading.from_fact_data(f.at, f.data)
        elif f.kind is FactKind.MINUTE:
            minutes.append(f)
    for r in status.readings:  # the running rollout's readings not stored yet
        readings.setdefault(r.at, r)
    ordered = [readings[at] for at in sorted(readings)]
    q: dict[str, list[tuple[float, float]]] = {}
    p95: dict[str, list[tuple[float, float]]] = {"candidate": [], "stable": []}
    err: dict[str, list[tuple[float, float]]] = {"candidate": [], "stable": []}
    for r in ordered:
        t = r.at - t0
        if r.quality is not None:
            for s in r.quality.slices:
                if _finite(s.q):
                    q.setdefault(s.slice, []).append((t, s.q))
        if r.latency is not None:
            for arm, v in (("candidate", r.latency.candidate_p95_s),
                           ("stable", r.latency.stable_p95_s)):  # fmt: skip
                if _finite(v):
                    p95[arm].append((t, v * 1000))
        if r.errors is not None:
            e = r.errors
            for arm, bad, n in (("candidate", e.candidate_5xx, e.candidate_total),
                                ("stable", e.stable_5xx, e.stable_total)):  # fmt: skip
                if n:
                    err[arm].append((t, 100 * bad / n))
    for f in minutes:
        for name, row in sorted(dict(f.data.get("slices", {})).items()):
            value = row.get("q") if isinstance(row, dict) else None
            if isinstance(value, int | float) and math.isfinite(value):
                q.setdefault(f"{name} (observer)", []).append((f.at - t0, float(value)))
    last = max([f.at for f in facts] + [r.at for r in ordered] + [end or 0.0, t0])

    def series(d: dict[str, list[tuple[float, float]]]) -> tuple[Series, ...]:
        return tuple(Series(k, tuple(sorted(v))) for k, v in sorted(d.items()) if v)

    return [
        Plot("q", "Quality q per slice", "q", series(q)),
        Plot("p95", "Latency p95", "ms", series(p95)),
        Plot("errors", "5xx rate", "%", series(err)),
        Plot("weight", "Candidate weight", "%", (_weights(facts, t0, last),), y_max=100.0),
    ]
