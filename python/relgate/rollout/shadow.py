"""A cold start's shadow verdict: the quality monitor's statistic on mirrored answers.

During the shadow of a cold start that mirrors a live release, the probe pairs each mirrored
candidate answer with the answer the live release served to the same request (the mirrored
trace's id is the served trace's id plus ``relgate.traces.SHADOW_SUFFIX``), has the live release
re-answer the request (the noise-aware ceiling), and scores them with the gate's judge through
``relgate.rollout.replay.replay_quality``: the same per-slice reading, paired differences and
always-valid e-process as a canary's replay (``relgate.rollout.monitors.evaluate_quality``).

``evaluate_shadow`` names the outcome the phase function decides on (docs/design.md §4):

- ``FAIL``: a slice is shown worse than the live release (the e-process crossed its bar): the
  shadow ends in an ``auto_rollback`` naming the slice, as a canary's failed monitor does;
- ``PASS``: every slice has enough pairs and no evidence of harm: at the end of the shadow the
  rollout enters its first canary step against the mirrored release (``checkpoint_promote``);
- ``INSUFFICIENT``: no reading yet, no pair, or a slice with fewer than ``min_replay_rows``
  pairs; ``INCONCLUSIVE``: enough pairs but no verdict (an untrusted judge, a judge error, a
  mean below the margin not yet shown). Either, at the end of the shadow, is what a canary's
  expired deadline without evidence is: ``checkpoint_inconclusive``, paused for a human (a
  resume runs the shadow for another ``shadow_s``). Never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from relgate.rollout.monitors import MonitorVerdict, QualityReading, Verdict, evaluate_quality
from relgate.rollout.spec import MonitorThresholds, RolloutSpec
from relgate.rollout.status import RolloutStatus

__all__ = ["ShadowOutcome", "ShadowVerdict", "evaluate_shadow", "shadow_ends_at"]


def shadow_ends_at(spec: RolloutSpec, status: RolloutStatus, now: float) -> float:
    """When the shadow's period ends: ``shadow_s`` after it started, or after a human resumed
    an inconclusive one (it then mirrors for another period)."""
    started = status.shadow_started_at if status.shadow_started_at is not None else now
    ends = started + spec.shadow_s
    if status.resumed_at is not None:
        ends = max(ends, status.resumed_at + spec.shadow_s)
    return ends


class ShadowOutcome(StrEnum):
    """What a shadow's mirrored answers show."""

    PASS = "PASS"
    FAIL = "FAIL"
    INSUFFICIENT = "INSUFFICIENT"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True, slots=True)
class ShadowVerdict:
    """The outcome, why, the pairs per slice, and the quality monitor's verdict behind it."""

    outcome: ShadowOutcome
    reason: str
    pairs: dict[str, int]
    failed_slices: tuple[str, ...]
    monitor: MonitorVerdict

    def to_dict(self) -> dict[str, Any]:
        """Receipt evidence: the outcome, the pairs per slice and every slice's reading."""
        return {
            "outcome": str(self.outcome),
            "reason": self.reason,
            "pairs": dict(self.pairs),
            "failed_slices": list(self.failed_slices),
            "quality": self.monitor.to_dict(),
        }


def _pairs(row: dict[str, Any]) -> int:
    n = row.get("paired_n", row.get("n", 0))
    return n if isinstance(n, int) else 0


def evaluate_shadow(reading: QualityReading | None, t: MonitorThresholds) -> ShadowVerdict:
    """The shadow's outcome on its latest (cumulative) quality reading (see the module
    docstring)."""
    v = evaluate_quality(reading, t)
    rows = [r for r in v.evidence.get("slices", []) if isinstance(r, dict)]
    pairs = {str(r.get("slice")): _pairs(r) for r in rows}
    if v.verdict is Verdict.FAIL:
        failed = tuple(str(r.get("slice")) for r in rows if r.get("verdict") == "FAIL")
        reason = "; ".join(f"{r.get('slice')}: {r.get('reason')}" for r in rows if r.get("slice")
                           in failed)  # fmt: skip
        return ShadowVerdict(ShadowOutcome.FAIL, f"harm on {reason}", pairs, failed, v)
    if v.verdict is Verdict.PASS:
        total = sum(pairs.values())
        reason = f"no slice worse than the live release ({total} mirrored pairs)"
        return ShadowVerdict(ShadowOutcome.PASS, reason, pairs, (), v)
    if reading is None or (reading.judge_error is None and not rows):
        return ShadowVerdict(
            ShadowOutcome.INSUFFICIENT, "no mirrored pair scored yet", pairs, (), v
        )
    thin = [name for name, n in pairs.items() if n < t.min_replay_rows]
    if reading.judge_error is None and thin:
        reason = ", ".join(f"{name} {pairs[name]} < {t.min_replay_rows}" for name in thin)
        return ShadowVerdict(
            ShadowOutcome.INSUFFICIENT, f"too few mirrored pairs: {reason}", pairs, (), v
        )
    return ShadowVerdict(ShadowOutcome.INCONCLUSIVE, v.reason, pairs, (), v)
