"""Policy application: per-slice verdicts and the overall outcome (docs/design.md §3).

``apply_policy`` is a pure function of stored per-row scores (``GateScores``), a calibration and
a policy: re-applying a different policy never calls a judge.

Per slice, in this order:

1. INSUFFICIENT: fewer than ``min_rows`` rows, or the candidate's rho is NaN (constant scores or
   grades): never a silent pass.
2. JUDGE_UNTRUSTED: the calibration's ceiling CI lower bound is below ``min_ceiling`` (or NaN).
3. FAIL: the score (q on the normalized scale, rho on the raw one; the point estimate or the CI
   lower bound per ``floor_on``) is below ``floor``; or, with a previous release, the paired
   non-inferiority test does not reject H0 (change <= -margin) at ``alpha`` after Holm
   adjustment across the tested slices.
4. PASS.

Overall: ``fail`` if any slice FAILs; otherwise ``insufficient`` when slices could not be vouched
for (INSUFFICIENT / JUDGE_UNTRUSTED) and the policy is strict, or when no slice passed at all (a
gate that vouches for nothing cannot pass); otherwise ``pass``, with the unvouched slices named.
The aggregate (mean over slices) is reported and never decides.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import polars as pl

from relgate.errors import GateError
from relgate.gate.calibration import Calibration
from relgate.gate.statistic import holm, paired_changes, slice_statistics
from relgate.manifest import GatePolicy

__all__ = [
    "GateOutcome",
    "GateScores",
    "SliceResult",
    "SliceVerdict",
    "apply_policy",
]


def policy_dict(policy: GatePolicy) -> dict[str, object]:
    """The policy's fields as a plain dict (for results and receipts)."""
    return policy.model_dump(mode="json")


class SliceVerdict(enum.StrEnum):
    """Verdict of one slice."""

    PASS = "PASS"
    FAIL = "FAIL"
    INSUFFICIENT = "INSUFFICIENT"
    JUDGE_UNTRUSTED = "JUDGE_UNTRUSTED"


class GateOutcome(enum.StrEnum):
    """Overall outcome of a gate run."""

    PASS = "pass"
    FAIL = "fail"
    INSUFFICIENT = "insufficient"


@dataclass(frozen=True)
class GateScores:
    """Per-row judge scores of a gate run, sorted by slice: everything policy needs.

    ``rows`` has columns item_id, slice, reference_sha256, human_grade, x_candidate and
    x_previous (null without a previous release).
    """

    rows: pl.DataFrame
    suite_sha256: str
    judge_sha256: str
    candidate_sha256: str
    previous_sha256: str | None
    slices: tuple[str, ...] = field(init=False)
    offsets: npt.NDArray[np.int64] = field(init=False, repr=False)
    clusters: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rows = self.rows
        if rows.height and not rows["slice"].is_sorted():
            raise GateError("gate scores: rows must be sorted by slice")
        counts = rows.group_by("slice", maintain_order=True).len()
        offsets = np.zeros(counts.height + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(counts["len"].to_numpy())
        keys = (rows["slice"] + "\x00" + rows["item_id"]).to_numpy()
        starts = np.ones(len(keys), dtype=np.int64)
        starts[1:] = keys[1:] != keys[:-1]
        object.__setattr__(self, "slices", tuple(counts["slice"].to_list()))
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "clusters", (np.cumsum(starts) - 1).astype(np.int64))

    @property
    def has_previous(self) -> bool:
        """Whether a previous release was scored."""
        return self.previous_sha256 is not None


