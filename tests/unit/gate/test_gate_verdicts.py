"""Verdict logic on constructed cases: FAIL only on evidence (floor or change shown worse, one
Holm family), PASS on evidence of no harm, INSUFFICIENT when an interval straddles (and for tiny,
constant, NaN slices), JUDGE_UNTRUSTED, strictness, scales, ordering, re-application, and the
error rates the rules promise, measured by simulation."""

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
    assert any("shown worse than -0.05" in r for r in law.reasons)
    assert law.change < -0.5 and law.p_adjusted <= 0.05
    # Its q is below the floor too; with 300 resamples and 12 tests in the Holm family that is
    # not yet shown (p >= 1/301 each), which is why the default is 2,000 resamples.
    assert law.q < 0.65 and law.floor_p_value < 0.05
    for name in "ABCDE":  # unchanged slices: shown within the margin, above the floor
        s = by_slice(result)[name]
        assert s.verdict == SliceVerdict.PASS and s.change_low >= -0.05 and not s.reasons


def test_a_drop_fails_only_when_its_interval_is_beyond_the_margin() -> None:
    x, y, items = graded_slice(60, seed=3, noise=0.2)
    cal = make_calibration({"A": (0.8, 0.7)})
    same = decide(make_scores({"A": (x, x, y, items)}), cal, POLICY)
    assert same.slices[0].verdict == SliceVerdict.PASS
    worse = x.copy()
    worse[y == 1.0] -= 0.3  # good references agree less: rho drops a lot
    dropped = decide(make_scores({"A": (np.clip(worse, 0, 1), x, y, items)}), cal, POLICY)
    a = dropped.slices[0]
    assert a.change_high < -0.05 and a.verdict == SliceVerdict.FAIL
    loose = POLICY.model_copy(update=dict(non_inferiority_margin=2.0, floor=-1.0))
    assert dropped.reapply(loose).slices[0].verdict == SliceVerdict.PASS
    # A change whose interval straddles -margin is not evidence either way: INSUFFICIENT.
    x, y, items = graded_slice(15, seed=5, noise=0.3)
    wobble = x + np.random.default_rng(5).normal(0.0, 0.12, x.size)
    mixed = decide(make_scores({"A": (np.clip(wobble, 0, 1), x, y, items)}), cal, POLICY)
    m = mixed.slices[0]
    assert m.change_low < -0.05 < m.change_high, (m.change_low, m.change_high)
    assert m.verdict == SliceVerdict.INSUFFICIENT
    assert any("straddles -0.05: cannot tell" in r for r in m.reasons)
    # Named, never failed; it blocks only under strict (too few items is no evidence of harm).
    assert mixed.outcome == GateOutcome.PASS and mixed.unvouched == ("A",)
    strict = POLICY.model_copy(update=dict(strict=True))
    assert mixed.reapply(strict).outcome == GateOutcome.INSUFFICIENT


def test_an_interval_below_the_margin_not_shown_after_holm_says_so() -> None:
    """One slice of ten degraded: its change's own 95% interval lies below -margin (one-sided p
    about 0.02), but Holm over the run's 20 tests does not show it. INSUFFICIENT, and the
    reason says exactly that, never "straddles"."""
    slices = {}
    for k, name in enumerate("ABCDEFGHIJ"):
        x, y, items = graded_slice(25, seed=k, noise=0.2)
        new = x + np.random.default_rng(7).normal(0, 0.2, x.size) if name == "A" else x
        slices[name] = (np.clip(new, 0, 1), x, y, items)
    cal = make_calibration({n: (0.8, 0.7) for n in slices})
    result = decide(make_scores(slices), cal, GatePolicy(floor=-1.0))
    a = by_slice(result)["A"]
    assert a.change_high < -0.05 and a.p_adjusted > 0.05  # type: ignore[attr-defined]
    assert a.verdict == SliceVerdict.INSUFFICIENT  # type: ignore[attr-defined]
    (reason,) = a.reasons  # type: ignore[attr-defined]
    assert "below -0.05, but Holm p" in reason and "straddles" not in reason


def test_a_tiny_slice_without_evidence_is_insufficient_not_fail() -> None:
    # Six items, answers unchanged: the old rule failed it for want of power ("change +0.000
    # not shown >= -0.05"); it is INSUFFICIENT now, and named.
    x, y, items = graded_slice(8, seed=4, noise=0.5)
    cal = make_calibration({"S": (0.6, 0.5)})
    result = decide(
        make_scores({"S": (x, x, y, items)}), cal, POLICY.model_copy(update=dict(min_rows=8))
    )
    s = result.slices[0]
    assert s.change == 0.0 and s.verdict != SliceVerdict.FAIL
    assert result.outcome == GateOutcome.PASS or result.outcome == GateOutcome.INSUFFICIENT


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
    # The judge untrusted on every slice: nothing was measured, so nothing passes (the same
    # for too few rows everywhere: the CLI's what-if test covers that).
    assert {s.verdict for s in nothing.slices} == {SliceVerdict.JUDGE_UNTRUSTED}
    assert nothing.outcome == GateOutcome.INSUFFICIENT


