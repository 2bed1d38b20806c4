"""RolloutSpec: the design's defaults (docs/design.md §4, §5), per-release overrides, and
validation that names the field."""

from __future__ import annotations

import pytest
from relgate.errors import InvalidInputError
from relgate.rollout import RolloutSpec


def test_defaults_follow_design() -> None:
    spec = RolloutSpec()
    assert [s.weight_bp for s in spec.steps] == [500, 2_500, 10_000]
    assert [(s.dwell_s, s.min_requests) for s in spec.steps[:2]] == [(240, 1_000), (900, 10_000)]
    assert not spec.steps[-1].has_hold
    assert all(s.deadline_s is not None and s.deadline_s > s.dwell_s for s in spec.steps[:2])
    t = spec.thresholds
    assert (t.p95_ratio, t.error_ratio, t.quality_floor, t.replay_cap) == (1.2, 1.5, 0.65, 50)
    o = spec.observer
    assert (o.rollback_fraction, o.consecutive_minutes, o.sample_rate) == (0.85, 3, 0.05)
    assert o.threshold(0.65) == pytest.approx(0.5525)
    assert spec.shadow_s == 24 * 3600


def test_overrides_change_only_what_they_name_and_round_trip() -> None:
    spec = RolloutSpec().with_overrides(
        {"thresholds": {"p95_ratio": 1.1, "quality_floor": 0.7}, "observer": {"n_min": 5}}
    )
    assert spec.thresholds.p95_ratio == 1.1
    assert spec.thresholds.quality_floor == 0.7
    assert spec.thresholds.error_ratio == 1.5
    assert spec.observer.n_min == 5
    assert RolloutSpec.from_dict(spec.to_dict()) == spec


def test_steps_override_is_a_full_list() -> None:
    spec = RolloutSpec().with_overrides(
        {"steps": [{"weight_bp": 1000, "dwell_s": 60, "min_requests": 10, "deadline_s": 120},
                   {"weight_bp": 10000}]}
    )  # fmt: skip
    assert [s.weight_bp for s in spec.steps] == [1_000, 10_000]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"thresholds": {"p95_ratoi": 1.1}}, "p95_ratoi"),
        ({"bogus": 1}, "bogus"),
        ({"steps": [{"weight_bp": 500}]}, "10000"),
        ({"steps": [{"weight_bp": 5000}, {"weight_bp": 500}, {"weight_bp": 10000}]}, "increase"),
        ({"steps": [{"weight_bp": 500, "dwell_s": 60}, {"weight_bp": 10000}]}, "deadline"),
        ({"steps": [{"weight_bp": 500, "dwell_s": 60, "deadline_s": 30}, {"weight_bp": 10000}]},
         "deadline_s must exceed"),
        ({"thresholds": {"min_error_events": 2.5}}, "integer"),
        ({"thresholds": {"quality_scale": "log"}}, "quality_scale"),
        ({"observer": {"sample_rate": 0}}, "sample_rate"),
        ({"shadow_s": "a day"}, "shadow_s"),
    ],
)  # fmt: skip
def test_bad_overrides_are_named(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        RolloutSpec().with_overrides(overrides)


def test_quality_thresholds_come_from_the_gate_policy() -> None:
    from relgate.manifest import GatePolicy

    policy = GatePolicy(floor=0.7, scale="raw", min_ceiling=0.2)
    spec = RolloutSpec().with_gate_policy(policy)
    t = spec.thresholds
    assert (t.quality_floor, t.quality_scale, t.min_ceiling) == (0.7, "raw", 0.2)
    assert spec.observer.threshold(t.quality_floor) == pytest.approx(0.595)
