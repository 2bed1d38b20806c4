"""Verdict logic on constructed cases: floor, non-inferiority with Holm, INSUFFICIENT (tiny,
constant, NaN), JUDGE_UNTRUSTED, strictness, scales, ordering, re-application."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from gate_doubles import graded_slice, make_calibration, make_scores
from relgate import stats
from relgate.errors import GateError
from relgate.gate import (
    GateOutcome,
    GatePolicy,
    SliceVerdict,
    decide,
)

POLICY = GatePolicy(n_resamples=300)


def by_slice(result: object) -> dict[str, object]:
    return {r.slice: r for r in result.slices}  # type: ignore[attr-defined]


def test_slice_score_is_spearman_and_q_divides_by_the_ceiling() -> None:
    x, y, items = graded_slice(20)
    result = decide(
        make_scores({"A": (x, None, y, items)}), make_calibration({"A": (0.5, 0.4)}), POLICY
    )
    a = result.slices[0]
    assert a.rho == pytest.approx(stats.spearman(x, y), abs=1e-12)
    assert a.q == pytest.approx(a.rho / 0.5)
    assert a.q_low == pytest.approx(a.rho_low / 0.5) and a.q_low < a.q < a.q_high
    assert (a.n_rows, a.n_items) == (80, 20)
    assert a.verdict == SliceVerdict.PASS and result.outcome == GateOutcome.PASS
    assert math.isnan(a.previous_rho)  # cold start: no comparison


def test_hedging_slice_fails_while_the_aggregate_holds() -> None:
    slices = {}
    for k, name in enumerate(["A", "B", "C", "D", "E", "Law"]):
        x, y, items = graded_slice(25, seed=k)
        new = np.full_like(x, 0.5) + 0.01 * np.random.default_rng(k).normal(size=x.size)
        slices[name] = ((new if name == "Law" else x), x, y, items)
    cal = make_calibration({n: (0.6, 0.5) for n in slices})
    result = decide(make_scores(slices), cal, POLICY)
    assert result.outcome == GateOutcome.FAIL
    assert result.failed_slices == ("Law",)
    law = by_slice(result)["Law"]
    assert result.slices[0].slice == "Law"  # worst first
    assert any("floor" in r for r in law.reasons) and any("not shown" in r for r in law.reasons)
    assert law.change < -0.5
    for name in "ABCDE":  # unchanged slices are non-inferior (Holm-adjusted)
        assert by_slice(result)[name].verdict == SliceVerdict.PASS
        assert by_slice(result)[name].p_adjusted <= 0.05


def test_small_drop_within_margin_passes_and_beyond_fails() -> None:
    x, y, items = graded_slice(60, seed=3, noise=0.2)
    cal = make_calibration({"A": (0.8, 0.7)})
    same = decide(make_scores({"A": (x, x, y, items)}), cal, POLICY)
    assert same.slices[0].verdict == SliceVerdict.PASS
    worse = x.copy()
    worse[y == 1.0] -= 0.3  # good references agree less: rho drops a lot
    dropped = decide(make_scores({"A": (np.clip(worse, 0, 1), x, y, items)}), cal, POLICY)
    a = dropped.slices[0]
    assert a.change < -0.05 and a.verdict == SliceVerdict.FAIL
    loose = POLICY.model_copy(update=dict(non_inferiority_margin=2.0, floor=-1.0))
    assert dropped.reapply(loose).slices[0].verdict == SliceVerdict.PASS


def test_insufficient_tiny_constant_and_nan_slices_are_never_silent_passes() -> None:
    x, y, items = graded_slice(25)
    tiny = graded_slice(5)
    with_nan = x.copy()
    with_nan[0] = np.nan
    scores = make_scores(
        {
            "ok": (x, None, y, items),
            "tiny": (tiny[0], None, tiny[1], tiny[2]),
            "const": (np.full_like(x, 0.5), None, y, items),
            "nan": (with_nan, None, y, items),
        }
    )
    cal = make_calibration({n: (0.6, 0.5) for n in ("ok", "tiny", "const", "nan")})
    result = decide(scores, cal, POLICY)
    verdicts = {r.slice: r.verdict for r in result.slices}
    assert verdicts == {
        "ok": SliceVerdict.PASS,
        "tiny": SliceVerdict.INSUFFICIENT,
        "const": SliceVerdict.INSUFFICIENT,
        "nan": SliceVerdict.INSUFFICIENT,
    }
    assert "20 rows < min_rows 30" in by_slice(result)["tiny"].reasons[0]
    assert result.outcome == GateOutcome.PASS  # not strict: pass, with the slices named
    assert set(result.unvouched) == {"tiny", "const", "nan"}
    strict = result.reapply(POLICY.model_copy(update=dict(strict=True)))
    assert strict.outcome == GateOutcome.INSUFFICIENT and not strict.passed


def test_untrusted_judge_slice_and_all_unvouched_gate() -> None:
    x, y, items = graded_slice(25)
    scores = make_scores({"A": (x, None, y, items), "B": (x, None, y, items)})
    cal = make_calibration({"A": (0.5, 0.4), "B": (0.12, 0.05)})
    result = decide(scores, cal, POLICY)
    b = by_slice(result)["B"]
    assert b.verdict == SliceVerdict.JUDGE_UNTRUSTED
    assert "ceiling CI low 0.050 < min_ceiling 0.1" in b.reasons[0]
    assert result.outcome == GateOutcome.PASS and result.unvouched == ("B",)
    nothing = decide(scores, make_calibration({"A": (0.1, 0.0), "B": (0.1, math.nan)}), POLICY)
    assert nothing.outcome == GateOutcome.INSUFFICIENT  # a gate that vouches for nothing


def test_raw_scale_and_ci_low_floor() -> None:
    x, y, items = graded_slice(30, noise=0.6)
    scores = make_scores({"A": (x, None, y, items)})
    cal = make_calibration({"A": (0.9, 0.8)})
    normalized = decide(scores, cal, POLICY.model_copy(update=dict(floor=0.5)))
    a = normalized.slices[0]
    raw_floor = (a.rho + a.q) / 2  # between rho and q: raw fails, normalized passes
    assert a.rho < raw_floor < a.q
    assert decide(scores, cal, POLICY.model_copy(update=dict(floor=raw_floor))).passed
    raw = decide(scores, cal, POLICY.model_copy(update=dict(floor=raw_floor, scale="raw")))
    assert raw.outcome == GateOutcome.FAIL and "rho" in raw.slices[0].reasons[0]
    ci = decide(
        scores, cal, POLICY.model_copy(update=dict(floor=(a.q + a.q_low) / 2, floor_on="ci_low"))
    )
    assert ci.outcome == GateOutcome.FAIL and "q CI low" in ci.slices[0].reasons[0]


def test_holm_counts_only_tested_slices() -> None:
    slices = {}
    for k, name in enumerate(["A", "B", "C"]):
        x, y, items = graded_slice(25, seed=k)
        slices[name] = (x, x, y, items)
    cal = make_calibration({"A": (0.6, 0.5), "B": (0.6, 0.5), "C": (0.1, 0.0)})
    result = decide(make_scores(slices), cal, POLICY)
    a, b, c = (by_slice(result)[n] for n in "ABC")
    assert math.isnan(c.p_value)  # untrusted slice: no test
    assert a.p_adjusted == pytest.approx(min(1.0, 2 * max(a.p_value, b.p_value)))


def test_mismatched_calibration_is_an_error_not_a_verdict() -> None:
    x, y, items = graded_slice(25)
    scores = make_scores({"A": (x, None, y, items)})
    cal = dataclasses.replace(make_calibration({"A": (0.5, 0.4)}), suite_sha256="f" * 64)
    with pytest.raises(GateError, match="another suite"):
        decide(scores, cal, POLICY)


def test_result_json_is_canonical_and_names_everything() -> None:
    x, y, items = graded_slice(25)
    result = decide(
        make_scores({"A": (x, None, y, items)}), make_calibration({"A": (0.5, 0.4)}), POLICY
    )
    body = result.to_dict()
    assert body["outcome"] == "pass" and body["aggregate"]["decisive"] is False
    assert body["slices"][0]["previous_rho"] is None  # NaN -> null
    assert body["policy"]["floor"] == 0.65 and body["judge_sha256"] == "b" * 64
    assert len(result.sha256) == 64
    assert result.reapply(POLICY).sha256 == result.sha256  # deterministic (seeded)


def test_the_gate_decides_with_the_manifest_policy_itself() -> None:
    from relgate.manifest import GatePolicy as ManifestGatePolicy

    # One definition: the gate's policy is the manifest's (what is hashed is what decides).
    assert GatePolicy is ManifestGatePolicy
    x, y, items = graded_slice(25)
    scores = make_scores({"A": (x, None, y, items)})
    cal = make_calibration({"A": (0.5, 0.4)})
    result = decide(scores, cal, GatePolicy(n_resamples=300, floor=0.7))
    assert result.policy == GatePolicy(n_resamples=300, floor=0.7).model_dump()


def test_too_few_resamples_for_holm_is_an_error_not_a_fail() -> None:
    slices = {}
    for k, name in enumerate("ABCDEF"):
        x, y, items = graded_slice(10, seed=k)
        slices[name] = (x, x, y, items)
    scores = make_scores(slices)
    cal = make_calibration({n: (0.6, 0.5) for n in slices})
    with pytest.raises(GateError, match="use at least 119"):
        decide(scores, cal, GatePolicy(n_resamples=100))
    assert decide(scores, cal, GatePolicy(n_resamples=119)).passed
