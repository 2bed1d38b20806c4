"""The gate's statistic (docs/design.md §3), computed through ``relgate.stats``.

For a slice S with rows ``(item, reference, human_grade)``:
``rho_S = Spearman(agree(answer(item), reference), human_grade)`` over the rows of S, with
tie-averaged ranks; ``q_S = rho_S / ceiling_S`` (the ceiling comes from calibration).

Confidence intervals resample items (clusters), not rows: the rows of one item share an answer
and are not independent. The interval of q is the interval of rho divided by the ceiling's point
estimate (the ceiling is a measured property of judge and suite, fixed for a gate run; its own
uncertainty is what JUDGE_UNTRUSTED is about).

Changes on the q scale: ``dq = (rho_new - rho_old) / ceiling``, so ``dq < -margin`` is
``drho < -margin * ceiling``; the paired bootstrap runs on rho with ``margin * ceiling`` and its
estimate and interval are divided by the ceiling. On the raw scale the margin is used as is.

Two one-sided bootstrap p-values come with each change: ``p_worse`` for H0: the change is at
or above ``-margin`` (small: evidence the release is worse than the margin, the FAIL test) and
``p_not_worse`` for H0: the change is at or below ``-margin`` (small: evidence it is not). The
floor test is the same for one release: ``p_below`` for H0: rho >= ``floor * ceiling`` (small:
evidence the slice is below its floor).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "PairedChange",
    "SliceStatistic",
    "holm",
    "kendall_grouped",
    "paired_changes",
    "slice_statistics",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SliceStatistic:
    """rho of one slice with its item-cluster bootstrap interval, and (when a threshold was
    given) the one-sided p-value that rho is below it."""

    slice: str
    n_rows: int
    n_items: int
    rho: float
    rho_low: float
    rho_high: float
    p_below: float = math.nan


@dataclass(frozen=True)
class PairedChange:
    """Change of the slice statistic from the previous release to the candidate (paired by
    row), on the scale of the test, with its one-sided p-values (before adjustment)."""

    slice: str
    estimate: float
    low: float
    high: float
    p_worse: float
    p_not_worse: float
    margin: float


def _stats() -> Any:
    # Imported here so that the rest of the gate (policy application on stored values, reports)
    # imports even where the native statistics are being rebuilt.
    return importlib.import_module("relgate.stats")


def _as_array(value: Any, n: int) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    return np.full(n, float(arr)) if arr.ndim == 0 else arr


def slice_statistics(
    names: tuple[str, ...] | list[str],
    x: FloatArray,
    y: FloatArray,
    offsets: IntArray,
    clusters: IntArray,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
    thresholds: FloatArray | None = None,
) -> list[SliceStatistic]:
    """Spearman rho per slice, with percentile item-cluster bootstrap intervals (and, with
    ``thresholds``, the p-value that each slice's rho is below its threshold)."""
    stats = _stats()
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    clusters = np.ascontiguousarray(clusters, dtype=np.int64)
    n = len(names)
    ci = stats.bootstrap_ci_grouped(
        x,
        y,
        offsets,
        statistic="spearman",
        n_resamples=n_resamples,
        confidence=confidence,
        method="percentile",
        seed=seed,
        clusters=clusters,
        thresholds=None if thresholds is None else np.asarray(thresholds, np.float64),
    )
    est = np.asarray(stats.spearman_grouped(x, y, offsets, nan_policy="propagate"), np.float64)
    low, high = _as_array(ci.low, n), _as_array(ci.high, n)
    out = []
    for i, name in enumerate(names):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        n_items = len(np.unique(clusters[lo:hi]))
        rho = float(est[i])
        finite = math.isfinite(rho)
        out.append(
            SliceStatistic(
                slice=name,
                n_rows=hi - lo,
                n_items=n_items,
                rho=rho,
                rho_low=float(low[i]) if finite else math.nan,
                rho_high=float(high[i]) if finite else math.nan,
                p_below=float(ci.p_below[i]) if finite else math.nan,
            )
        )
    return out


def paired_changes(
    names: tuple[str, ...] | list[str],
    x_new: FloatArray,
    x_old: FloatArray,
    y: FloatArray,
    offsets: IntArray,
    clusters: IntArray,
    *,
    scales: FloatArray,
    margin: float,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> list[PairedChange]:
    """Paired item-cluster bootstrap of ``stat(new) - stat(old)`` per slice.

    ``scales[i]`` is the divisor of slice i (its ceiling on the normalized scale, 1.0 on the raw
    scale); the test runs on rho with margin ``margin * scales[i]`` and reports on the scaled
    axis. A slice whose scale is not a positive number gets NaNs (it is not testable).
    """
    stats = _stats()
    out = []
    for i, name in enumerate(names):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        scale = float(scales[i])
        if not (math.isfinite(scale) and scale > 0.0):
            nan = math.nan
            out.append(PairedChange(name, nan, nan, nan, nan, nan, margin))
            continue
        diff = stats.paired_bootstrap_diff(
            np.ascontiguousarray(x_new[lo:hi], dtype=np.float64),
            np.ascontiguousarray(x_old[lo:hi], dtype=np.float64),
            np.ascontiguousarray(y[lo:hi], dtype=np.float64),
            np.array([0, hi - lo], dtype=np.int64),
            np.ascontiguousarray(clusters[lo:hi], dtype=np.int64),
            statistic="spearman",
            n_resamples=n_resamples,
            confidence=confidence,
            margin=margin * scale,
            seed=seed,
        )
        est, dlo, dhi, p_worse, p_not_worse = (
            float(_as_array(v, 1)[0])
            for v in (diff.estimate, diff.low, diff.high, diff.p_worse, diff.p_value)
        )
        out.append(
            PairedChange(name, est / scale, dlo / scale, dhi / scale, p_worse, p_not_worse, margin)
        )
    return out


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values through ``relgate.stats``; NaNs (untested slices) stay NaN and do
    not count towards the family size."""
    tested = [i for i, p in enumerate(p_values) if math.isfinite(p)]
    adjusted = [math.nan] * len(p_values)
    if tested:
        adj = np.asarray(_stats().holm(np.array([p_values[i] for i in tested], np.float64)))
        for j, i in enumerate(tested):
            adjusted[i] = float(adj[j])
    return adjusted


def kendall_grouped(
    x: FloatArray,
    y: FloatArray,
    offsets: IntArray,
    clusters: IntArray,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Kendall tau-b per slice with its item-cluster bootstrap interval: (tau, low, high)."""
    ci = _stats().bootstrap_ci_grouped(
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(offsets, dtype=np.int64),
        statistic="kendall_tau_b",
        n_resamples=n_resamples,
        confidence=confidence,
        method="percentile",
        seed=seed,
        clusters=np.ascontiguousarray(clusters, dtype=np.int64),
    )
    n = len(offsets) - 1
    return _as_array(ci.estimate, n), _as_array(ci.low, n), _as_array(ci.high, n)
