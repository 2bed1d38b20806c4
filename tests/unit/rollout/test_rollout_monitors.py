"""Monitors: 1.3x p95 fails, tiny 5xx counts and judge errors are INCONCLUSIVE, never PASS."""

from __future__ import annotations

import math

import pytest
from relgate.canonical import canonical_json
from relgate.rollout import (
    MonitorThresholds,
    QualityReading,
    SliceQuality,
    Verdict,
    evaluate_errors,
    evaluate_latency,
    evaluate_quality,
)
from rollout_builders import errors, latency, quality

T = MonitorThresholds()


@pytest.mark.parametrize(
    ("ratio", "verdict"),
    [(1.0, Verdict.PASS), (1.19, Verdict.PASS), (1.3, Verdict.FAIL), (2.0, Verdict.FAIL)],
)
def test_latency_ratio(ratio: float, verdict: Verdict) -> None:
    v = evaluate_latency(latency(ratio), T)
    assert v.verdict is verdict
    assert v.evidence["ratio"] == pytest.approx(ratio)
    assert v.evidence["threshold_ratio"] == 1.2


def test_latency_thin_or_missing_is_inconclusive_even_when_terrible() -> None:
    assert evaluate_latency(latency(3.0, n=20), T).verdict is Verdict.INCONCLUSIVE
    assert evaluate_latency(latency(1.0, stable_n=5), T).verdict is Verdict.INCONCLUSIVE
    assert evaluate_latency(None, T).verdict is Verdict.INCONCLUSIVE


def test_errors_clean_candidate_passes() -> None:
    assert evaluate_errors(errors(cand_5xx=0), T).verdict is Verdict.PASS
    # 1.4x the stable rate is within 1.5x.
    assert evaluate_errors(errors(cand_5xx=14, stable_5xx=190), T).verdict is Verdict.PASS


def test_tiny_5xx_counts_are_inconclusive() -> None:
    # 3 errors in 1,000 vs 0.1% stable: 3x the rate, but 3 events prove nothing.
    v = evaluate_errors(errors(cand_5xx=3, stable_5xx=19), T)
    assert v.verdict is Verdict.INCONCLUSIVE
    assert v.evidence["min_events"] == 10
    # Too few requests in an arm: inconclusive whatever the counts say.
    assert evaluate_errors(errors(cand_5xx=50, n=100), T).verdict is Verdict.INCONCLUSIVE
    assert evaluate_errors(errors(stable_n=50, stable_5xx=0), T).verdict is Verdict.INCONCLUSIVE


def test_enough_5xx_events_above_ratio_fail() -> None:
    v = evaluate_errors(errors(cand_5xx=30, stable_5xx=19), T)  # 3% vs 0.1%
    assert v.verdict is Verdict.FAIL
    assert v.evidence["candidate_rate"] == pytest.approx(0.03)


def test_zero_stable_errors_use_the_rate_floor() -> None:
    # 1 error in 1,000 against a stable arm with none: within 1.5 x the 0.1% floor.
    assert evaluate_errors(errors(cand_5xx=1, stable_5xx=0), T).verdict is Verdict.PASS


def test_quality_passes_when_every_slice_holds() -> None:
    v = evaluate_quality(quality(), T)
    assert v.verdict is Verdict.PASS
    assert [s["slice"] for s in v.evidence["slices"]] == ["law", "health"]  # worst first


def test_quality_one_slice_regression_fails_and_leads_the_evidence() -> None:
    v = evaluate_quality(quality(health=0.95, law=0.1, math=0.9), T)
    assert v.verdict is Verdict.FAIL
    assert "law" in v.reason
    assert v.evidence["slices"][0]["slice"] == "law"
    assert v.evidence["slices"][0]["q"] == pytest.approx(0.1)


def test_judge_outage_is_inconclusive() -> None:
    v = evaluate_quality(QualityReading(judge_error="JudgeUnavailableError: timeout"), T)
    assert v.verdict is Verdict.INCONCLUSIVE
    assert "timeout" in v.evidence["judge_error"]


@pytest.mark.parametrize(
    "slice_",
    [
        SliceQuality("law", 5, 0.4, 0.4),  # too few traces
        SliceQuality("law", 50, 0.01, 0.05),  # ceiling below min_ceiling: judge untrusted
        SliceQuality("law", 50, math.nan, 0.4),  # constant scores
    ],
)
def test_thin_or_undefined_slices_are_inconclusive(slice_: SliceQuality) -> None:
    reading = QualityReading(slices=(slice_, SliceQuality("health", 50, 0.4, 0.4)))
    assert evaluate_quality(reading, T).verdict is Verdict.INCONCLUSIVE


def test_a_proven_failure_beats_a_thin_slice() -> None:
    reading = QualityReading(
        slices=(SliceQuality("law", 50, 0.04, 0.4), SliceQuality("tax", 3, 0.4, 0.4))
    )
    assert evaluate_quality(reading, T).verdict is Verdict.FAIL


def test_no_reading_or_no_slices_is_inconclusive() -> None:
    assert evaluate_quality(None, T).verdict is Verdict.INCONCLUSIVE
    assert evaluate_quality(QualityReading(), T).verdict is Verdict.INCONCLUSIVE


def test_raw_scale_compares_rho() -> None:
    raw = MonitorThresholds(quality_scale="raw", quality_floor=0.3)
    # q = 0.9 but rho = 0.18 < 0.3 on the raw scale.
    reading = QualityReading(slices=(SliceQuality("law", 50, 0.18, 0.2),))
    assert evaluate_quality(reading, T).verdict is Verdict.PASS
    assert evaluate_quality(reading, raw).verdict is Verdict.FAIL


def test_evidence_is_canonical_json() -> None:
    nan_slice = QualityReading(slices=(SliceQuality("law", 50, math.nan, 0.4),))
    for v in (
        evaluate_latency(latency(1.3), T),
        evaluate_errors(errors(cand_5xx=0, n=0, stable_5xx=0, stable_n=0), T),
        evaluate_quality(nan_slice, T),
    ):
        canonical_json(v.to_dict())  # raises on NaN / infinity
