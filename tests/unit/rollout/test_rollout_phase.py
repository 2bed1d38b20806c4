"""compute_phase: precedence, holds, deadlines, promote, shadow and observing, as pure values."""

from __future__ import annotations

from typing import Any

import pytest
from relgate.rollout import (
    Action,
    Fact,
    FactKind,
    Phase,
    QualityReading,
    Reading,
    ReceiptKind,
    RolloutSpec,
    RolloutStatus,
    compute_phase,
)
from rollout_builders import errors, latency, quality

SPEC = RolloutSpec()
T0 = 1_000.0


def fact(kind: FactKind, at: float, **data: Any) -> Fact:
    return Fact(kind, at, data)


def started(*more: Fact, spec: RolloutSpec = SPEC) -> RolloutStatus:
    facts = [
        fact(FactKind.STARTED, T0, candidate="v2", stable="v1", spec=spec.to_dict()),
        fact(FactKind.STEP_ENTERED, T0, index=0, weight_bp=500),
        *more,
    ]
    return RolloutStatus.from_facts(facts)


def reading(at: float, **kw: Any) -> Fact:
    r = Reading(at=at, latency=kw.get("latency", latency()), errors=kw.get("errors", errors()),
                quality=kw.get("quality", quality()))  # fmt: skip
    return Fact(FactKind.READING, at, r.to_fact_data())


def requests(at: float, n: int) -> Fact:
    return fact(FactKind.REQUESTS, at, n=n)


def test_not_started_starts_at_the_first_step() -> None:
    d = compute_phase(SPEC, RolloutStatus(), T0)
    assert (d.phase, d.action, d.weight_bp, d.receipt_kind) == (
        Phase.PENDING, Action.START, 500, None,
    )  # fmt: skip


def test_hold_needs_both_dwell_and_request_count() -> None:
    good = reading(T0 + 10)
    # Dwell met, requests short.
    d = compute_phase(SPEC, started(requests(T0, 999), good), T0 + 300)
    assert (d.phase, d.action) == (Phase.PROGRESSING, Action.NONE)
    assert "requests 999/1000" in d.reason
    # Requests met, dwell short.
    d = compute_phase(SPEC, started(requests(T0, 5_000), good), T0 + 239)
    assert (d.phase, d.action) == (Phase.PROGRESSING, Action.NONE)
    assert d.wake_at == pytest.approx(T0 + 240)
    # Both met: promote to 25%.
    d = compute_phase(SPEC, started(requests(T0, 1_000), good), T0 + 240)
    assert (d.phase, d.action, d.receipt_kind) == (
        Phase.PROMOTING, Action.ADVANCE, ReceiptKind.CHECKPOINT_PROMOTE,
    )  # fmt: skip
    assert (d.step_index, d.weight_bp) == (1, 2_500)
    assert d.evidence["hold"]["hold_met"] is True


def test_hold_met_with_inconclusive_monitor_extends_then_pauses_never_passes() -> None:
    thin_quality = reading(T0 + 10, quality=QualityReading(judge_error="timeout"))
    status = started(requests(T0, 2_000), thin_quality)
    d = compute_phase(SPEC, status, T0 + 300)
    assert (d.phase, d.action, d.receipt_kind) == (
        Phase.HOLDING, Action.EXTEND_HOLD, ReceiptKind.CHECKPOINT_HOLD,
    )  # fmt: skip
    # Emitted once a step: after the HOLD_EXTENDED fact the hold continues silently.
    status = status.apply(fact(FactKind.HOLD_EXTENDED, T0 + 300, index=0))
    d = compute_phase(SPEC, status, T0 + 1_000)
    assert (d.phase, d.action) == (Phase.HOLDING, Action.NONE)
    # At the deadline: inconclusive, pause for a human.
    d = compute_phase(SPEC, status, T0 + 1_800)
    assert (d.phase, d.action, d.receipt_kind) == (
        Phase.INCONCLUSIVE, Action.PAUSE, ReceiptKind.CHECKPOINT_INCONCLUSIVE,
    )  # fmt: skip
    paused = status.apply(fact(FactKind.PAUSE, T0 + 1_800, source="inconclusive", reason=d.reason))
    for later in (T0 + 1_801, T0 + 10**6):
        d = compute_phase(SPEC, paused, later)
        assert (d.phase, d.action) == (Phase.INCONCLUSIVE, Action.NONE)


def test_starved_hold_at_deadline_is_inconclusive() -> None:
    status = started(requests(T0, 300), reading(T0 + 10))
    assert compute_phase(SPEC, status, T0 + 1_799).action is Action.NONE
    d = compute_phase(SPEC, status, T0 + 1_800)
    assert (d.phase, d.action) == (Phase.INCONCLUSIVE, Action.PAUSE)
    assert "starved" in d.reason and "requests 300/1000" in d.reason