@dataclass(frozen=True)
class SliceResult:
    """Everything the gate concluded about one slice (NaN where not applicable)."""

    slice: str
    verdict: SliceVerdict
    reasons: tuple[str, ...]
    n_rows: int
    n_items: int
    rho: float
    rho_low: float
    rho_high: float
    ceiling: float
    ceiling_low: float
    q: float
    q_low: float
    q_high: float
    previous_rho: float = math.nan
    previous_rho_low: float = math.nan
    previous_rho_high: float = math.nan
    previous_q: float = math.nan
    previous_q_low: float = math.nan
    previous_q_high: float = math.nan
    change: float = math.nan
    change_low: float = math.nan
    change_high: float = math.nan
    p_value: float = math.nan
    p_adjusted: float = math.nan

    def score(self, scale: str) -> float:
        """The statistic the policy applies to: q (normalized) or rho (raw)."""
        return self.q if scale == "normalized" else self.rho


class _Bootstrap(TypedDict):
    n_resamples: int
    confidence: float
    seed: int


def _boot(policy: GatePolicy) -> _Bootstrap:
    return {"n_resamples": policy.n_resamples, "confidence": policy.confidence, "seed": policy.seed}


def _check_resolution(n_tests: int, policy: GatePolicy) -> None:
    """A bootstrap p-value is at least 1 / (B + 1), so Holm over m tests cannot reject anything
    unless m / (B + 1) <= alpha: every compared slice would FAIL for want of resamples. That is
    a policy that cannot work, not a verdict."""
    if n_tests and n_tests / (policy.n_resamples + 1) > policy.alpha:
        need = math.ceil(n_tests / policy.alpha) - 1
        raise GateError(
            f"n_resamples {policy.n_resamples} is too few to show non-inferiority on {n_tests} "
            f"slices at alpha {policy.alpha} with Holm; use at least {need}"
        )


def _ratio(value: float, ceiling: float) -> float:
    return value / ceiling if math.isfinite(ceiling) and ceiling > 0.0 else math.nan


