"""RolloutController: the single writer, driven by an injected clock; recovery from facts."""

from __future__ import annotations

from typing import Any

import pytest
from relgate.canonical import canonical_json
from relgate.errors import InvalidInputError, InvalidTransitionError
from relgate.rollout import (
    Fact,
    FactKind,
    MemoryFactLog,
    MinuteQuality,
    Phase,
    QualityReading,
    Readings,
    RolloutController,
    RolloutSpec,
    SliceMinute,
)
from rollout_builders import FakeClock, Feed, RecordingRouting, good, latency, quality


class Harness:
    def __init__(self, spec: RolloutSpec | None = None, log: MemoryFactLog | None = None) -> None:
        self.clock = FakeClock()
        self.feed = Feed()
        self.routing = RecordingRouting()
        self.receipts: list[tuple[str, dict[str, Any]]] = []
        self.log = log if log is not None else MemoryFactLog()
        spec = spec or RolloutSpec()
        self.controller = RolloutController(
            spec,
            candidate="v2",
            stable=None if spec.cold_start else "v1",
            clock=self.clock,
            readings=self.feed,
            routing=self.routing,
            record=lambda kind, ev: self.receipts.append((kind, ev)),
            log=self.log,
        )

    def crash_and_resume(self) -> None:
        """Drop the controller and the gateway's routing; rebuild both from the facts."""
        self.routing = RecordingRouting()
        self.controller = RolloutController.resume(
            self.log,
            clock=self.clock,
            readings=self.feed,
            routing=self.routing,
            record=lambda kind, ev: self.receipts.append((kind, ev)),
        )

    def step(self, seconds: float, readings: Readings | None = None) -> Phase:
        self.clock.advance(seconds)
        if readings is not None:
            self.feed.push(readings)
        return self.controller.tick()[-1].phase

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.receipts]


def test_healthy_rollout_end_to_end() -> None:
    h = Harness()
    assert h.step(0) is Phase.PROGRESSING
    assert h.routing.calls == [("set_weight", 500)]
    assert h.step(120, good(600)) is Phase.PROGRESSING
    assert h.step(120, good(600)) is Phase.PROGRESSING  # promoted to 25% in this tick
    assert h.controller.status.step_index == 1
    assert h.step(900, good(10_000)) is Phase.OBSERVING
    assert h.kinds == ["checkpoint_promote", "checkpoint_promote"]
    assert h.routing.calls == [
        ("set_weight", 500), ("set_weight", 2_500), ("set_weight", 10_000), ("swap_to", "v2"),
    ]  # fmt: skip
    for _, evidence in h.receipts:
        canonical_json(evidence)
        assert evidence["candidate"] == "v2" and evidence["stable"] == "v1"


def test_quality_only_regression_rolls_back_at_5pct() -> None:
    h = Harness()
    h.step(0)
    bad = Readings(requests=400, latency=latency(), errors=good().errors,
                   quality=quality(health=0.95, law=0.1))  # fmt: skip
    assert h.step(90, bad) is Phase.ROLLED_BACK
    assert h.kinds == ["auto_rollback"]
    assert h.routing.calls[-1] == ("swap_to", "v1")
    evidence = h.receipts[0][1]
    assert evidence["weight_bp"] == 500
    monitors = {m["monitor"]: m["verdict"] for m in evidence["monitors"]}
    assert monitors == {"latency_p95": "PASS", "error_rate": "PASS", "quality": "FAIL"}
    # Terminal: nothing further happens, commands are refused.
    assert h.step(600, good(5_000)) is Phase.ROLLED_BACK
    with pytest.raises(InvalidTransitionError):
        h.controller.promote("alice")


def test_latency_regression_fails_the_step() -> None:
    h = Harness()
    h.step(0)
    slow = Readings(requests=300, latency=latency(1.3), errors=good().errors)
    assert h.step(60, slow) is Phase.ROLLED_BACK
    assert "latency_p95" in h.receipts[0][1]["reason"]


def test_judge_outage_holds_then_pauses_for_a_human() -> None:
    h = Harness()
    h.step(0)
    outage = Readings(requests=2_000, latency=latency(), errors=good().errors,
                      quality=QualityReading(judge_error="JudgeUnavailableError"))  # fmt: skip
    assert h.step(300, outage) is Phase.HOLDING
    assert h.step(600) is Phase.HOLDING
    assert h.step(900) is Phase.INCONCLUSIVE  # 1,800 s deadline
    assert h.kinds == ["checkpoint_hold", "checkpoint_inconclusive"]
    assert h.controller.status.paused
    assert h.step(10_000) is Phase.INCONCLUSIVE  # never a silent pass
    h.controller.resume_rollout("alice", "judge is back")
    assert h.step(10, good()) is Phase.PROGRESSING  # promoted: fresh readings pass
    assert h.controller.status.step_index == 1


