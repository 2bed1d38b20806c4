"""Trace replay: the gate's statistic on production traces, judge failures INCONCLUSIVE."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from relgate.rollout import (
    MonitorThresholds,
    ReplayTrace,
    Verdict,
    evaluate_quality,
    replay_quality,
    replayable,
    select_recent,
)
from scipy import stats as sps

HEDGES = [
    "it depends, please consult a professional",
    "i cannot answer that question",
    "there is no single answer, it depends",
]
TOPICS = {
    "law": ["contract", "tort", "statute", "appeal", "verdict", "custody", "patent", "lease"],
    "health": ["insulin", "fever", "vaccine", "allergy", "fracture", "migraine", "asthma", "sleep"],
}


def jaccard(answers: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """A deterministic stand-in judge: word overlap in [0, 1]."""
    out = []
    for a, r in zip(answers, references, strict=True):
        wa, wr = set(a.split()), set(r.split())
        out.append(len(wa & wr) / len(wa | wr) if wa | wr else 0.0)
    return np.asarray(out)


def scipy_spearman(x: np.ndarray, y: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = []
    for lo, hi in itertools.pairwise(offsets):
        xs, ys = x[lo:hi], y[lo:hi]
        if np.all(xs == xs[0]) or np.all(ys == ys[0]):
            out.append(np.nan)
        else:
            out.append(sps.spearmanr(xs, ys).statistic)
    return np.asarray(out, dtype=np.float64)


def traces(n: int = 30) -> list[ReplayTrace]:
    rows = []
    for slice_, words in TOPICS.items():
        for i in range(n):
            w = words[i % len(words)]
            answer = f"the {w} rule number {i} applies here because of {w} precedent {i * 7}"
            rows.append(ReplayTrace(f"{slice_}-{i}", slice_, f"q {w} {i}", answer, float(i)))
    return rows


def candidate(rows: list[ReplayTrace], hedge_on: str | None = None) -> dict[str, str]:
    out = {}
    for t in rows:
        if t.slice == hedge_on:
            out[t.trace_id] = HEDGES[int(t.trace_id.split("-")[1]) % 3] + " in general"
        else:
            out[t.trace_id] = t.stable_answer.replace("applies here", "holds here")
    return out


def run(rows: list[ReplayTrace], answers: dict[str, str], score: Any = jaccard, **kw: Any) -> Any:
    return replay_quality(
        select_recent(rows, 50),
        answers,
        {s: HEDGES for s in TOPICS},
        score,
        judge_sha256="judge",
        spearman=scipy_spearman,
        **kw,
    )


def test_healthy_candidate_scores_near_the_ceiling() -> None:
    rows = traces()
    reading = run(rows, candidate(rows))
    by = {s.slice: s for s in reading.slices}
    assert set(by) == {"health", "law"}
    for s in by.values():
        assert s.n == 30
        assert s.ceiling > 0.5
        assert s.q > 0.9
    assert evaluate_quality(reading, MonitorThresholds()).verdict is Verdict.PASS
    assert reading.sample_sha256 is not None and len(reading.sample_sha256) == 64


def test_hedging_on_one_slice_fails_only_that_slice() -> None:
    rows = traces()
    reading = run(rows, candidate(rows, hedge_on="law"))
    by = {s.slice: s for s in reading.slices}
    assert by["law"].q < 0
    assert by["health"].q > 0.9
    verdict = evaluate_quality(reading, MonitorThresholds())
    assert verdict.verdict is Verdict.FAIL
    assert verdict.evidence["slices"][0]["slice"] == "law"


def test_judge_exception_is_inconclusive_not_success() -> None:
    def down(_a: Sequence[str], _r: Sequence[str]) -> np.ndarray:
        raise TimeoutError("judge endpoint timed out")

    rows = traces()
    reading = run(rows, candidate(rows), score=down)
    assert reading.judge_error == "TimeoutError: judge endpoint timed out"
    assert reading.slices == ()
    assert evaluate_quality(reading, MonitorThresholds()).verdict is Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (lambda a, r: np.zeros(3), "JudgeError: judge returned 3 scores for"),
        (lambda a, r: np.full(len(a), np.nan), "JudgeError: judge returned non-finite scores"),
    ],
    ids=["wrong-shape", "nan"],
)
def test_malformed_judge_output_is_a_judge_error(bad: Any, named: str) -> None:
    rows = traces(5)
    reading = run(rows, candidate(rows), score=bad)
    assert reading.judge_error is not None and reading.judge_error.startswith(named)
    assert evaluate_quality(reading, MonitorThresholds()).verdict is Verdict.INCONCLUSIVE


def test_a_bug_outside_the_judge_is_not_swallowed() -> None:
    def buggy(_a: Sequence[str], _r: Sequence[str]) -> np.ndarray:
        raise KeyError("a programming error, not a judge failure")

    rows = traces(5)
    with pytest.raises(KeyError):
        run(rows, candidate(rows), score=buggy)


def test_cap_most_recent_first_and_missing_answers_dropped() -> None:
    rows = traces(80)
    chosen = select_recent(rows, 50)
    assert [len(v) for v in chosen.values()] == [50, 50]
    assert min(t.time for t in chosen["law"]) == 30.0  # the 50 newest of 0..79
    answers = candidate(rows)
    del answers["law-79"]
    reading = run(rows, answers)
    assert {s.slice: s.n for s in reading.slices} == {"health": 50, "law": 49}


def test_references_are_stable_answer_plus_anchors_with_feedback_grades() -> None:
    seen: list[tuple[list[str], list[str]]] = []

    def spy(answers: Sequence[str], refs: Sequence[str]) -> np.ndarray:
        seen.append((list(answers), list(refs)))
        return jaccard(answers, refs)

    rows = [
        ReplayTrace("a", "law", "p", "stable answer a", 1.0),
        ReplayTrace("b", "law", "p", "stable answer b", 2.0, feedback_grade=0.0),
        ReplayTrace("c", "law", "p", "stable answer c", 3.0),
    ]
    grades: list[np.ndarray] = []

    def capture(x: np.ndarray, y: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        grades.append(y.copy())
        return scipy_spearman(x, y, offsets)

    replay_quality({"law": rows}, {t.trace_id: "cand" for t in rows}, {"law": ["hedge"]}, spy,
                   spearman=capture)  # fmt: skip
    answers, refs = seen[0]
    assert refs[:6] == ["stable answer a", "hedge", "stable answer b", "hedge",
                        "stable answer c", "hedge"]  # fmt: skip
    assert answers[:6] == ["cand"] * 6  # candidate first, then the stable arm
    assert (
        answers[6:] == ["stable answer a"] * 2 + ["stable answer b"] * 2 + ["stable answer c"] * 2
    )
    assert grades[0].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # b's feedback grade is 0


def test_slice_without_anchors_is_undefined_hence_inconclusive() -> None:
    rows = [r for r in traces() if r.slice == "law"]
    reading = replay_quality(select_recent(rows, 50), candidate(rows), {}, jaccard,
                             spearman=scipy_spearman)  # fmt: skip
    assert np.isnan(reading.slices[0].rho)
    assert evaluate_quality(reading, MonitorThresholds()).verdict is Verdict.INCONCLUSIVE


def test_native_spearman_agrees_with_scipy() -> None:

    rows = traces()
    native = replay_quality(select_recent(rows, 50), candidate(rows, "law"),
                            {s: HEDGES for s in TOPICS}, jaccard)  # fmt: skip
    reference = run(rows, candidate(rows, "law"))
    for a, b in zip(native.slices, reference.slices, strict=True):
        assert a.rho == pytest.approx(b.rho, abs=1e-12)
        assert a.ceiling == pytest.approx(b.ceiling, abs=1e-12)


def test_replayable_keeps_stable_2xx_live_traces_only() -> None:
    from relgate.traces import Trace

    def trace(i: int, **kw: Any) -> Trace:
        base: dict[str, Any] = dict(
            id=f"t{i}", time=float(i), slice="law", traffic_class="legal", prompt="p",
            answer="a", latency_s=0.1, status=200, release_sha256="s" * 64, session_bucket=1,
        )  # fmt: skip
        base.update(kw)
        return Trace(**base)

    rows = [
        trace(0, feedback_grade=0.5),
        trace(1, release_sha256="c" * 64),  # served by the candidate
        trace(2, status=503),
        trace(3, shadow=True),
        trace(4, answer=""),
    ]
    (only,) = replayable(rows, "s" * 64)
    assert (only.trace_id, only.stable_answer, only.feedback_grade) == ("t0", "a", 0.5)
