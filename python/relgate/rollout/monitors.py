"""Checkpoint monitors: pure evaluation of one checkpoint's readings.

Each monitor turns a reading (plain values measured by the gateway or the replay) into a
``MonitorVerdict``: PASS, FAIL or INCONCLUSIVE, with the observed values and thresholds as
evidence for the receipt. Thin data, a missing reading or a judge error is INCONCLUSIVE, never
a pass: the checkpoint then extends its hold until its deadline and pauses for a human.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from relgate.errors import InvalidInputError
from relgate.rollout.sequential import SequentialState, fold, threshold_log
from relgate.rollout.spec import MonitorThresholds

__all__ = [
    "ErrorRateReading",
    "LatencyReading",
    "MonitorVerdict",
    "QualityLedger",
    "QualityReading",
    "SliceQuality",
    "Verdict",
    "evaluate_errors",
    "evaluate_latency",
    "evaluate_quality",
    "finite_or_none",
]


class Verdict(StrEnum):
    """A monitor's verdict. INCONCLUSIVE is never treated as PASS."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


def finite_or_none(x: float | None) -> float | None:
    """``x`` if it is a finite number, else ``None`` (canonical JSON has no NaN or infinity)."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def _count(data: Mapping[str, Any], key: str, what: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{what}.{key} must be a non-negative integer, got {value!r}")
    return value


def _real(data: Mapping[str, Any], key: str, what: str, *, nan_ok: bool = False) -> float:
    value = data.get(key)
    if value is None and nan_ok:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{what}.{key} must be a number, got {value!r}")
    if not nan_ok and not math.isfinite(value):
        raise InvalidInputError(f"{what}.{key} must be finite, got {value!r}")
    return float(value)


def _mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{what} must be a mapping, got {type(data).__name__}")
    return data


@dataclass(frozen=True, slots=True)
class LatencyReading:
    """p95 latency (seconds) of both arms over the same window, with their request counts."""

    candidate_p95_s: float
    stable_p95_s: float
    candidate_count: int
    stable_count: int

    @classmethod
    def from_dict(cls, data: Any) -> LatencyReading:
        """Parse ``to_dict`` output; raises ``InvalidInputError`` on bad fields."""
        d = _mapping(data, "latency")
        return cls(
            candidate_p95_s=_real(d, "candidate_p95_s", "latency"),
            stable_p95_s=_real(d, "stable_p95_s", "latency"),
            candidate_count=_count(d, "candidate_count", "latency"),
            stable_count=_count(d, "stable_count", "latency"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "candidate_p95_s": self.candidate_p95_s,
            "stable_p95_s": self.stable_p95_s,
            "candidate_count": self.candidate_count,
            "stable_count": self.stable_count,
        }


@dataclass(frozen=True, slots=True)
class ErrorRateReading:
    """5xx responses and totals of both arms over the same window."""

    candidate_5xx: int
    candidate_total: int
    stable_5xx: int
    stable_total: int

    def __post_init__(self) -> None:
        if self.candidate_5xx > self.candidate_total or self.stable_5xx > self.stable_total:
            raise InvalidInputError("errors: a 5xx count exceeds its total")

    @classmethod
    def from_dict(cls, data: Any) -> ErrorRateReading:
        """Parse ``to_dict`` output; raises ``InvalidInputError`` on bad fields."""
        d = _mapping(data, "errors")
        return cls(
            candidate_5xx=_count(d, "candidate_5xx", "errors"),
            candidate_total=_count(d, "candidate_total", "errors"),
            stable_5xx=_count(d, "stable_5xx", "errors"),
            stable_total=_count(d, "stable_total", "errors"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "candidate_5xx": self.candidate_5xx,
            "candidate_total": self.candidate_total,
            "stable_5xx": self.stable_5xx,
            "stable_total": self.stable_total,
        }


@dataclass(frozen=True, slots=True)
class SliceQuality:
    """Replay result of one slice: ``n`` traces, the candidate's rho and the stable ceiling.

    ``q = rho / ceiling`` is the gate's normalization; it is NaN when the ceiling is not
    positive or either statistic is NaN (a constant score column), which the monitor reads as
    INCONCLUSIVE.

    ``ceiling_source`` says what the ceiling was measured on: "rerun" (the stable release
    re-answering the traces: noise-aware) or "served" (its served text against itself).
    ``diffs`` are the paired per-trace differences ``(trace id, d)`` of a rerun replay, oldest
    first; ``sequential`` the slice's e-process over every trace replayed so far in this
    rollout (filled by ``QualityLedger``), when the caller keeps one.
    """

    slice: str
    n: int
    rho: float
    ceiling: float
    ceiling_source: str = "served"
    diffs: tuple[tuple[str, float], ...] = ()
    sequential: SequentialState | None = None

    @property
    def q(self) -> float:
        """Ceiling-normalized score; NaN when undefined."""
        if not (math.isfinite(self.rho) and math.isfinite(self.ceiling)) or self.ceiling <= 0:
            return math.nan
        return self.rho / self.ceiling

    @classmethod
    def from_dict(cls, data: Any) -> SliceQuality:
        """Parse ``to_dict`` output (``rho``/``ceiling`` may be null for NaN)."""
        d = _mapping(data, "quality slice")
        name = d.get("slice")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("quality slice: slice must be a non-empty string")
        source = d.get("ceiling_source", "served")
        if source not in ("served", "rerun"):
            raise InvalidInputError("quality slice: ceiling_source must be 'served' or 'rerun'")
        raw = d.get("diffs", [])
        if not isinstance(raw, list | tuple) or not all(
            isinstance(r, list | tuple) and len(r) == 2 and isinstance(r[0], str) for r in raw
        ):
            raise InvalidInputError("quality slice: diffs must be [trace id, number] pairs")
        diffs = tuple((r[0], _real({"d": r[1]}, "d", "quality slice diff")) for r in raw)
        seq = d.get("sequential")
        return cls(
            slice=name,
            n=_count(d, "n", "quality slice"),
            rho=_real(d, "rho", "quality slice", nan_ok=True),
            ceiling=_real(d, "ceiling", "quality slice", nan_ok=True),
            ceiling_source=source,
            diffs=diffs,
            sequential=None if seq is None else SequentialState.from_dict(_mapping(seq, "seq")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (NaN becomes null; diffs and the sequential state when present)."""
        out: dict[str, Any] = {
            "slice": self.slice,
            "n": self.n,
            "rho": finite_or_none(self.rho),
            "ceiling": finite_or_none(self.ceiling),
            "ceiling_source": self.ceiling_source,
        }
        if self.diffs:
            out["diffs"] = [[tid, d] for tid, d in self.diffs]
        if self.sequential is not None:
            out["sequential"] = self.sequential.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class QualityReading:
    """Trace-replay quality of the candidate per slice, or the judge error that prevented it.

    ``judge_sha256`` and ``sample_sha256`` (the hash of the replayed trace ids) go into the
    receipt evidence when known.
    """

    slices: tuple[SliceQuality, ...] = ()
    judge_error: str | None = None
    judge_sha256: str | None = None
    sample_sha256: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> QualityReading:
        """Parse ``to_dict`` output."""
        d = _mapping(data, "quality")
        raw = d.get("slices", [])
        if not isinstance(raw, list | tuple):
            raise InvalidInputError("quality.slices must be a list")
        slices = tuple(SliceQuality.from_dict(s) for s in raw)
        names = [s.slice for s in slices]
        if len(set(names)) != len(names):
            raise InvalidInputError("quality.slices names a slice twice")
        strings: dict[str, str | None] = {}
        for key in ("judge_error", "judge_sha256", "sample_sha256"):
            value = d.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(f"quality.{key} must be a string")
            strings[key] = value
        return cls(slices=slices, **strings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "slices": [s.to_dict() for s in self.slices],
            "judge_error": self.judge_error,
            "judge_sha256": self.judge_sha256,
            "sample_sha256": self.sample_sha256,
        }


