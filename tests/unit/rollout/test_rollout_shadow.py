"""The shadow decision of a cold start that mirrors the live release (rollout/shadow.py and
phase._scored_shadow): harm on a slice rolls back at once naming it, no harm enters the first
canary step at the end of the period, too few mirrored pairs pause for a human as a starved
canary does; a shadow with nothing to mirror keeps waiting for a human promote."""

from __future__ import annotations

import pytest
from relgate.errors import InvalidInputError
from relgate.rollout import QualityReading, Readings, RolloutController, RolloutSpec, SliceQuality
from relgate.rollout.controller import MemoryFactLog
from relgate.rollout.phase import Action, Phase, compute_phase
from relgate.rollout.shadow import ShadowOutcome, evaluate_shadow
from relgate.rollout.status import Fact, FactKind, RolloutStatus
from rollout_builders import FakeClock, RecordingRouting

T0 = 1_000.0
SPEC = RolloutSpec(cold_start=True, shadow_s=600.0)
MIRROR = "a" * 64


def paired(name: str, n: int, d: float) -> SliceQuality:
    """A slice with ``n`` paired differences of about ``d`` (candidate minus rerun)."""
    diffs = tuple((f"tr_{name}_{i}", d + (0.01 if i % 2 else -0.01)) for i in range(n))
    return SliceQuality(name, n, 0.5, 0.6, "rerun", diffs)


def reading(*slices: SliceQuality, judge_error: str | None = None) -> QualityReading:
    return QualityReading(slices=slices, judge_error=judge_error, judge_sha256="j" * 64)


def shadow_status(quality: QualityReading | None, *, mirror: str | None = MIRROR) -> RolloutStatus:
    facts = [
        Fact(FactKind.STARTED, T0, {"candidate": "c" * 64, "stable": None, "spec": {}}),
        Fact(FactKind.SHADOW_STARTED, T0, {} if mirror is None else {"mirror": mirror}),
    ]
    if quality is not None:
        facts.append(Fact(FactKind.READING, T0 + 10, {"quality": quality.to_dict()}))
    return RolloutStatus.from_facts(facts)


def test_outcomes_of_the_shadow_verdict() -> None:
    t = SPEC.thresholds
    ok = evaluate_shadow(reading(paired("Law", 40, 0.0), paired("Health", 40, 0.0)), t)
    assert ok.outcome is ShadowOutcome.PASS and ok.pairs == {"Health": 40, "Law": 40}
    bad = evaluate_shadow(reading(paired("Law", 40, -0.5), paired("Health", 40, 0.0)), t)
    assert bad.outcome is ShadowOutcome.FAIL and bad.failed_slices == ("Law",)
    assert "Law" in bad.reason and "Health" not in bad.reason
    thin = evaluate_shadow(reading(paired("Law", 3, 0.0), paired("Health", 40, 0.0)), t)
    assert thin.outcome is ShadowOutcome.INSUFFICIENT and "Law 3 < 20" in thin.reason
    assert evaluate_shadow(None, t).outcome is ShadowOutcome.INSUFFICIENT
    assert evaluate_shadow(reading(), t).outcome is ShadowOutcome.INSUFFICIENT
    down = evaluate_shadow(reading(judge_error="JudgeError: down"), t)
    assert down.outcome is ShadowOutcome.INCONCLUSIVE
    # Harm on one slice is shown even while another is still thin.
    mixed = evaluate_shadow(reading(paired("Law", 40, -0.5), paired("Health", 2, 0.0)), t)
    assert mixed.outcome is ShadowOutcome.FAIL


def test_harm_rolls_back_at_once_naming_the_slice() -> None:
    q = reading(paired("Law", 40, -0.5), paired("Health", 40, 0.0))
    d = compute_phase(SPEC, shadow_status(q), T0 + 60)  # long before the period ends
    assert d.action is Action.ROLLBACK and d.receipt_kind == "auto_rollback"
    assert d.evidence["cause"] == "shadow" and "Law" in d.reason
    assert d.evidence["shadow"]["failed_slices"] == ["Law"]
    assert d.evidence["mirror"] == MIRROR