def test_resume_restarts_the_deadline() -> None:
    status = started(
        requests(T0, 300),
        fact(FactKind.PAUSE, T0 + 1_800, source="inconclusive", reason="starved"),
        fact(FactKind.RESUME, T0 + 2_000, actor="alice"),
    )
    assert compute_phase(SPEC, status, T0 + 2_100).action is Action.NONE
    assert compute_phase(SPEC, status, T0 + 3_800).action is Action.PAUSE


def test_failed_monitor_rolls_back_even_before_the_hold() -> None:
    status = started(requests(T0, 100), reading(T0 + 30, latency=latency(1.3)))
    d = compute_phase(SPEC, status, T0 + 30)
    assert (d.action, d.receipt_kind) == (Action.ROLLBACK, ReceiptKind.AUTO_ROLLBACK)
    assert d.evidence["cause"] == "monitor"
    assert "latency_p95" in d.reason


def test_quality_only_regression_rolls_back_at_5pct() -> None:
    status = started(requests(T0, 400), reading(T0 + 60, quality=quality(health=0.95, law=0.1)))
    d = compute_phase(SPEC, status, T0 + 60)
    assert d.action is Action.ROLLBACK
    assert d.step_index == 0 and d.weight_bp == 500
    monitors = {m["monitor"]: m["verdict"] for m in d.evidence["monitors"]}
    assert monitors == {"latency_p95": "PASS", "error_rate": "PASS", "quality": "FAIL"}


def test_precedence_abort_beats_pause_beats_promote() -> None:
    base = [requests(T0, 100), reading(T0 + 10)]
    promote = fact(FactKind.PROMOTE, T0 + 20, actor="r")
    pause = fact(FactKind.PAUSE, T0 + 21, actor="p", reason="look", source="human")
    abort = fact(FactKind.ABORT, T0 + 22, actor="a", reason="stop")

    d = compute_phase(SPEC, started(*base, promote), T0 + 30)
    assert (d.phase, d.action) == (Phase.PROMOTING, Action.ADVANCE)
    assert d.evidence["manual_promote"]["actor"] == "r"

    d = compute_phase(SPEC, started(*base, promote, pause), T0 + 30)
    assert (d.phase, d.action) == (Phase.PAUSED, Action.NONE)

    for order in ([promote, pause, abort], [abort, promote], [promote, abort]):
        d = compute_phase(SPEC, started(*base, *order), T0 + 30)
        assert (d.phase, d.action, d.receipt_kind) == (
            Phase.ABORTED, Action.REVERT, ReceiptKind.MANUAL_ROLLBACK,
        )  # fmt: skip
        assert d.weight_bp == 0


def test_abort_once_applied_stays_aborted() -> None:
    status = started(
        fact(FactKind.ABORT, T0 + 5, actor="a", reason="stop"),
        fact(FactKind.ROLLED_BACK, T0 + 5, cause="abort", to="v1"),
        fact(FactKind.PROMOTE, T0 + 6, actor="late"),
    )
    d = compute_phase(SPEC, status, T0 + 60)
    assert (d.phase, d.action) == (Phase.ABORTED, Action.NONE)


def test_promote_skips_the_hold_only_when_every_monitor_passes() -> None:
    thin = reading(T0 + 10, errors=errors(cand_5xx=0, n=50))
    status = started(requests(T0, 50), thin, fact(FactKind.PROMOTE, T0 + 20, actor="r"))
    d = compute_phase(SPEC, status, T0 + 30)
    assert d.action is Action.NONE
    assert "promote pending" in d.reason


def test_promote_into_a_final_step_without_hold_completes() -> None:
    status = started(
        requests(T0, 1_000),
        reading(T0 + 10),
        fact(FactKind.STEP_ENTERED, T0 + 240, index=1, weight_bp=2_500),
        requests(T0 + 240, 10_000),
        reading(T0 + 1_100),
    )
    d = compute_phase(SPEC, status, T0 + 240 + 900)
    assert (d.action, d.step_index, d.weight_bp) == (Action.COMPLETE, 2, 10_000)
    assert d.receipt_kind is ReceiptKind.CHECKPOINT_PROMOTE


def test_readings_do_not_carry_over_between_steps() -> None:
    status = started(
        requests(T0, 1_000),
        reading(T0 + 10),
        fact(FactKind.STEP_ENTERED, T0 + 240, index=1, weight_bp=2_500),
        requests(T0 + 240, 10_000),
    )
    d = compute_phase(SPEC, status, T0 + 240 + 900)
    assert (d.phase, d.action) == (Phase.HOLDING, Action.EXTEND_HOLD)