@dataclass(frozen=True, slots=True)
class MonitorVerdict:
    """One monitor's verdict with its reason and evidence (observed values and thresholds)."""

    monitor: str
    verdict: Verdict
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for receipts."""
        return {
            "monitor": self.monitor,
            "verdict": str(self.verdict),
            "reason": self.reason,
            **self.evidence,
        }


def evaluate_latency(reading: LatencyReading | None, t: MonitorThresholds) -> MonitorVerdict:
    """Candidate p95 <= ``p95_ratio`` x stable p95 in the same window.

    Fewer than ``min_latency_samples`` requests in either arm, or a non-positive stable p95,
    is INCONCLUSIVE.
    """
    name = "latency_p95"
    if reading is None:
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, "no latency reading in this step")
    limit = t.p95_ratio * reading.stable_p95_s
    evidence: dict[str, Any] = {
        "candidate_p95_s": reading.candidate_p95_s,
        "stable_p95_s": reading.stable_p95_s,
        "ratio": finite_or_none(
            reading.candidate_p95_s / reading.stable_p95_s if reading.stable_p95_s > 0 else None
        ),
        "threshold_ratio": t.p95_ratio,
        "candidate_count": reading.candidate_count,
        "stable_count": reading.stable_count,
        "min_samples": t.min_latency_samples,
    }
    if min(reading.candidate_count, reading.stable_count) < t.min_latency_samples:
        reason = (
            f"too few requests for a p95 ({reading.candidate_count} candidate, "
            f"{reading.stable_count} stable; need {t.min_latency_samples} each)"
        )
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, reason, evidence)
    if reading.stable_p95_s <= 0:
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, "stable p95 is not positive", evidence)
    if reading.candidate_p95_s > limit:
        reason = (
            f"candidate p95 {reading.candidate_p95_s:.4g}s > {t.p95_ratio:g} x stable "
            f"{reading.stable_p95_s:.4g}s"
        )
        return MonitorVerdict(name, Verdict.FAIL, reason, evidence)
    return MonitorVerdict(name, Verdict.PASS, "p95 within ratio", evidence)


def evaluate_errors(reading: ErrorRateReading | None, t: MonitorThresholds) -> MonitorVerdict:
    """Candidate 5xx rate <= ``error_ratio`` x max(stable rate, ``error_rate_floor``).

    The floor keeps a stable arm with zero errors from making a single candidate 5xx a breach.
    Too few requests in either arm is INCONCLUSIVE; so is a candidate that looks worse on fewer
    than ``min_error_events`` 5xx responses (tiny counts prove nothing either way).
    """
    name = "error_rate"
    if reading is None:
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, "no 5xx reading in this step")
    cand_rate = reading.candidate_5xx / reading.candidate_total if reading.candidate_total else None
    stable_rate = reading.stable_5xx / reading.stable_total if reading.stable_total else None
    baseline = max(stable_rate or 0.0, t.error_rate_floor)
    limit = t.error_ratio * baseline
    evidence: dict[str, Any] = {
        "candidate_5xx": reading.candidate_5xx,
        "candidate_total": reading.candidate_total,
        "stable_5xx": reading.stable_5xx,
        "stable_total": reading.stable_total,
        "candidate_rate": cand_rate,
        "stable_rate": stable_rate,
        "threshold_ratio": t.error_ratio,
        "rate_floor": t.error_rate_floor,
        "limit_rate": limit,
        "min_requests": t.min_error_requests,
        "min_events": t.min_error_events,
    }
    if cand_rate is None or stable_rate is None:
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, "an arm served no requests", evidence)
    if min(reading.candidate_total, reading.stable_total) < t.min_error_requests:
        reason = (
            f"too few requests for a 5xx rate ({reading.candidate_total} candidate, "
            f"{reading.stable_total} stable; need {t.min_error_requests} each)"
        )
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, reason, evidence)
    if cand_rate <= limit:
        return MonitorVerdict(name, Verdict.PASS, "5xx rate within ratio", evidence)
    if reading.candidate_5xx < t.min_error_events:
        reason = (
            f"candidate 5xx rate {cand_rate:.4g} above {limit:.4g} on only "
            f"{reading.candidate_5xx} events (need {t.min_error_events})"
        )
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, reason, evidence)
    reason = f"candidate 5xx rate {cand_rate:.4g} > {t.error_ratio:g} x {baseline:.4g}"
    return MonitorVerdict(name, Verdict.FAIL, reason, evidence)


def _sequential_verdict(
    s: SliceQuality, t: MonitorThresholds, k: int, evidence: dict[str, Any]
) -> tuple[Verdict, str, dict[str, Any]]:
    """The always-valid paired test (``relgate.rollout.sequential``) at level alpha / k."""
    state = s.sequential or fold(SequentialState(margin=t.quality_margin), (d for _i, d in s.diffs))
    bar = threshold_log(t.quality_alpha, k)
    evidence.update(
        {
            "test": "paired e-process",
            "paired_n": state.n,
            "mean_diff": state.mean if state.n else None,
            "margin": state.margin,
            "log_e": state.log_e,
            "max_log_e": state.max_log_e,
            "alpha": t.quality_alpha,
            "slices_in_family": k,
            "log_e_threshold": bar,
        }
    )
    if t.quality_scale == "normalized" and (
        not math.isfinite(s.ceiling) or s.ceiling < t.min_ceiling
    ):
        return Verdict.INCONCLUSIVE, f"ceiling below {t.min_ceiling:g}: judge untrusted", evidence
    if state.max_log_e >= bar:
        reason = (
            f"worse than stable: e-value {math.exp(min(state.max_log_e, 700)):.3g} >= "
            f"{k}/{t.quality_alpha:g} over {state.n} paired traces "
            f"(mean diff {state.mean:+.3f} < -{state.margin:g})"
        )
        return Verdict.FAIL, reason, evidence
    if state.n < t.min_replay_rows:
        return Verdict.INCONCLUSIVE, f"{state.n} paired traces < {t.min_replay_rows}", evidence
    se = math.sqrt(state.m2 / (state.n - 1) / state.n) if state.n > 1 else math.inf
    if state.mean + 2.0 * se < -state.margin:
        # Not yet shown worse at the sequential level, but a single look says it likely is:
        # hold for more traces rather than advance.
        reason = (
            f"mean diff {state.mean:+.3f} (se {se:.3f}) below -{state.margin:g}, "
            "not yet shown worse"
        )
        return Verdict.INCONCLUSIVE, reason, evidence
    return Verdict.PASS, "no evidence of a regression vs the stable rerun", evidence


def _slice_verdict(
    s: SliceQuality, t: MonitorThresholds, k: int = 1
) -> tuple[Verdict, str, dict[str, Any]]:
    score = s.q if t.quality_scale == "normalized" else s.rho
    evidence: dict[str, Any] = {
        "slice": s.slice,
        "n": s.n,
        "rho": finite_or_none(s.rho),
        "ceiling": finite_or_none(s.ceiling),
        "q": finite_or_none(s.q),
        "scale": t.quality_scale,
        "floor": t.quality_floor,
        "ceiling_source": s.ceiling_source,
    }
    if s.diffs or s.sequential is not None:
        return _sequential_verdict(s, t, k, evidence)
    if s.n < t.min_replay_rows:
        return Verdict.INCONCLUSIVE, f"{s.n} traces < {t.min_replay_rows}", evidence
    if t.quality_scale == "normalized" and (
        not math.isfinite(s.ceiling) or s.ceiling < t.min_ceiling
    ):
        return Verdict.INCONCLUSIVE, f"ceiling below {t.min_ceiling:g}: judge untrusted", evidence
    if not math.isfinite(score):
        return Verdict.INCONCLUSIVE, "statistic undefined (constant scores)", evidence
    if score < t.quality_floor:
        return Verdict.FAIL, f"{t.quality_scale} score {score:.3f} < floor", evidence
    return Verdict.PASS, "at or above floor", evidence


def evaluate_quality(reading: QualityReading | None, t: MonitorThresholds) -> MonitorVerdict:
    """Per slice: with paired differences (a replay with the stable release re-answering), the
    always-valid paired test: FAIL only when the e-process shows the candidate worse than the
    stable rerun by more than ``quality_margin`` at level ``quality_alpha`` / (slices), PASS
    with ``min_replay_rows`` paired traces and no such evidence. Without them (legacy readings),
    every replayed slice at or above the gate floor, on the gate's scale.

    A judge error, no reading or no slice is INCONCLUSIVE. Any slice below the floor (with
    enough traces and a trusted ceiling) is FAIL even when other slices are thin: a proven
    regression on one slice is what this monitor exists to catch. Otherwise any thin or
    undefined slice makes the whole verdict INCONCLUSIVE. The worst slice leads the evidence.
    """
    name = "quality"
    if reading is None:
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, "no replay reading in this step")
    base: dict[str, Any] = {"judge_sha256": reading.judge_sha256}
    if reading.sample_sha256 is not None:
        base["sample_sha256"] = reading.sample_sha256
    if reading.judge_error is not None:
        base["judge_error"] = reading.judge_error
        reason = f"judge error: {reading.judge_error}"
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, reason, base)
    if not reading.slices:
        return MonitorVerdict(name, Verdict.INCONCLUSIVE, "no slice was replayed", base)
    k = len(reading.slices)
    rows = [(s, *_slice_verdict(s, t, k)) for s in reading.slices]

    def worst_first(row: tuple[SliceQuality, Verdict, str, dict[str, Any]]) -> tuple[int, float]:
        rank = {Verdict.FAIL: 0, Verdict.INCONCLUSIVE: 1, Verdict.PASS: 2}[row[1]]
        q = row[0].q if t.quality_scale == "normalized" else row[0].rho
        return rank, q if math.isfinite(q) else -math.inf

    rows.sort(key=worst_first)
    base["slices"] = [{**ev, "verdict": str(v), "reason": why} for _s, v, why, ev in rows]
    failed = [s.slice for s, v, _w, _e in rows if v is Verdict.FAIL]
    thin = [s.slice for s, v, _w, _e in rows if v is Verdict.INCONCLUSIVE]
    if failed:
        return MonitorVerdict(name, Verdict.FAIL, f"below floor on {', '.join(failed)}", base)
    if thin:
        return MonitorVerdict(
            name, Verdict.INCONCLUSIVE, f"inconclusive on {', '.join(thin)}", base
        )
    return MonitorVerdict(name, Verdict.PASS, "every slice at or above floor", base)


class QualityLedger:
    """The rollout's sequential quality state: one e-process per slice, each replayed trace
    folded once (by trace id) in the order replays saw them. ``fold`` returns the reading with
    each slice's cumulative ``sequential`` state, so ``evaluate_quality`` judges everything
    seen so far at one always-valid level. In-memory: a restarted provider starts a fresh
    e-process (each restart spends at most another alpha; see docs/statistics.md)."""

    def __init__(self, margin: float) -> None:
        self._margin = margin
        self._states: dict[str, SequentialState] = {}
        self._seen: set[str] = set()

    def state(self, slice_name: str) -> SequentialState | None:
        """The slice's e-process so far (None before its first paired trace)."""
        return self._states.get(slice_name)

    def fold(self, reading: QualityReading) -> QualityReading:
        """Fold the reading's new paired traces; the reading with cumulative states."""
        if reading.judge_error is not None:
            return reading
        out = []
        for s in reading.slices:
            new = [(tid, d) for tid, d in s.diffs if tid not in self._seen]
            if not s.diffs:
                # Nothing paired this look: the slice keeps the evidence gathered so far.
                prior = self._states.get(s.slice)
                out.append(s if prior is None else replace(s, sequential=prior))
                continue
            state = self._states.get(s.slice) or SequentialState(margin=self._margin)
            state = fold(state, (d for _tid, d in new))
            self._seen.update(tid for tid, _d in new)
            self._states[s.slice] = state
            out.append(replace(s, sequential=state))
        return replace(reading, slices=tuple(out))