def test_abort_during_promote_wins() -> None:
    h = Harness()
    h.step(0)
    h.step(60, good(300))
    h.controller.promote("releaser")
    h.controller.abort("oncall", "freeze")
    assert h.step(1) is Phase.ABORTED
    assert h.kinds == ["manual_rollback"]
    assert h.routing.calls == [("set_weight", 500), ("swap_to", "v1")]
    assert h.controller.status.step_index == 0


def test_pause_beats_promote_until_resumed() -> None:
    h = Harness()
    h.step(0)
    h.step(60, good(300))
    h.controller.pause("alice", "looking")
    h.controller.promote("bob")
    assert h.step(1) is Phase.PAUSED
    assert h.controller.status.step_index == 0
    h.controller.resume_rollout("alice")
    h.step(1)
    assert h.controller.status.step_index == 1
    with pytest.raises(InvalidTransitionError):
        h.controller.resume_rollout("alice")


def test_resume_after_crash_at_the_same_step_and_hold_clock() -> None:
    h = Harness()
    h.step(0)
    h.step(240, good(1_200))  # -> 25%
    entered = h.controller.status.step_entered_at
    h.step(300, good(6_000))
    before = h.controller.status
    facts = len(h.log.facts)

    h.crash_and_resume()
    after = h.controller.status
    assert (after.step_index, after.step_entered_at, after.requests_in_step) == (
        1, entered, 6_000,
    )  # fmt: skip
    assert after == before
    assert h.routing.calls == [("set_weight", 2_500)]  # reconciled, nothing re-emitted
    assert len(h.log.facts) == facts
    assert h.kinds == ["checkpoint_promote"]
    # It carries on: 600 s more and 4,000 more requests complete the 900 s / 10,000 hold.
    assert h.step(600, good(4_000)) is Phase.OBSERVING
    assert h.kinds == ["checkpoint_promote", "checkpoint_promote"]


def test_resume_of_an_inconclusive_pause_survives_a_crash() -> None:
    h = Harness()
    h.step(0)
    h.step(1_800, Readings(requests=10))
    assert h.controller.status.paused
    h.crash_and_resume()
    assert h.controller.phase().phase is Phase.INCONCLUSIVE
    assert h.kinds == ["checkpoint_inconclusive"]


def test_observer_rollback_after_completion() -> None:
    spec = RolloutSpec().with_overrides(
        {"steps": [{"weight_bp": 500, "dwell_s": 60, "min_requests": 100, "deadline_s": 600},
                   {"weight_bp": 10_000}]}
    )  # fmt: skip
    h = Harness(spec)
    h.step(0)
    assert h.step(60, good(200)) is Phase.OBSERVING
    t0 = h.clock.t

    def minute(i: int, q: float, n: int = 30) -> Readings:
        return Readings(minutes=(MinuteQuality(t0 + 60 * i, (SliceMinute("law", q, n),)),))

    for i, (q, n) in enumerate([(0.3, 30), (0.3, 30), (0.9, 30), (0.3, 30), (0.2, 3), (0.3, 30)]):
        assert h.step(60, minute(i, q, n)) is Phase.OBSERVING
    assert h.step(60, minute(6, 0.3)) is Phase.ROLLED_BACK
    assert h.kinds == ["checkpoint_promote", "auto_rollback"]
    assert h.receipts[-1][1]["cause"] == "observer"
    assert h.routing.calls[-1] == ("swap_to", "v1")


def test_cold_start_shadow_then_human_promote() -> None:
    spec = RolloutSpec(cold_start=True, shadow_s=3_600)
    h = Harness(spec)
    assert h.step(0) is Phase.SHADOW
    assert h.routing.calls == [("set_shadow", True)]
    assert h.step(3_600) is Phase.SHADOW
    h.controller.promote("alice", "shadow looked fine")
    assert h.step(1) is Phase.OBSERVING
    assert h.kinds == ["shadow_start", "shadow_end"]
    assert h.routing.calls == [("set_shadow", True), ("set_shadow", False), ("swap_to", "v2")]


def test_receipt_is_recorded_before_facts_are_appended() -> None:
    order: list[str] = []

    class Log(MemoryFactLog):
        def append(self, facts: Any) -> None:
            order.append("append")
            super().append(facts)

    h = Harness(log=Log())
    h.controller._record = lambda kind, ev: order.append(kind)  # type: ignore[assignment]
    h.step(0)
    order.clear()
    h.step(240, good(1_200))
    assert order == ["append", "checkpoint_promote", "append"]  # readings, then the decision


