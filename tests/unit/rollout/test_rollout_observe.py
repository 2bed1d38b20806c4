"""Observer: exactly 3 consecutive bad counted minutes fire; thin minutes are skipped."""

from __future__ import annotations

import pytest
from relgate.errors import InvalidInputError
from relgate.rollout import MinuteQuality, Observer, ObserverSpec, SliceMinute, sampled
from relgate.rollout.observe import MinuteClass, classify

SPEC = ObserverSpec(n_min=20, consecutive_minutes=3, rollback_fraction=0.85)
FLOOR = 0.65  # threshold 0.5525
BAD, GOOD, THIN = (0.40, 30), (0.80, 30), (0.10, 5)


def run(pattern: list[tuple[float | None, int]], slice_: str = "law") -> list[bool]:
    obs = Observer(SPEC, FLOOR)
    return [
        obs.observe(MinuteQuality(60.0 * i, (SliceMinute(slice_, q, n),))).fire
        for i, (q, n) in enumerate(pattern)
    ]


def test_exactly_three_bad_counted_minutes_fire() -> None:
    assert run([BAD, BAD, BAD]) == [False, False, True]


def test_bad_bad_good_does_not_fire() -> None:
    assert run([BAD, BAD, GOOD]) == [False, False, False]
    assert run([BAD, BAD, GOOD, BAD, BAD]) == [False] * 5


def test_thin_minutes_are_skipped_not_resets() -> None:
    assert run([BAD, THIN, BAD, BAD]) == [False, False, False, True]
    assert run([BAD, BAD, THIN, THIN]) == [False] * 4
    assert run([THIN] * 10) == [False] * 10
    assert run([BAD, (None, 40), BAD, BAD])[-1]  # undefined score counts as thin


def test_threshold_is_a_fraction_of_the_gate_floor() -> None:
    just_below, at = (0.5524, 30), (0.5525, 30)
    assert run([just_below] * 3)[-1]
    assert not run([at] * 3)[-1]
    assert classify(SliceMinute("x", 0.9, 19), SPEC, FLOOR) is MinuteClass.THIN


def test_decision_carries_evidence_and_only_the_bad_slice() -> None:
    obs = Observer(SPEC, FLOOR)
    decision = None
    for i in range(3):
        minute = MinuteQuality(
            60.0 * i, (SliceMinute("health", 0.9, 40), SliceMinute("law", 0.3, 25))
        )
        decision = obs.observe(minute)
    assert decision is not None and decision.fire
    assert decision.slice == "law"
    assert decision.evidence["bad_minutes"] == [0.0, 60.0, 120.0]
    assert decision.evidence["threshold"] == pytest.approx(0.5525)


def test_a_minute_seen_twice_is_ignored() -> None:
    obs = Observer(SPEC, FLOOR)
    m = MinuteQuality(0.0, (SliceMinute("law", 0.3, 30),))
    assert not obs.observe(m).fire
    assert not obs.observe(m).fire
    assert not obs.observe(MinuteQuality(60.0, (SliceMinute("law", 0.3, 30),))).fire
    assert obs.observe(MinuteQuality(120.0, (SliceMinute("law", 0.3, 30),))).fire


def test_minute_round_trip_and_validation() -> None:
    m = MinuteQuality.from_dict({"minute_start": 60, "slices": {"law": {"q": 0.5, "n": 3}}})
    assert MinuteQuality.from_dict(m.to_dict()) == m
    with pytest.raises(InvalidInputError):
        MinuteQuality.from_dict({"minute_start": 60, "slices": {"law": {"q": 0.5, "n": -1}}})


def test_sampling_is_deterministic_and_near_the_rate() -> None:
    ids = [f"trace-{i}" for i in range(20_000)]
    chosen = [i for i in ids if sampled(i, 0.05)]
    assert chosen == [i for i in ids if sampled(i, 0.05)]
    assert 0.04 < len(chosen) / len(ids) < 0.06
    assert not any(sampled(i, 0.0) for i in ids[:100])
    with pytest.raises(InvalidInputError):
        sampled("x", 1.5)
