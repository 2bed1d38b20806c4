"""One checkpoint: monitor verdicts plus hold progress -> promote, hold, inconclusive or rollback.

Rules, in order:

1. any monitor FAILs -> ROLLBACK (``auto_rollback``), even before the hold is met: a proven
   regression is not made to wait, and the monitors' own minimum counts keep noise from failing;
2. hold not met (dwell AND request count) -> WAIT (no receipt), unless its deadline has passed:
   then INCONCLUSIVE (a starved hold);
3. every monitor PASSes -> PROMOTE (``checkpoint_promote``);
4. deadline passed -> INCONCLUSIVE (``checkpoint_inconclusive``; the rollout pauses for a human);
5. otherwise HOLD (``checkpoint_hold``): the hold extends until the monitors agree or the deadline.

INCONCLUSIVE never turns into a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from relgate.receipts.model import ReceiptKind
from relgate.rollout.monitors import (
    MonitorVerdict,
    Verdict,
    evaluate_errors,
    evaluate_latency,
    evaluate_quality,
)
from relgate.rollout.spec import MonitorThresholds, StepSpec
from relgate.rollout.status import Reading, RolloutStatus

__all__ = [
    "CheckpointResult",
    "HoldProgress",
    "Outcome",
    "ReceiptKind",
    "evaluate_checkpoint",
    "evaluate_monitors",
    "hold_progress",
]


class Outcome(StrEnum):
    """What a checkpoint decides."""

    WAIT = "wait"
    HOLD = "hold"
    PROMOTE = "promote"
    INCONCLUSIVE = "inconclusive"
    ROLLBACK = "rollback"


_RECEIPT = {
    Outcome.WAIT: None,
    Outcome.HOLD: ReceiptKind.CHECKPOINT_HOLD,
    Outcome.PROMOTE: ReceiptKind.CHECKPOINT_PROMOTE,
    Outcome.INCONCLUSIVE: ReceiptKind.CHECKPOINT_INCONCLUSIVE,
    Outcome.ROLLBACK: ReceiptKind.AUTO_ROLLBACK,
}


@dataclass(frozen=True, slots=True)
class HoldProgress:
    """How far the current step's hold is, at ``now``."""

    now: float
    dwell_elapsed_s: float
    dwell_required_s: float
    requests_seen: int
    requests_required: int
    deadline_at: float | None

    @property
    def dwell_met(self) -> bool:
        """Enough time in the step."""
        return self.dwell_elapsed_s >= self.dwell_required_s

    @property
    def requests_met(self) -> bool:
        """Enough candidate requests in the step."""
        return self.requests_seen >= self.requests_required

    @property
    def met(self) -> bool:
        """Both dwell and request count reached (the hold is the later of the two)."""
        return self.dwell_met and self.requests_met

    @property
    def expired(self) -> bool:
        """The step's deadline has passed."""
        return self.deadline_at is not None and self.now >= self.deadline_at

    def to_dict(self) -> dict[str, Any]:
        """Evidence form."""
        return {
            "dwell_elapsed_s": self.dwell_elapsed_s,
            "dwell_required_s": self.dwell_required_s,
            "requests_seen": self.requests_seen,
            "requests_required": self.requests_required,
            "deadline_at": self.deadline_at,
            "hold_met": self.met,
            "deadline_passed": self.expired,
        }


def hold_progress(step: StepSpec, status: RolloutStatus, now: float) -> HoldProgress:
    """Hold progress of the current step. Dwell counts from step entry; the deadline from step
    entry or the last resume, whichever is later."""
    entered = status.step_entered_at if status.step_entered_at is not None else now
    clock_start = max(entered, status.resumed_at or entered)
    deadline = None if step.deadline_s is None else clock_start + step.deadline_s
    return HoldProgress(
        now=now,
        dwell_elapsed_s=max(0.0, now - entered),
        dwell_required_s=step.dwell_s,
        requests_seen=status.requests_in_step,
        requests_required=step.min_requests,
        deadline_at=deadline,
    )


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    """A checkpoint's outcome, the receipt kind it emits (None for WAIT) and its evidence."""

    outcome: Outcome
    reason: str
    verdicts: tuple[MonitorVerdict, ...]
    hold: HoldProgress
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def receipt_kind(self) -> ReceiptKind | None:
        """The receipt this outcome emits."""
        return _RECEIPT[self.outcome]


def evaluate_monitors(reading: Reading, t: MonitorThresholds) -> tuple[MonitorVerdict, ...]:
    """The three monitors on one (merged) reading: latency, 5xx, quality."""
    return (
        evaluate_latency(reading.latency, t),
        evaluate_errors(reading.errors, t),
        evaluate_quality(reading.quality, t),
    )


def evaluate_checkpoint(
    step_index: int,
    step: StepSpec,
    hold: HoldProgress,
    reading: Reading,
    t: MonitorThresholds,
) -> CheckpointResult:
    """Combine the monitor verdicts on ``reading`` with ``hold`` into one outcome."""
    verdicts = evaluate_monitors(reading, t)
    failed = [v for v in verdicts if v.verdict is Verdict.FAIL]
    unsure = [v for v in verdicts if v.verdict is Verdict.INCONCLUSIVE]
    evidence: dict[str, Any] = {
        "step_index": step_index,
        "weight_bp": step.weight_bp,
        "hold": hold.to_dict(),
        "reading_at": reading.at,
        "monitors": [v.to_dict() for v in verdicts],
    }

    def result(outcome: Outcome, reason: str) -> CheckpointResult:
        return CheckpointResult(outcome, reason, verdicts, hold, {**evidence, "reason": reason})

    if failed:
        return result(Outcome.ROLLBACK, "; ".join(f"{v.monitor}: {v.reason}" for v in failed))
    if not hold.met:
        missing = []
        if not hold.dwell_met:
            missing.append(f"dwell {hold.dwell_elapsed_s:.0f}/{hold.dwell_required_s:.0f} s")
        if not hold.requests_met:
            missing.append(f"requests {hold.requests_seen}/{hold.requests_required}")
        if hold.expired:
            return result(
                Outcome.INCONCLUSIVE, "deadline passed, hold starved: " + ", ".join(missing)
            )
        return result(Outcome.WAIT, "holding: " + ", ".join(missing))
    if not unsure:
        return result(Outcome.PROMOTE, "hold met and every monitor passed")
    why = "; ".join(f"{v.monitor}: {v.reason}" for v in unsure)
    if hold.expired:
        return result(Outcome.INCONCLUSIVE, f"deadline passed without evidence: {why}")
    return result(Outcome.HOLD, f"hold extended: {why}")
