"""Running the gate: answers -> judge scores (cached) -> calibration -> verdicts."""

from __future__ import annotations

import polars as pl

from relgate.answers import Answers
from relgate.canonical import text_sha256
from relgate.errors import GateError, IntegrityError
from relgate.gate.calibration import Calibration, calibrate
from relgate.gate.result import GateResult, decide
from relgate.gate.verdict import GateScores
from relgate.judge.base import Judge
from relgate.judge.cache import RowProgress, ScoreCache, score_rows
from relgate.manifest import GatePolicy
from relgate.suite import Suite

__all__ = ["run_gate", "score_release"]


def score_release(
    suite: Suite,
    judge: Judge,
    candidate: Answers,
    previous: Answers | None = None,
    *,
    cache: ScoreCache | None = None,
    progress: RowProgress | None = None,
) -> GateScores:
    """Judge every suite row against the candidate's (and the previous release's) answer;
    ``progress`` sees rows done of both (``score_rows``, chunk by chunk)."""
    items = suite.frame["item_id"].to_list()
    refs = suite.frame["reference"].to_list()
    candidate.require(suite.item_ids)
    if previous is not None:
        previous.require(suite.item_ids)
    total = len(items) * (2 if previous is not None else 1)

    def part(offset: int) -> RowProgress | None:
        if progress is None:
            return None
        report = progress
        return lambda done, _: report(offset + done, total)

    x_new = score_rows(judge, items, [candidate[i] for i in items], refs, cache, progress=part(0))
    x_old = None
    if previous is not None:
        x_old = score_rows(
            judge, items, [previous[i] for i in items], refs, cache, progress=part(len(items))
        )
    rows = pl.DataFrame(
        {
            "item_id": items,
            "slice": suite.frame["slice"],
            "reference_sha256": [text_sha256(r) for r in refs],
            "human_grade": suite.frame["human_grade"],
            "x_candidate": x_new,
            "x_previous": pl.Series("x_previous", x_old, dtype=pl.Float64)
            if x_old is not None
            else pl.Series("x_previous", [None] * len(items), dtype=pl.Float64),
        }
    )
    return GateScores(
        rows=rows,
        suite_sha256=suite.sha256,
        judge_sha256=judge.judge_sha256,
        candidate_sha256=candidate.sha256,
        previous_sha256=previous.sha256 if previous is not None else None,
    )


def run_gate(
    suite: Suite,
    judge: Judge,
    candidate: Answers,
    previous: Answers | None = None,
    *,
    calibration: Calibration | None = None,
    policy: GatePolicy | None = None,
    cache: ScoreCache | None = None,
    expected_suite_sha256: str | None = None,
) -> GateResult:
    """Gate ``candidate`` on ``suite`` (against ``previous`` when given) and return the result.

    Without ``calibration`` the judge is calibrated on the suite first (leave-one-out; see
    ``relgate.gate.calibration``) with the policy's bootstrap settings.
    ``expected_suite_sha256`` (the manifest's ``dataset.sha256``) must match the suite's own
    sha256, or an ``IntegrityError`` is raised before any judge call.
    """
    if expected_suite_sha256 is not None and expected_suite_sha256 != suite.sha256:
        raise IntegrityError(
            f"suite sha256 {suite.sha256} is not the release's dataset sha256 "
            f"{expected_suite_sha256}",
            path=suite.source,
            rule="suite-sha256",
            expected=expected_suite_sha256,
            actual=suite.sha256,
        )
    policy = policy if policy is not None else GatePolicy()
    if calibration is None:
        calibration = calibrate(
            suite,
            judge,
            cache=cache,
            n_resamples=policy.n_resamples,
            confidence=policy.confidence,
            seed=policy.seed,
        )
    elif calibration.suite_sha256 != suite.sha256 or calibration.judge_sha256 != judge.judge_sha256:
        raise GateError("calibration does not belong to this suite and judge")
    scores = score_release(suite, judge, candidate, previous, cache=cache)
    return decide(scores, calibration, policy)
