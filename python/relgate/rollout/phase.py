"""The rollout's phase: a pure function of spec, status and the time.

``compute_phase(spec, status, now)`` reads facts and returns a ``PhaseDecision``: the phase
the rollout is in and the one action the controller should take next (with the receipt kind
it emits). It never does I/O and never reads a clock, so tests and ``relgate roll simulate``
drive it with a fake clock (argo-rollouts' ``CalculateRolloutPhase`` pattern).

Precedence, highest first: terminal rollback > abort > completed/observing > pause > promote >
the checkpoint. So an abort that arrives while a promote is pending wins, and a paused rollout
ignores a promote until a human resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from relgate.rollout.checkpoint import (
    CheckpointResult,
    Outcome,
    ReceiptKind,
    evaluate_checkpoint,
    hold_progress,
)
from relgate.rollout.monitors import Verdict
from relgate.rollout.observe import evaluate_observer
from relgate.rollout.shadow import ShadowOutcome, evaluate_shadow, shadow_ends_at
from relgate.rollout.spec import FULL_WEIGHT_BP, RolloutSpec
from relgate.rollout.status import RolloutStatus

__all__ = ["TERMINAL_PHASES", "Action", "Phase", "PhaseDecision", "compute_phase", "rollout_over"]


class Phase(StrEnum):
    """Where a rollout is. Names match the gRPC ``RolloutPhase`` enum where it has them."""

    PENDING = "Pending"
    SHADOW = "Shadow"
    PROGRESSING = "Progressing"
    HOLDING = "Holding"
    PROMOTING = "Promoting"
    PAUSED = "Paused"
    INCONCLUSIVE = "Inconclusive"
    OBSERVING = "Observing"
    COMPLETED = "Completed"
    ABORTED = "Aborted"
    ROLLED_BACK = "RolledBack"


#: Phases after which nothing more happens to a rollout.
TERMINAL_PHASES = frozenset({Phase.COMPLETED, Phase.ABORTED, Phase.ROLLED_BACK})


def rollout_over(phase: Phase, status: RolloutStatus) -> bool:
    """Whether nothing more will happen to a rollout: a terminal phase, or a completed rollout
    that is no longer observed (a newer release took over, or a manual rollback). The one place
    this is decided: the server, the API and the dashboard all ask here."""
    return phase in TERMINAL_PHASES or status.observe_ended_at is not None


class Action(StrEnum):
    """The next thing the controller does. Each is one transition (one receipt at most)."""

    NONE = "none"
    START = "start"  # enter the first step
    START_SHADOW = "start_shadow"  # cold start: mirror traffic to the candidate
    END_SHADOW = "end_shadow"  # a human promoted after the shadow: the candidate goes live
    ADVANCE = "advance"  # enter the next step
    COMPLETE = "complete"  # the candidate takes 100% and becomes the stable release
    EXTEND_HOLD = "extend_hold"  # hold met, monitors inconclusive: keep holding (once a step)
    PAUSE = "pause"  # deadline passed without a decision: pause for a human
    ROLLBACK = "rollback"  # a monitor or the observer failed: back to the stable release
    REVERT = "revert"  # an abort: back to the stable release


@dataclass(frozen=True, slots=True)
class PhaseDecision:
    """The phase, the action to take, where it leads and why.

    ``step_index`` / ``weight_bp`` are the target of ADVANCE / COMPLETE / START and the current
    step otherwise. ``wake_at`` is the next clock time at which the decision can change with no
    new reading (a dwell or a deadline), for a loop that wants to sleep precisely.
    """

    phase: Phase
    action: Action
    reason: str
    step_index: int
    weight_bp: int
    receipt_kind: ReceiptKind | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    checkpoint: CheckpointResult | None = None
    wake_at: float | None = None


def _decision(
    phase: Phase,
    status: RolloutStatus,
    reason: str,
    action: Action = Action.NONE,
    receipt: ReceiptKind | None = None,
    evidence: dict[str, Any] | None = None,
    **kw: Any,
) -> PhaseDecision:
    return PhaseDecision(
        phase=phase,
        action=action,
        reason=reason,
        step_index=kw.pop("step_index", status.step_index),
        weight_bp=kw.pop("weight_bp", status.step_weight_bp),
        receipt_kind=receipt,
        evidence={"reason": reason, **(evidence or {})},
        **kw,
    )


def compute_phase(spec: RolloutSpec, status: RolloutStatus, now: float) -> PhaseDecision:
    """The phase of the rollout at ``now`` and the next action (pure)."""
    if not status.started:
        if spec.cold_start:
            return _decision(
                Phase.PENDING,
                status,
                f"cold start: shadow for {spec.shadow_s:.0f} s",
                Action.START_SHADOW,
                ReceiptKind.SHADOW_START,
                {"shadow_s": spec.shadow_s},
                weight_bp=0,
            )
        first = spec.steps[0]
        return _decision(
            Phase.PENDING, status, "start", Action.START, step_index=0, weight_bp=first.weight_bp
        )

    if status.rolled_back_at is not None and status.rollback_cause != "abort":
        return _decision(Phase.ROLLED_BACK, status, f"rolled back ({status.rollback_cause})")

    abort_counts = status.aborted and (
        status.completed_at is None or (status.abort_at or 0.0) < status.completed_at
    )
    if abort_counts:
        abort_evidence = {
            "abort": True,
            "actor": status.abort_actor,
            "abort_reason": status.abort_reason,
            "step_index": status.step_index,
            "weight_bp": status.step_weight_bp,
            "pending_promotes": len(status.promote_requests),
        }
        if status.rolled_back_at is not None:
            return _decision(Phase.ABORTED, status, "aborted", evidence=abort_evidence)
        return _decision(
            Phase.ABORTED,
            status,
            f"abort by {status.abort_actor or 'unknown'}: {status.abort_reason}",
            Action.REVERT,
            ReceiptKind.MANUAL_ROLLBACK,
            abort_evidence,
            weight_bp=0,
        )

    if status.completed_at is not None:
        return _observing(spec, status)

    if status.paused:
        phase = Phase.INCONCLUSIVE if status.pause_source == "inconclusive" else Phase.PAUSED
        return _decision(phase, status, f"paused: {status.pause_reason}")

    if spec.cold_start and status.step_index < 0:
        return _shadow(spec, status, now)
    if status.step_index < 0:
        first = spec.steps[0]
        return _decision(
            Phase.PENDING, status, "start", Action.START, step_index=0, weight_bp=first.weight_bp
        )
    return _canary(spec, status, now)


def _observing(spec: RolloutSpec, status: RolloutStatus) -> PhaseDecision:
    if status.observe_ended_at is not None:
        return _decision(Phase.COMPLETED, status, "completed; observer ended")
    floor = spec.thresholds.quality_floor
    # Only minutes that start once the candidate serves everything count.
    done = status.completed_at if status.completed_at is not None else 0.0
    minutes = [m for m in status.minutes if m.minute_start >= done]
    verdict = evaluate_observer(spec.observer, floor, minutes)
    if verdict.fire and spec.cold_start:
        # No previous release to return to: swapping "back" would serve nothing. The breach is
        # reported in the phase's reason for a human (or a manual rollback to an older sha).
        return _decision(
            Phase.OBSERVING,
            status,
            f"observer breach with no previous release (cold start): {verdict.reason}",
            evidence=verdict.evidence,
        )
    if verdict.fire:
        return _decision(
            Phase.OBSERVING,
            status,
            verdict.reason,
            Action.ROLLBACK,
            ReceiptKind.AUTO_ROLLBACK,
            {"cause": "observer", **verdict.evidence},
        )
    return _decision(Phase.OBSERVING, status, "observing: " + verdict.reason)


def _shadow(spec: RolloutSpec, status: RolloutStatus, now: float) -> PhaseDecision:
    started = status.shadow_started_at if status.shadow_started_at is not None else now
    if status.shadow_mirror is not None:
        return _scored_shadow(spec, status, now, started)
    # Nothing was live to mirror (a tenant's first release): no answer to compare with.
    ends = started + spec.shadow_s
    if now < ends:
        return _decision(Phase.SHADOW, status, "shadowing", wake_at=ends)
    # Only a promote made once the shadow has run its course counts: promoting hour 2 of a
    # 24 h shadow must not silently go live at hour 24.
    late = [p for p in status.promote_requests if p[0] >= ends]
    if not late:
        return _decision(Phase.SHADOW, status, "shadow complete: awaiting a human promote")
    at, actor = late[0]
    return _decision(
        Phase.PROMOTING,
        status,
        f"promoted by {actor or 'unknown'} after {spec.shadow_s:.0f} s of shadow",
        Action.END_SHADOW,
        ReceiptKind.SHADOW_END,
        {"shadow_started_at": started, "shadow_s": spec.shadow_s, "actor": actor, "at": at},
        step_index=len(spec.steps) - 1,
        weight_bp=FULL_WEIGHT_BP,
    )


def _scored_shadow(
    spec: RolloutSpec, status: RolloutStatus, now: float, started: float
) -> PhaseDecision:
    """A shadow of the live release, decided on its mirrored answers (rollout/shadow.py): harm
    on a slice rolls back at once (an always-valid test, as a canary's failed monitor); at the
    end, no harm enters the first canary step, too little evidence pauses for a human."""
    ends = shadow_ends_at(spec, status, now)
    verdict = evaluate_shadow(status.latest().quality, spec.thresholds)
    evidence = {
        "shadow": verdict.to_dict(),
        "mirror": status.shadow_mirror,
        "shadow_started_at": started,
        "shadow_s": spec.shadow_s,
        "shadow_ends_at": ends,
    }
    if verdict.outcome is ShadowOutcome.FAIL:
        return _decision(
            Phase.SHADOW,
            status,
            f"shadow: {verdict.reason}",
            Action.ROLLBACK,
            ReceiptKind.AUTO_ROLLBACK,
            {"cause": "shadow", **evidence},
            weight_bp=0,
        )
    if now < ends:
        why = f"shadowing ({verdict.outcome}: {verdict.reason})"
        return _decision(Phase.SHADOW, status, why, evidence=evidence, wake_at=ends)
    if verdict.outcome is ShadowOutcome.PASS:
        first = spec.steps[0]
        return _decision(
            Phase.PROMOTING,
            status,
            f"shadow passed: {verdict.reason}; first canary step",
            Action.ADVANCE,
            ReceiptKind.CHECKPOINT_PROMOTE,
            {**evidence, "to_step_index": 0, "to_weight_bp": first.weight_bp},
            step_index=0,
            weight_bp=first.weight_bp,
        )
    return _decision(
        Phase.INCONCLUSIVE,
        status,
        f"shadow {verdict.outcome}: {verdict.reason}",
        Action.PAUSE,
        ReceiptKind.CHECKPOINT_INCONCLUSIVE,
        evidence,
    )


def _canary(spec: RolloutSpec, status: RolloutStatus, now: float) -> PhaseDecision:
    index = status.step_index
    step = spec.steps[index]
    last = index == len(spec.steps) - 1
    if last and not step.has_hold:
        # Normally folded into the promote that reached 100%; kept for a status that stopped
        # between the two (an older log).
        return _decision(Phase.PROMOTING, status, "final step has no hold", Action.COMPLETE)

    hold = hold_progress(step, status, now)
    cp = evaluate_checkpoint(index, step, hold, status.latest(), spec.thresholds)
    dwell_at = now + max(0.0, step.dwell_s - hold.dwell_elapsed_s)
    wake_at = min(
        (t for t in (dwell_at, hold.deadline_at) if t is not None and t > now), default=None
    )
    evidence = {**cp.evidence}

    if cp.outcome is Outcome.ROLLBACK:
        return _decision(
            Phase.PROGRESSING,
            status,
            cp.reason,
            Action.ROLLBACK,
            ReceiptKind.AUTO_ROLLBACK,
            {"cause": "monitor", **evidence},
            checkpoint=cp,
        )

    all_pass = all(v.verdict is Verdict.PASS for v in cp.verdicts)
    promote = cp.outcome is Outcome.PROMOTE
    reason = cp.reason
    if status.promote_requests and not promote:
        at, actor = status.promote_requests[0]
        if all_pass:
            # A human promote skips the rest of the hold; the monitors must still hold.
            promote = True
            reason = f"promoted by {actor or 'unknown'}: hold skipped, every monitor passed"
            evidence["manual_promote"] = {"actor": actor, "at": at}
        else:
            reason += "; promote pending: every monitor must pass first"

    if promote:
        final = last or (index + 1 == len(spec.steps) - 1 and not spec.steps[-1].has_hold)
        target = index if last else index + 1
        return _decision(
            Phase.PROMOTING,
            status,
            reason,
            Action.COMPLETE if final else Action.ADVANCE,
            ReceiptKind.CHECKPOINT_PROMOTE,
            {**evidence, "to_step_index": target, "to_weight_bp": spec.steps[target].weight_bp},
            step_index=target,
            weight_bp=spec.steps[target].weight_bp,
            checkpoint=cp,
        )
    if cp.outcome is Outcome.INCONCLUSIVE:
        return _decision(
            Phase.INCONCLUSIVE,
            status,
            reason,
            Action.PAUSE,
            ReceiptKind.CHECKPOINT_INCONCLUSIVE,
            evidence,
            checkpoint=cp,
        )
    if cp.outcome is Outcome.HOLD:
        if index in status.hold_extended_steps:
            return _decision(Phase.HOLDING, status, reason, checkpoint=cp, wake_at=wake_at)
        return _decision(
            Phase.HOLDING,
            status,
            reason,
            Action.EXTEND_HOLD,
            ReceiptKind.CHECKPOINT_HOLD,
            evidence,
            checkpoint=cp,
            wake_at=wake_at,
        )
    return _decision(Phase.PROGRESSING, status, reason, checkpoint=cp, wake_at=wake_at)
