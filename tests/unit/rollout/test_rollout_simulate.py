"""`relgate roll simulate`: example timelines through the real controller give the expected
receipts; malformed timelines are named errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from relgate.errors import InvalidInputError, InvalidTransitionError
from relgate.rollout import Phase, load_timeline, simulate
from relgate.rollout.simulate import parse_timeline

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "timelines"

EXPECTED = {
    "healthy.yaml": (["checkpoint_promote", "checkpoint_promote"], Phase.OBSERVING),
    "quality-regression-5pct.yaml": (["auto_rollback"], Phase.ROLLED_BACK),
    "latency-regression.yaml": (["checkpoint_promote", "auto_rollback"], Phase.ROLLED_BACK),
    "starved-hold.yaml": (["checkpoint_inconclusive", "manual_rollback"], Phase.ABORTED),
    "abort-during-promote.yaml": (["manual_rollback"], Phase.ABORTED),
    "observer-rollback.yaml": (["checkpoint_promote", "auto_rollback"], Phase.ROLLED_BACK),
}


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_timeline_receipts(name: str) -> None:
    kinds, phase = EXPECTED[name]
    result = simulate(load_timeline(EXAMPLES / name))
    assert result.kinds == kinds
    assert result.final_phase is phase
    assert result.matches_expectation is True


def test_quality_regression_is_caught_at_5pct_on_law() -> None:
    result = simulate(load_timeline(EXAMPLES / "quality-regression-5pct.yaml"))
    (receipt,) = result.receipts
    assert receipt.at == 180
    assert receipt.evidence["weight_bp"] == 500
    quality = next(m for m in receipt.evidence["monitors"] if m["monitor"] == "quality")
    assert quality["slices"][0]["slice"] == "law"
    assert ("swap_to", "v1") in [(c, a) for _, c, a in result.routing]


def test_starved_hold_pauses_at_its_deadline() -> None:
    result = simulate(load_timeline(EXAMPLES / "starved-hold.yaml"))
    assert result.receipts[0].at == 1_800
    assert "starved" in result.receipts[0].evidence["reason"]


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"events": []}, "non-empty"),
        ({"events": [{"at": 10}, {"at": 5}]}, "time order"),
        ({"events": [{"at": 1, "command": "explode"}]}, "command"),
        ({"events": [{"at": 1, "latency": {"candidate_p95_s": 1}}]}, "stable_p95_s"),
        ({"events": [{"at": 1, "extra": 1}]}, "extra"),
        ({"events": [{"at": 1}], "spec": {"thresholds": {"nope": 1}}}, "nope"),
        ({"events": [{"at": 9}], "until": 5}, "until"),
    ],
)
def test_bad_timelines_are_named(doc: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        parse_timeline(doc)


def test_resume_without_pause_is_an_invalid_transition() -> None:
    doc = {"events": [{"at": 10, "requests": 300}, {"at": 20, "command": "resume"}]}
    with pytest.raises(InvalidTransitionError, match="not paused"):
        simulate(parse_timeline(doc))


def test_simulation_stops_at_a_terminal_phase() -> None:
    slow = {
        "candidate_p95_s": 0.6,
        "stable_p95_s": 0.4,
        "candidate_count": 300,
        "stable_count": 900,
    }
    doc = {"events": [{"at": 10, "latency": slow}, {"at": 20, "command": "promote"}], "until": 99}
    result = simulate(parse_timeline(doc))
    assert result.kinds == ["auto_rollback"]
    assert result.ended_at == 10
