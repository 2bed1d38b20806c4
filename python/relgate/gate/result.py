"""GateResult: the value a gate run returns, and the policy re-application on stored scores."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from relgate.canonical import canonical_sha256
from relgate.gate.calibration import Calibration
from relgate.gate.verdict import (
    GateOutcome,
    GateScores,
    SliceResult,
    SliceVerdict,
    apply_policy,
    policy_dict,
)
from relgate.manifest import GatePolicy

__all__ = ["RESULT_FORMAT", "GateResult", "decide"]

RESULT_FORMAT = "relgate.gate-result/v2"


def _clean(value: Any) -> Any:
    """NaN/inf -> None (JSON and RFC 8785 have no NaN); enums -> their value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, SliceVerdict | GateOutcome):
        return value.value
    return value


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


@dataclass(frozen=True)
class GateResult:
    """Outcome, per-slice results (worst first), identities, and the per-row scores.

    ``aggregate`` (mean rho / q over slices with a defined statistic, candidate and previous) is
    reported, never decisive. ``unvouched`` names the INSUFFICIENT and JUDGE_UNTRUSTED slices.
    """

    outcome: GateOutcome
    slices: tuple[SliceResult, ...]
    policy: dict[str, Any]
    scores: GateScores
    calibration: Calibration

    @property
    def passed(self) -> bool:
        """True when the outcome is pass (possibly with unvouched slices named)."""
        return self.outcome == GateOutcome.PASS

    @property
    def unvouched(self) -> tuple[str, ...]:
        """Slices the gate cannot vouch for (INSUFFICIENT or JUDGE_UNTRUSTED)."""
        return tuple(
            r.slice
            for r in self.slices
            if r.verdict in (SliceVerdict.INSUFFICIENT, SliceVerdict.JUDGE_UNTRUSTED)
        )

    @property
    def failed_slices(self) -> tuple[str, ...]:
        """Slices that FAIL."""
        return tuple(r.slice for r in self.slices if r.verdict == SliceVerdict.FAIL)

    @property
    def aggregate(self) -> dict[str, float]:
        """Means over slices (non-decisive)."""
        return {
            "mean_rho": _mean([r.rho for r in self.slices]),
            "mean_q": _mean([r.q for r in self.slices]),
            "previous_mean_rho": _mean([r.previous_rho for r in self.slices]),
            "previous_mean_q": _mean([r.previous_q for r in self.slices]),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no per-row data; that goes to parquet)."""
        body: dict[str, Any] = _clean(
            {
                "format": RESULT_FORMAT,
                "outcome": self.outcome,
                "passed": self.passed,
                "failed_slices": list(self.failed_slices),
                "unvouched_slices": list(self.unvouched),
                "aggregate": {**self.aggregate, "decisive": False},
                "policy": self.policy,
                "suite_sha256": self.scores.suite_sha256,
                "judge_sha256": self.scores.judge_sha256,
                "candidate_answers_sha256": self.scores.candidate_sha256,
                "previous_answers_sha256": self.scores.previous_sha256,
                "calibration_sha256": self.calibration.sha256,
                "slices": [asdict(r) for r in self.slices],
            }
        )
        return body

    @property
    def sha256(self) -> str:
        """SHA-256 over the RFC 8785 form of ``to_dict``."""
        return canonical_sha256(self.to_dict())

    def reapply(self, policy: GatePolicy) -> GateResult:
        """The same stored scores under another policy: no judge call."""
        return decide(self.scores, self.calibration, policy)


def decide(scores: GateScores, calibration: Calibration, policy: GatePolicy) -> GateResult:
    """Apply ``policy`` to stored scores and wrap the result."""
    outcome, slices = apply_policy(scores, calibration, policy)
    return GateResult(
        outcome=outcome,
        slices=slices,
        policy=policy_dict(policy),
        scores=scores,
        calibration=calibration,
    )
