"""Calibration (the ceiling) and running the gate end to end with a test-double judge."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from relgate.answers import Answers
from relgate.errors import GateError, IntegrityError, InvalidInputError
from relgate.gate import Calibration, GatePolicy, calibrate, run_gate
from relgate.gate.calibration import good_answers
from relgate.judge import ScoreCache
from relgate.suite import Suite
from relgate.testing.judges import WordOverlapJudge as _Overlap


def WordOverlapJudge() -> _Overlap:
    return _Overlap("9" * 64)


def toy_suite(n_items: int = 12) -> Suite:
    rows = []
    for k in range(n_items):
        for slice_name in ("Law", "Health"):
            item = f"{slice_name}-{k}"
            fact = f"{slice_name.lower()} fact number {k} is true"
            refs = [
                (fact, 1.0),
                (f"{fact} indeed", 1.0),
                (f"{slice_name.lower()} fact number {k} is false", 0.0),
                ("i cannot help with that request", 0.0),
            ]
            for ref, grade in refs:
                rows.append(
                    {"item_id": item, "slice": slice_name, "prompt": f"q{k}?", "reference": ref,
                     "human_grade": grade}
                )  # fmt: skip
    return Suite.from_frame(pl.DataFrame(rows))


def test_leave_one_out_picks_the_longest_top_graded_reference() -> None:
    suite = toy_suite(2)
    answers, keep = good_answers(suite)
    assert answers["Law-0"] == "law fact number 0 is true indeed"
    dropped = suite.frame.filter(~pl.Series(keep))
    assert set(dropped["reference"]) == set(answers.values())
    assert keep.sum() == suite.n_rows - len(answers)


def test_calibration_measures_and_round_trips(tmp_path: Path) -> None:
    suite = toy_suite()
    judge = WordOverlapJudge()
    cal = calibrate(suite, judge, n_resamples=200)
    assert [s.slice for s in cal.slices] == ["Health", "Law"]
    for s in cal.slices:
        assert s.n_rows == 36 and s.n_items == 12
        assert 0.5 < s.rho <= 1.0 and s.rho_low <= s.rho <= s.rho_high
        assert 0.0 < s.kendall_tau_b <= s.rho
        assert s.kendall_low <= s.kendall_tau_b <= s.kendall_high
    assert cal.suite_sha256 == suite.sha256 and cal.judge_sha256 == judge.judge_sha256
    path = cal.write(tmp_path / "cal.json")
    assert Calibration.read(path) == cal
    body = json.loads(path.read_text())
    body["slices"][0]["rho"] = 0.99
    path.write_text(json.dumps(body))
    with pytest.raises(InvalidInputError, match="does not match its sha256"):
        Calibration.read(path)


def test_given_good_answers_leave_out_identical_references() -> None:
    suite = toy_suite()
    good = {
        i: f"{i.split('-')[0].lower()} fact number {i.split('-')[1]} is true"
        for i in suite.item_ids
    }
    cal = calibrate(suite, WordOverlapJudge(), answers=good, n_resamples=100)
    assert all(s.n_rows == 36 for s in cal.slices)  # the identical reference is left out
    with pytest.raises(GateError, match="no good answer"):
        calibrate(suite, WordOverlapJudge(), answers={}, n_resamples=100)


def test_gate_reapplies_policy_without_calling_the_judge() -> None:
    suite = toy_suite()
    good = {
        i: f"{i.split('-')[0].lower()} fact number {i.split('-')[1]} is true"
        for i in suite.item_ids
    }
    hedged = {i: ("i cannot help with that" if i.startswith("Law") else a) for i, a in good.items()}
    judge, cache = WordOverlapJudge(), ScoreCache()
    policy = GatePolicy(n_resamples=200, min_rows=10)
    v1 = run_gate(suite, judge, Answers(good), policy=policy, cache=cache)
    assert v1.passed and all(r.q == pytest.approx(r.rho / r.ceiling) for r in v1.slices)
    v2 = run_gate(
        suite,
        judge,
        Answers(hedged),
        Answers(good),
        calibration=v1.calibration,
        policy=policy,
        cache=cache,
    )
    assert v2.failed_slices == ("Law",)
    calls = judge.pairs_scored
    relaxed = v2.reapply(
        GatePolicy(n_resamples=200, min_rows=10, floor=-1.0, non_inferiority_margin=2.0)
    )
    assert relaxed.passed and judge.pairs_scored == calls
    assert v2.scores.rows.height == suite.n_rows
    with pytest.raises(InvalidInputError, match="no answer for 12 suite item"):
        run_gate(
            suite, judge, Answers({i: a for i, a in good.items() if "Law" not in i}), policy=policy
        )
    with pytest.raises(IntegrityError, match="not the release's dataset sha256") as err:
        run_gate(suite, judge, Answers(good), policy=policy, expected_suite_sha256="0" * 64)
    assert (err.value.expected, err.value.actual) == ("0" * 64, suite.sha256)
    assert run_gate(
        suite, judge, Answers(good), policy=policy, expected_suite_sha256=suite.sha256, cache=cache
    ).passed
    with pytest.raises(GateError, match="does not belong"):
        other = toy_suite(11)
        run_gate(other, judge, Answers(good), calibration=v1.calibration, policy=policy)
