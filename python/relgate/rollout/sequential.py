"""An always-valid sequential test on paired score differences (docs/statistics.md).

The canary looks at the replay every tick and the observer every minute, forever. A test that
compares a fresh window with a fixed threshold at every look cries wolf at a rate that grows
with the number of looks. This module gives the monitors a test whose error rate does not
depend on how often, or how long, anyone looks.

**Observations.** One per replayed trace ``i``: ``d_i = m(candidate_i) - m(stable_rerun_i)``,
where ``m(x) = agree(x, served_i) - mean_k agree(x, anchor_k)`` is how much closer an answer is
to the stable release's served answer than to the slice's bad anchors (hedges, graded-bad
answers). ``agree`` is in [0, 1], so ``d_i`` is in [-2, 2]. The stable release *re-answers* the
trace (``stable_rerun_i``): a model with sampling on answers differently every run, and only a
second stable answer has the same relation to the served text as the candidate's answer. When
the candidate is the same model (A/A), candidate and rerun are exchangeable given the trace, so
``E[d_i] = 0`` exactly, whatever the judge and the model's noise.

**Test.** H0 (not worse): ``E[d_i] >= -margin``. The e-process is the capital of a bettor who
bets against H0 with predictable stakes (Waudby-Smith & Ramdas 2023, "Estimating means of
bounded random variables by betting", aGRAPA stakes):

    K_t = prod_{i <= t} (1 + lambda_i * (-margin - d_i)),   0 <= lambda_i <= c / (2 + margin)

with ``lambda_i`` chosen from ``d_1..d_{i-1}`` only. Under H0 each factor has expectation
<= 1 and stays >= 0, so ``K`` is a non-negative supermartingale and by Ville's inequality
``P(sup_t K_t >= 1/alpha) <= alpha``: rejecting the first time ``K_t >= 1/alpha`` has
false-FAIL probability at most ``alpha`` over *all* looks, however many, at any times. With
``k`` slices each tested at ``alpha / k`` (Bonferroni) the family-wise bound is ``alpha``.

The state is a handful of numbers (``SequentialState``), folded one observation at a time, so
it can live in a provider's memory or in a receipt.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from relgate.errors import InvalidInputError

__all__ = [
    "D_MAX",
    "SequentialState",
    "fold",
    "paired_margin",
    "threshold_log",
]

#: Paired differences lie in [-D_MAX, D_MAX] (two agreements in [0, 1] subtracted twice).
D_MAX = 2.0
#: Largest stake as a share of the bound that keeps every factor non-negative.
_STAKE_CAP = 0.9
#: Prior pseudo-observation for the stake's plug-in mean and variance.
_PRIOR_VAR = 0.05


def paired_margin(to_served: float, to_anchors: Iterable[float]) -> float:
    """``m(x) = agree(x, served) - mean(agree(x, anchor))`` (just the served agreement when
    the slice has no anchors)."""
    anchors = list(to_anchors)
    return float(to_served) - (math.fsum(anchors) / len(anchors) if anchors else 0.0)


def threshold_log(alpha: float, k: int = 1) -> float:
    """``log(k / alpha)``: the log e-value at which a test run at level ``alpha / k`` rejects."""
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must be within (0, 1), got {alpha}")
    if k < 1:
        raise InvalidInputError(f"k must be >= 1, got {k}")
    return math.log(k / alpha)


@dataclass(frozen=True, slots=True)
class SequentialState:
    """The e-process of one slice: ``n`` observations, their running mean and sum of squared
    deviations (Welford), the log capital ``log_e`` and its running maximum ``max_log_e``
    (rejection is sticky: once the capital crossed, the test has rejected)."""

    margin: float = 0.02
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    log_e: float = 0.0
    max_log_e: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin) and 0.0 <= self.margin < D_MAX):
            raise InvalidInputError(f"margin must be within [0, {D_MAX}), got {self.margin}")

    @property
    def e_value(self) -> float:
        """The current capital ``K_t`` (``inf`` past float range)."""
        return math.exp(self.log_e) if self.log_e < 700 else math.inf

    def rejected(self, alpha: float, k: int = 1) -> bool:
        """Whether the capital ever reached ``k / alpha`` (H0 rejected at level alpha / k)."""
        return self.max_log_e >= threshold_log(alpha, k)

    def stake(self) -> float:
        """The next bet, from past observations only (aGRAPA, clipped to the safe range)."""
        m0 = -self.margin
        # One prior pseudo-observation at 0 with variance _PRIOR_VAR keeps the first stakes sane.
        mean = self.n * self.mean / (self.n + 1)
        var = (self.m2 + _PRIOR_VAR) / (self.n + 1)
        gap = m0 - mean
        lam = gap / (var + gap * gap) if gap > 0 else 0.0
        return min(max(lam, 0.0), _STAKE_CAP / (D_MAX + self.margin))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "margin": self.margin,
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "log_e": self.log_e,
            "max_log_e": self.max_log_e,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SequentialState:
        """Inverse of ``to_dict``; raises ``InvalidInputError`` on bad fields."""
        try:
            out = cls(
                margin=float(data["margin"]),
                n=int(data["n"]),
                mean=float(data["mean"]),
                m2=float(data["m2"]),
                log_e=float(data["log_e"]),
                max_log_e=float(data["max_log_e"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"sequential state: {exc}") from None
        if (
            out.n < 0
            or out.m2 < 0
            or not all(math.isfinite(v) for v in (out.mean, out.m2, out.log_e, out.max_log_e))
        ):
            raise InvalidInputError("sequential state: fields out of range")
        return out


def fold(state: SequentialState, diffs: Iterable[float]) -> SequentialState:
    """Fold paired differences, in order, into the e-process.

    A difference outside ``[-D_MAX, D_MAX]`` or not finite is bad input (the judge's scores are
    checked before they get here): ``InvalidInputError``, the state unchanged.
    """
    values = [float(d) for d in diffs]
    for d in values:
        if not (math.isfinite(d) and -D_MAX <= d <= D_MAX):
            raise InvalidInputError(f"paired difference {d!r} outside [-{D_MAX:g}, {D_MAX:g}]")
    margin = state.margin
    m0, cap = -margin, _STAKE_CAP / (D_MAX + margin)
    n, mean, m2, log_e, max_log_e = state.n, state.mean, state.m2, state.log_e, state.max_log_e
    for d in values:
        # The stake (as ``SequentialState.stake``) from the observations before this one.
        gap = m0 - n * mean / (n + 1)
        var = (m2 + _PRIOR_VAR) / (n + 1)
        lam = min(gap / (var + gap * gap), cap) if gap > 0 else 0.0
        log_e += math.log1p(lam * (m0 - d))
        max_log_e = max(max_log_e, log_e)
        n += 1
        delta = d - mean
        mean += delta / n
        m2 += delta * (d - mean)
    return SequentialState(margin=margin, n=n, mean=mean, m2=m2, log_e=log_e, max_log_e=max_log_e)