def test_observing_after_completion_and_observer_rollback() -> None:
    done = [fact(FactKind.COMPLETED, T0 + 500)]
    minutes = [
        fact(FactKind.MINUTE, T0 + 600 + 60 * i, minute_start=T0 + 540 + 60 * i,
             slices={"law": {"q": 0.3, "n": 30}})
        for i in range(3)
    ]  # fmt: skip
    d = compute_phase(SPEC, started(*done, *minutes[:2]), T0 + 700)
    assert (d.phase, d.action) == (Phase.OBSERVING, Action.NONE)
    d = compute_phase(SPEC, started(*done, *minutes), T0 + 800)
    assert (d.phase, d.action, d.receipt_kind) == (
        Phase.OBSERVING, Action.ROLLBACK, ReceiptKind.AUTO_ROLLBACK,
    )  # fmt: skip
    assert d.evidence["cause"] == "observer"
    rolled = started(*done, *minutes, fact(FactKind.ROLLED_BACK, T0 + 800, cause="observer"))
    assert compute_phase(SPEC, rolled, T0 + 900).phase is Phase.ROLLED_BACK
    # An abort after completion does not undo it (use a rollback to a sha instead).
    late_abort = started(*done, fact(FactKind.ABORT, T0 + 900, actor="a", reason="x"))
    assert compute_phase(SPEC, late_abort, T0 + 901).phase is Phase.OBSERVING


def test_cold_start_shadows_then_waits_for_a_human_promote() -> None:
    spec = RolloutSpec(cold_start=True, shadow_s=3_600)
    d = compute_phase(spec, RolloutStatus(), T0)
    assert (d.action, d.receipt_kind) == (Action.START_SHADOW, ReceiptKind.SHADOW_START)
    status = RolloutStatus.from_facts([
        fact(FactKind.STARTED, T0, candidate="v1", stable=None, spec=spec.to_dict()),
        fact(FactKind.SHADOW_STARTED, T0),
        fact(FactKind.PROMOTE, T0 + 60, actor="early"),
    ])  # fmt: skip
    assert compute_phase(spec, status, T0 + 100).phase is Phase.SHADOW
    d = compute_phase(spec, status, T0 + 3_600)
    assert (d.phase, d.action) == (Phase.SHADOW, Action.NONE)  # the early promote is not enough
    status = status.apply(fact(FactKind.PROMOTE, T0 + 4_000, actor="alice"))
    d = compute_phase(spec, status, T0 + 4_000)
    assert (d.phase, d.action, d.receipt_kind) == (
        Phase.PROMOTING, Action.END_SHADOW, ReceiptKind.SHADOW_END,
    )  # fmt: skip
    assert d.evidence["actor"] == "alice"


def test_compute_phase_is_pure() -> None:
    status = started(requests(T0, 1_000), reading(T0 + 10))
    before = status
    first = compute_phase(SPEC, status, T0 + 240)
    assert compute_phase(SPEC, status, T0 + 240) == first
    assert status == before


def test_observer_counts_only_minutes_after_completion() -> None:
    bad = {"law": {"q": 0.3, "n": 30}}
    before = [fact(FactKind.MINUTE, T0 + 10 * i, minute_start=T0 + 10 * i, slices=bad)
              for i in range(2)]  # fmt: skip
    after = [fact(FactKind.MINUTE, T0 + 560, minute_start=T0 + 500, slices=bad)]
    status = started(*before, fact(FactKind.COMPLETED, T0 + 500), *after)
    assert compute_phase(SPEC, status, T0 + 600).action is Action.NONE


def test_cold_start_observer_breach_has_nothing_to_roll_back_to() -> None:
    spec = RolloutSpec(cold_start=True, shadow_s=60)
    bad = {"law": {"q": 0.3, "n": 30}}
    status = RolloutStatus.from_facts([
        fact(FactKind.STARTED, T0, candidate="v1", stable=None, spec=spec.to_dict()),
        fact(FactKind.SHADOW_STARTED, T0),
        fact(FactKind.COMPLETED, T0 + 100),
        *(fact(FactKind.MINUTE, T0 + 200 + 60 * i, minute_start=T0 + 140 + 60 * i, slices=bad)
          for i in range(3)),
    ])  # fmt: skip
    d = compute_phase(spec, status, T0 + 400)
    assert (d.phase, d.action) == (Phase.OBSERVING, Action.NONE)
    assert "no previous release" in d.reason