def test_a_rollback_routes_back_before_anything_is_written() -> None:
    """The swap does not wait for the commits (the readings', then the decision's): going back
    to the stable release is the safe direction. Every other action is written first."""
    order: list[Any] = []

    class Log(MemoryFactLog):
        def append(self, facts: Any) -> None:
            order.append(("append", [f.kind for f in facts]))
            super().append(facts)

    h = Harness(log=Log())
    h.controller._record = lambda kind, ev: order.append(kind)  # type: ignore[assignment]
    h.step(0)
    order.clear()
    calls = h.routing.calls
    real_swap = h.routing.swap_to
    h.routing.swap_to = lambda sha: (order.append(("swap_to", sha)), real_swap(sha))[1]  # type: ignore[method-assign]
    bad = Readings(requests=400, latency=latency(), errors=good().errors,
                   quality=quality(health=0.95, law=0.1))  # fmt: skip
    assert h.step(90, bad) is Phase.ROLLED_BACK
    assert order[0] == ("swap_to", "v1")  # before the readings' and the decision's writes
    assert order[1][0] == "append" and "auto_rollback" in order
    assert calls.count(("swap_to", "v1")) == 1  # routed once, recorded after
    # An abort: the swap comes before the command's own receipt too.
    h2 = Harness(log=Log())
    h2.step(0)
    order.clear()
    h2.routing.swap_to = lambda sha: order.append(("swap_to", sha))  # type: ignore[method-assign]
    h2.controller._record = lambda kind, ev: order.append(kind)  # type: ignore[assignment]
    h2.controller.abort("oncall", "freeze")
    assert h2.step(1) is Phase.ABORTED
    assert order[0] == ("swap_to", "v1") and "manual_rollback" in order


def test_a_rollback_whose_commit_fails_restores_the_recorded_routing() -> None:
    """The store refused the rollback's facts (down, or this leader was deposed): the routing
    goes back to what is recorded, nothing is lost, and the next tick decides again."""

    class Failing(MemoryFactLog):
        fail = False

        def append(self, facts: Any) -> None:
            if self.fail:
                raise OSError("store unavailable")
            super().append(facts)

    log = Failing()
    h = Harness(log=log)
    h.step(0)
    bad = Readings(requests=400, latency=latency(), errors=good().errors,
                   quality=quality(health=0.95, law=0.1))  # fmt: skip
    log.fail = True
    with pytest.raises(OSError):
        h.step(90, bad)
    assert h.routing.calls[-2:] == [("swap_to", "v1"), ("set_weight", 500)]
    assert h.controller.status.rolled_back_at is None and h.kinds == []
    log.fail = False
    assert h.step(1, bad) is Phase.ROLLED_BACK
    assert h.routing.calls[-1] == ("swap_to", "v1") and h.kinds == ["auto_rollback"]


def test_construction_checks() -> None:
    with pytest.raises(InvalidInputError, match="cold start"):
        RolloutController(
            RolloutSpec(),
            candidate="v2",
            stable=None,
            clock=FakeClock(),
            readings=Feed(),
            routing=RecordingRouting(),
            record=lambda k, e: None,
        )
    with pytest.raises(InvalidInputError, match="no started rollout"):
        RolloutController.resume(MemoryFactLog(), clock=FakeClock(), readings=Feed(),
                                 routing=RecordingRouting(), record=lambda k, e: None)  # fmt: skip
    h = Harness()
    with pytest.raises(InvalidTransitionError):
        h.controller.abort("a", "before start")
    log = MemoryFactLog([Fact(FactKind.STARTED, 0.0, {"candidate": "other", "spec": {}})])
    with pytest.raises(InvalidInputError, match="another candidate"):
        Harness(log=log)


def test_abort_during_shadow_ends_the_shadow() -> None:
    h = Harness(RolloutSpec(cold_start=True, shadow_s=3_600))
    h.step(0)
    h.controller.abort("oncall", "bad answers in the shadow log")
    assert h.step(60) is Phase.ABORTED
    assert h.routing.calls == [("set_shadow", True), ("set_shadow", False)]
    assert h.kinds == ["shadow_start", "manual_rollback"]
    h.crash_and_resume()
    assert h.routing.calls == [("set_shadow", False)]


def test_run_loop_sleeps_on_the_injected_clock_until_terminal() -> None:
    h = Harness()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        h.clock.advance(seconds)
        h.feed.push(good(200))  # the data plane keeps serving while the loop sleeps

    def done() -> bool:
        return h.controller.status.completed_at is not None

    final = h.controller.run(stop=done, sleep=sleep, interval_s=30.0)
    assert final.phase is Phase.OBSERVING
    assert h.kinds == ["checkpoint_promote", "checkpoint_promote"]
    assert max(slept) <= 30.0


def test_run_returns_at_a_terminal_phase() -> None:
    h = Harness()
    h.feed.push(Readings(requests=300, latency=latency(1.5), errors=good().errors))
    final = h.controller.run(stop=lambda: False, sleep=h.clock.advance, interval_s=5.0)
    assert final.phase is Phase.ROLLED_BACK