def test_no_harm_enters_the_first_canary_step_at_the_end() -> None:
    q = reading(paired("Law", 40, 0.0), paired("Health", 40, 0.01))
    during = compute_phase(SPEC, shadow_status(q), T0 + 599)
    assert during.phase is Phase.SHADOW and during.action is Action.NONE
    assert during.wake_at == T0 + 600 and "PASS" in during.reason
    end = compute_phase(SPEC, shadow_status(q), T0 + 600)
    assert end.action is Action.ADVANCE and end.receipt_kind == "checkpoint_promote"
    assert (end.step_index, end.weight_bp) == (0, SPEC.steps[0].weight_bp)
    assert end.evidence["shadow"]["outcome"] == "PASS"
    assert end.evidence["shadow"]["pairs"] == {"Health": 40, "Law": 40}


@pytest.mark.parametrize(
    ("quality", "outcome"),
    [
        (None, "INSUFFICIENT"),
        (reading(paired("Law", 5, 0.0), paired("Health", 40, 0.0)), "INSUFFICIENT"),
        (reading(judge_error="JudgeError: down"), "INCONCLUSIVE"),
    ],
)
def test_too_little_evidence_pauses_for_a_human(
    quality: QualityReading | None, outcome: str
) -> None:
    d = compute_phase(SPEC, shadow_status(quality), T0 + 600)
    assert d.phase is Phase.INCONCLUSIVE and d.action is Action.PAUSE
    assert d.receipt_kind == "checkpoint_inconclusive"
    assert d.evidence["shadow"]["outcome"] == outcome and outcome in d.reason


def test_a_shadow_with_nothing_to_mirror_waits_for_a_human() -> None:
    d = compute_phase(SPEC, shadow_status(None, mirror=None), T0 + 600)
    assert d.phase is Phase.SHADOW and d.action is Action.NONE
    assert "awaiting a human promote" in d.reason


def test_a_mirror_that_is_not_a_sha_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="mirror"):
        RolloutStatus().apply(Fact(FactKind.SHADOW_STARTED, T0, {"mirror": 7}))


class _Quality:
    """A readings provider that hands one quality reading, then nothing."""

    def __init__(self) -> None:
        self.next: QualityReading | None = None

    def __call__(self) -> Readings:
        q, self.next = self.next, None
        return Readings(quality=q)


def _controller(clock: FakeClock, feed: _Quality) -> tuple[RolloutController, RecordingRouting]:
    routing = RecordingRouting()
    receipts: list[tuple[str, dict[str, object]]] = []
    c = RolloutController(
        SPEC,
        candidate="c" * 64,
        stable=None,
        clock=clock,
        readings=feed,
        routing=routing,
        record=lambda kind, ev: receipts.append((kind, ev)),
        log=MemoryFactLog(),
        mirror=MIRROR,
    )
    return c, routing


def test_controller_moves_a_passing_shadow_into_its_canary_and_resumes_there() -> None:
    clock, feed = FakeClock(T0), _Quality()
    c, routing = _controller(clock, feed)
    c.tick()
    assert routing.calls == [("set_shadow", True)]
    assert c.status.shadow_mirror == MIRROR
    feed.next = reading(paired("Law", 40, 0.0), paired("Health", 40, 0.0))
    clock.advance(600)
    c.tick()
    assert routing.calls[-1] == ("set_weight", SPEC.steps[0].weight_bp)
    assert c.status.step_index == 0 and c.status.shadow_ended_at is None
    # A restart re-applies the canary's split, not the shadow.
    log = c._log
    again = RecordingRouting()
    RolloutController.resume(log, clock=clock, readings=feed, routing=again, record=lambda *a: None)
    assert again.calls == [("set_weight", SPEC.steps[0].weight_bp)]


def test_controller_ends_a_harmful_shadow_back_on_the_live_release() -> None:
    clock, feed = FakeClock(T0), _Quality()
    c, routing = _controller(clock, feed)
    c.tick()
    feed.next = reading(paired("Law", 40, -0.5), paired("Health", 40, 0.0))
    clock.advance(30)
    c.tick()
    assert routing.calls[-1] == ("set_shadow", False)
    assert c.status.rollback_cause == "shadow"
    assert c.phase().phase is Phase.ROLLED_BACK
