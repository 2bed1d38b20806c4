"""Policy application: per-slice verdicts and the overall outcome (docs/design.md §3).

``apply_policy`` is a pure function of stored per-row scores (``GateScores``), a calibration and
a policy: re-applying a different policy never calls a judge. A verdict is a claim about
evidence: FAIL needs evidence of harm, PASS needs evidence of no harm, and INSUFFICIENT names
what the data cannot tell. Per slice, in this order:

1. INSUFFICIENT: fewer than ``min_rows`` rows, or the candidate's rho is NaN (constant scores or
   grades): no statistic to test.
2. JUDGE_UNTRUSTED: the calibration's ceiling CI lower bound is below ``min_ceiling`` (or NaN):
   the judge cannot tell good answers from bad ones on this slice.
3. FAIL, on evidence of harm: the slice's score (q, or raw rho) is shown below ``floor`` (the
   one-sided bootstrap test of H0: score >= floor rejects), or, with a previous release, the
   paired change is shown worse than ``-non_inferiority_margin`` (H0: change >= -margin
   rejects). All FAIL tests of the run (two per compared slice) form one Holm family at
   ``alpha``: the family-wise rate of false FAILs is at most alpha.
4. PASS, on evidence of no harm: the floor held (``floor_on: point``, the default: the point
   estimate is at or above the floor; ``ci_low``: its CI lower bound is) and, with a previous
   release, the change's CI lower bound is at or above ``-margin`` (a release shown not worse
   than the margin errs, vouching for a slice that is worse, at most ``(1 - confidence) / 2``
   of the time).
5. INSUFFICIENT otherwise: an interval straddles the floor or the margin.

Overall: ``fail`` if any slice FAILs; otherwise ``insufficient`` when the policy is strict and a
slice was not vouched for, or when no slice was measured at all (each has too few rows, an
undefined statistic or an untrusted judge: there is nothing to pass on); otherwise ``pass``,
with the unvouched slices named (an INSUFFICIENT slice blocks only under ``strict``: too few
items to tell is not evidence of harm, so an A/A release passes with its undecided slices
named). The aggregate (mean over slices) is
reported and never decides.
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
from relgate.gate.statistic import (
    PairedChange,
    SliceStatistic,
    holm,
    paired_changes,
    slice_statistics,
)
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
    #: One-sided p-value of the FAIL test "the change is worse than -margin", and Holm-adjusted.
    p_value: float = math.nan
    p_adjusted: float = math.nan
    #: One-sided p-value of the FAIL test "the score is below the floor", and Holm-adjusted.
    floor_p_value: float = math.nan
    floor_p_adjusted: float = math.nan

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
    unless m / (B + 1) <= alpha: no regression could ever be shown, and every regressed slice
    would come back INSUFFICIENT. That is a policy that cannot work, not a verdict."""
    if n_tests and n_tests / (policy.n_resamples + 1) > policy.alpha:
        need = math.ceil(n_tests / policy.alpha) - 1
        raise GateError(
            f"n_resamples {policy.n_resamples} is too few to show a regression among {n_tests} "
            f"tests at alpha {policy.alpha} with Holm; use at least {need}"
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
    ceilings = np.array(
        [getattr(calibration.for_slice(s), "rho", math.nan) for s in scores.slices], np.float64
    )
    ceiling_lows = [getattr(calibration.for_slice(s), "rho_low", math.nan) for s in scores.slices]
    normalized = policy.scale == "normalized"
    trusted = [math.isfinite(lo) and lo >= policy.min_ceiling for lo in ceiling_lows]
    # The floor on the scale the bootstrap runs on (rho): floor x ceiling when normalized.
    floors = np.where(trusted, policy.floor * ceilings if normalized else policy.floor, math.nan)
    cand = slice_statistics(
        scores.slices, x_new, y, scores.offsets, scores.clusters, thresholds=floors, **_boot(policy)
    )
    testable = [
        trusted[i] and s.n_rows >= policy.min_rows and math.isfinite(s.rho)
        for i, s in enumerate(cand)
    ]

    prev = changes = None
    if scores.has_previous:
        x_old = scores.rows["x_previous"].to_numpy().astype(np.float64)
        prev = slice_statistics(
            scores.slices, x_old, y, scores.offsets, scores.clusters, **_boot(policy)
        )
        compared = [testable[i] and math.isfinite(prev[i].rho) for i in range(len(cand))]
        scales = np.where(compared, ceilings if normalized else 1.0, math.nan)
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

    # One Holm family: every FAIL test of the run (floor tests, then change tests).
    n = len(cand)
    floor_p = [cand[i].p_below if testable[i] else math.nan for i in range(n)]
    change_p = [math.nan] * n if changes is None else [c.p_worse for c in changes]
    family = floor_p + change_p
    _check_resolution(sum(math.isfinite(p) for p in family), policy)
    adjusted = holm(family)
    floor_adj, change_adj = adjusted[:n], adjusted[n:]

    results = []
    for i, st in enumerate(cand):
        ceiling = float(ceilings[i])
        q, q_lo, q_hi = (_ratio(v, ceiling) for v in (st.rho, st.rho_low, st.rho_high))
        verdict, reasons = _verdict(
            i, st, (q, q_lo, q_hi), trusted[i], ceiling_lows[i], changes, floor_adj, change_adj,
            policy,
        )  # fmt: skip
        extra: dict[str, float] = {
            "floor_p_value": floor_p[i],
            "floor_p_adjusted": floor_adj[i],
        }
        if prev is not None and changes is not None:
            extra |= {
                "previous_rho": prev[i].rho,
                "previous_rho_low": prev[i].rho_low,
                "previous_rho_high": prev[i].rho_high,
                "previous_q": _ratio(prev[i].rho, ceiling),
                "previous_q_low": _ratio(prev[i].rho_low, ceiling),
                "previous_q_high": _ratio(prev[i].rho_high, ceiling),
                "change": changes[i].estimate,
                "change_low": changes[i].low,
                "change_high": changes[i].high,
                "p_value": changes[i].p_worse,
                "p_adjusted": change_adj[i],
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


def _verdict(
    i: int,
    st: SliceStatistic,
    qs: tuple[float, float, float],
    trusted: bool,
    ceiling_low: float,
    changes: list[PairedChange] | None,
    floor_adj: list[float],
    change_adj: list[float],
    policy: GatePolicy,
) -> tuple[SliceVerdict, list[str]]:
    """One slice's verdict and the reasons behind it (see the module docstring)."""
    if st.n_rows < policy.min_rows:
        return SliceVerdict.INSUFFICIENT, [f"{st.n_rows} rows < min_rows {policy.min_rows}"]
    if not math.isfinite(st.rho):
        return SliceVerdict.INSUFFICIENT, ["statistic is undefined (constant scores or grades)"]
    if not trusted:
        why = f"judge ceiling CI low {ceiling_low:.3f} < min_ceiling {policy.min_ceiling}"
        return SliceVerdict.JUDGE_UNTRUSTED, [why]
    normalized = policy.scale == "normalized"
    name = "q" if normalized else "rho"
    point, low, high = qs if normalized else (st.rho, st.rho_low, st.rho_high)
    alpha, floor, margin = policy.alpha, policy.floor, policy.non_inferiority_margin
    fails: list[str] = []
    if floor_adj[i] <= alpha:
        fails.append(
            f"{name} {point:.3f} shown below floor {floor} "
            f"(CI high {high:.3f}; Holm p {floor_adj[i]:.3g} <= {alpha})"
        )
    change = None if changes is None else changes[i]
    if change is not None and change_adj[i] <= alpha:
        fails.append(
            f"change {change.estimate:+.3f} shown worse than -{margin} "
            f"(CI [{change.low:+.3f}, {change.high:+.3f}]; Holm p {change_adj[i]:.3g} <= {alpha})"
        )
    if fails:
        return SliceVerdict.FAIL, fails
    unsure: list[str] = []
    held = point if policy.floor_on == "point" else low
    if not held >= floor:
        which = name if policy.floor_on == "point" else f"{name} CI low"
        unsure.append(f"{which} {held:.3f} < floor {floor}, not shown below it: cannot tell")
    if change is not None and math.isfinite(change.estimate):
        if change.high < -margin:
            # Below the margin on its own 95% interval, yet not shown after Holm across the
            # run's tests: evidence, but not enough for the family-wise bound.
            unsure.append(
                f"change {change.estimate:+.3f} CI [{change.low:+.3f}, {change.high:+.3f}] "
                f"below -{margin}, but Holm p {change_adj[i]:.3g} > {alpha} over the run's "
                "tests: cannot tell"
            )
        elif not change.low >= -margin:
            unsure.append(
                f"change {change.estimate:+.3f} CI [{change.low:+.3f}, {change.high:+.3f}] "
                f"straddles -{margin}: cannot tell"
            )
    elif changes is not None:
        unsure.append("previous release's statistic undefined here: no comparison")
    if unsure:
        return SliceVerdict.INSUFFICIENT, unsure
    return SliceVerdict.PASS, []


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


def _measured(result: SliceResult, policy: GatePolicy) -> bool:
    """The slice was measured: enough rows, a defined statistic and a trusted judge (whatever
    its intervals then showed)."""
    if result.verdict in (SliceVerdict.PASS, SliceVerdict.FAIL):
        return True
    return (
        result.verdict == SliceVerdict.INSUFFICIENT
        and result.n_rows >= policy.min_rows
        and math.isfinite(result.rho)
    )


def _outcome(results: list[SliceResult], policy: GatePolicy) -> GateOutcome:
    verdicts = [r.verdict for r in results]
    if SliceVerdict.FAIL in verdicts:
        return GateOutcome.FAIL
    if not any(_measured(r, policy) for r in results):
        return GateOutcome.INSUFFICIENT
    if policy.strict and any(v != SliceVerdict.PASS for v in verdicts):
        return GateOutcome.INSUFFICIENT
    return GateOutcome.PASS