def test_raw_scale_and_the_floor_rules() -> None:
    x, y, items = graded_slice(30, noise=0.6)
    scores = make_scores({"A": (x, None, y, items)})
    cal = make_calibration({"A": (0.9, 0.8)})
    normalized = decide(scores, cal, POLICY.model_copy(update=dict(floor=0.5)))
    a = normalized.slices[0]
    # A floor far above the whole interval is shown breached: FAIL, on either scale.
    above_raw = a.rho_high + 0.05
    raw = decide(scores, cal, POLICY.model_copy(update=dict(floor=above_raw, scale="raw")))
    assert raw.outcome == GateOutcome.FAIL and "rho" in raw.slices[0].reasons[0]
    assert "shown below floor" in raw.slices[0].reasons[0]
    above_q = a.q_high + 0.05
    assert decide(scores, cal, POLICY.model_copy(update=dict(floor=above_q))).outcome == "fail"
    # Between rho and q: raw is below its floor, normalized is not; neither is shown below.
    between = (a.rho + a.q) / 2
    assert a.rho < between < a.q
    assert decide(scores, cal, POLICY.model_copy(update=dict(floor=between))).passed
    raw_between = decide(scores, cal, POLICY.model_copy(update=dict(floor=between, scale="raw")))
    r = raw_between.slices[0]
    assert r.rho_low < between < r.rho_high
    assert r.verdict == SliceVerdict.INSUFFICIENT and "cannot tell" in r.reasons[0]
    # floor_on ci_low asks more of a PASS: the whole interval above the floor.
    inside = (a.q + a.q_low) / 2
    point = decide(scores, cal, POLICY.model_copy(update=dict(floor=inside)))
    assert point.slices[0].verdict == SliceVerdict.PASS
    ci = decide(scores, cal, POLICY.model_copy(update=dict(floor=inside, floor_on="ci_low")))
    assert ci.slices[0].verdict == SliceVerdict.INSUFFICIENT
    assert "q CI low" in ci.slices[0].reasons[0]


def test_holm_adjusts_every_fail_test_of_the_run_and_skips_untested_slices() -> None:
    slices = {}
    for k, name in enumerate(["A", "B", "C"]):
        x, y, items = graded_slice(25, seed=k)
        slices[name] = (x, x, y, items)
    cal = make_calibration({"A": (0.6, 0.5), "B": (0.6, 0.5), "C": (0.1, 0.0)})
    result = decide(make_scores(slices), cal, POLICY)
    a, b, c = (by_slice(result)[n] for n in "ABC")
    assert math.isnan(c.p_value) and math.isnan(c.floor_p_value)  # untrusted slice: no test
    family = [a.p_value, b.p_value, a.floor_p_value, b.floor_p_value]
    assert all(math.isfinite(p) for p in family)
    expected = stats.holm(np.array(family))
    assert [a.p_adjusted, b.p_adjusted, a.floor_p_adjusted, b.floor_p_adjusted] == pytest.approx(
        list(expected)
    )


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
    # 6 compared slices: 12 FAIL tests (floor and change) in one Holm family.
    with pytest.raises(GateError, match="use at least 239"):
        decide(scores, cal, GatePolicy(n_resamples=100))
    assert decide(scores, cal, GatePolicy(n_resamples=239)).outcome != GateOutcome.FAIL


def test_false_fail_rate_of_identical_releases_is_at_most_alpha() -> None:
    """The family-wise error the docs promise, by simulation: a candidate whose answers are a
    fresh draw of the same process as the previous release's (an A/A release: no slice is worse)
    is failed in at most alpha of the gates, up to the simulation's own noise."""
    runs, failed, fails_by_slice = 120, 0, 0
    for run in range(runs):
        slices = {}
        for k, name in enumerate(["A", "B", "C", "D"]):
            rng = np.random.default_rng(10_000 * run + k)
            n_items = 20
            y = np.tile(np.array([1.0, 1.0, 0.0, 0.0]), n_items)
            items = [f"i{j}" for j in range(n_items) for _ in range(4)]
            # Item effects shared by both draws (the same question), answer noise per draw.
            item = np.repeat(rng.normal(0.0, 0.1, n_items), 4)
            old = np.clip(0.25 + 0.3 * y + item + rng.normal(0.0, 0.15, y.size), 0, 1)
            new = np.clip(0.25 + 0.3 * y + item + rng.normal(0.0, 0.15, y.size), 0, 1)
            slices[name] = (new, old, y, items)
        cal = make_calibration({n: (0.6, 0.5) for n in slices})
        policy = GatePolicy(n_resamples=400, floor=0.2, seed=run)
        result = decide(make_scores(slices), cal, policy)
        failed += result.outcome == GateOutcome.FAIL
        fails_by_slice += len(result.failed_slices)
    # alpha = 0.05 bounds the family-wise rate; 120 runs put a 99% binomial bound near 0.11.
    assert failed / runs <= 0.11, (failed, fails_by_slice)


def test_a_real_regression_is_found_at_least_as_often_as_the_old_rule_found_it() -> None:
    """Power on a regression the gate exists for (one slice hedging): found every time."""
    for run in range(20):
        slices = {}
        for k, name in enumerate(["A", "B", "C", "Law"]):
            x, y, items = graded_slice(25, seed=100 * run + k)
            noise = 0.01 * np.random.default_rng(run).normal(size=x.size)
            new = np.full_like(x, 0.5) + noise if name == "Law" else x
            slices[name] = (new, x, y, items)
        cal = make_calibration({n: (0.6, 0.5) for n in slices})
        result = decide(make_scores(slices), cal, GatePolicy(n_resamples=400, seed=run))
        assert result.failed_slices == ("Law",), run