def apply_policy(
    scores: GateScores, calibration: Calibration, policy: GatePolicy
) -> tuple[GateOutcome, tuple[SliceResult, ...]]:
    """Verdict per slice and the overall outcome; slices come back worst first."""
    if calibration.suite_sha256 != scores.suite_sha256:
        raise GateError("calibration was measured on another suite (suite sha256 differs)")
    if calibration.judge_sha256 != scores.judge_sha256:
        raise GateError("calibration was measured with another judge (judge sha256 differs)")
    y = scores.rows["human_grade"].to_numpy().astype(np.float64)
    x_new = scores.rows["x_candidate"].to_numpy().astype(np.float64)
    cand = slice_statistics(
        scores.slices, x_new, y, scores.offsets, scores.clusters, **_boot(policy)
    )
    ceilings = np.array(
        [getattr(calibration.for_slice(s), "rho", math.nan) for s in scores.slices], np.float64
    )
    ceiling_lows = [getattr(calibration.for_slice(s), "rho_low", math.nan) for s in scores.slices]
    normalized = policy.scale == "normalized"
    trusted = [math.isfinite(lo) and lo >= policy.min_ceiling for lo in ceiling_lows]
    enough = [s.n_rows >= policy.min_rows and math.isfinite(s.rho) for s in cand]

    prev = changes = None
    p_adj = [math.nan] * len(cand)
    if scores.has_previous:
        x_old = scores.rows["x_previous"].to_numpy().astype(np.float64)
        prev = slice_statistics(
            scores.slices, x_old, y, scores.offsets, scores.clusters, **_boot(policy)
        )
        testable = [
            enough[i] and trusted[i] and math.isfinite(prev[i].rho) for i in range(len(cand))
        ]
        _check_resolution(sum(testable), policy)
        scales = np.where(testable, ceilings if normalized else 1.0, math.nan)
        changes = paired_changes(
            scores.slices,
            x_new,
            x_old,
            y,
            scores.offsets,
            scores.clusters,
            scales=scales,
            margin=policy.non_inferiority_margin,
            **_boot(policy),
        )
        p_adj = holm([c.p_value for c in changes])

    results = []
    for i, st in enumerate(cand):
        ceiling = float(ceilings[i])
        q, q_lo, q_hi = (_ratio(v, ceiling) for v in (st.rho, st.rho_low, st.rho_high))
        reasons: list[str] = []
        if st.n_rows < policy.min_rows:
            verdict = SliceVerdict.INSUFFICIENT
            reasons.append(f"{st.n_rows} rows < min_rows {policy.min_rows}")
        elif not math.isfinite(st.rho):
            verdict = SliceVerdict.INSUFFICIENT
            reasons.append("statistic is undefined (constant scores or grades)")
        elif not trusted[i]:
            verdict = SliceVerdict.JUDGE_UNTRUSTED
            reasons.append(
                f"judge ceiling CI low {ceiling_lows[i]:.3f} < min_ceiling {policy.min_ceiling}"
            )
        else:
            point, low = (q, q_lo) if normalized else (st.rho, st.rho_low)
            value = point if policy.floor_on == "point" else low
            name = ("q" if normalized else "rho") + (
                "" if policy.floor_on == "point" else " CI low"
            )
            failed = not value >= policy.floor
            if failed:
                reasons.append(f"{name} {value:.3f} < floor {policy.floor}")
            if changes is not None and math.isfinite(changes[i].p_value):
                if not p_adj[i] <= policy.alpha:
                    failed = True
                    reasons.append(
                        f"change {changes[i].estimate:+.3f} not shown >= "
                        f"-{policy.non_inferiority_margin} (Holm p {p_adj[i]:.3g} > {policy.alpha})"
                    )
            elif prev is not None:
                reasons.append("previous release's statistic undefined here: floor only")
            verdict = SliceVerdict.FAIL if failed else SliceVerdict.PASS
        extra = {}
        if prev is not None and changes is not None:
            extra = {
                "previous_rho": prev[i].rho,
                "previous_rho_low": prev[i].rho_low,
                "previous_rho_high": prev[i].rho_high,
                "previous_q": _ratio(prev[i].rho, ceiling),
                "previous_q_low": _ratio(prev[i].rho_low, ceiling),
                "previous_q_high": _ratio(prev[i].rho_high, ceiling),
                "change": changes[i].estimate,
                "change_low": changes[i].low,
                "change_high": changes[i].high,
                "p_value": changes[i].p_value,
                "p_adjusted": p_adj[i],
            }
        results.append(
            SliceResult(
                slice=st.slice,
                verdict=verdict,
                reasons=tuple(reasons),
                n_rows=st.n_rows,
                n_items=st.n_items,
                rho=st.rho,
                rho_low=st.rho_low,
                rho_high=st.rho_high,
                ceiling=ceiling,
                ceiling_low=float(ceiling_lows[i]),
                q=q,
                q_low=q_lo,
                q_high=q_hi,
                **extra,
            )
        )
    return _outcome(results, policy), tuple(sorted(results, key=lambda r: worst_first(r, policy)))


_RANK = {
    SliceVerdict.FAIL: 0,
    SliceVerdict.JUDGE_UNTRUSTED: 1,
    SliceVerdict.INSUFFICIENT: 2,
    SliceVerdict.PASS: 3,
}


def worst_first(result: SliceResult, policy: GatePolicy) -> tuple[int, float, str]:
    """Sort key: failing slices first, then by score ascending (undefined scores first)."""
    score = result.score(policy.scale)
    return (_RANK[result.verdict], score if math.isfinite(score) else -math.inf, result.slice)


def _outcome(results: list[SliceResult], policy: GatePolicy) -> GateOutcome:
    verdicts = [r.verdict for r in results]
    if SliceVerdict.FAIL in verdicts:
        return GateOutcome.FAIL
    if SliceVerdict.PASS not in verdicts:
        return GateOutcome.INSUFFICIENT
    if policy.strict and any(v != SliceVerdict.PASS for v in verdicts):
        return GateOutcome.INSUFFICIENT
    return GateOutcome.PASS
