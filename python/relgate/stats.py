"""Batched rank statistics: the engine under the gate and the quality monitors.

Spearman rho (tie-averaged ranks) and Kendall tau-b for one pair of arrays or many ragged
groups at once, bootstrap intervals per group (percentile and BCa, optionally resampling
whole item clusters), the paired item-cluster bootstrap of the difference between two
releases, Fisher-z intervals, and Holm / Benjamini-Hochberg adjustment.

Groups are CSR-style: flat ``x`` and ``y`` plus an ``offsets`` array, group ``i`` being
``x[offsets[i]:offsets[i + 1]]`` (so ``offsets[0] == 0`` and ``offsets[-1] == len(x)``).

Results equal ``scipy.stats.spearmanr`` / ``scipy.stats.kendalltau`` (tau-b) to 1e-12,
ties, signed zeros and infinities included. Where scipy would warn or raise (fewer than
two pairs, a constant side) the result is NaN, never 0 and never an exception.
``nan_policy="propagate"`` makes any NaN give NaN; ``"omit"`` drops pairs with a NaN.

The work runs in the Rust core (``relgate._native``) with the GIL released, in parallel
across groups. float64 arrays are read in place; other numeric dtypes are converted once;
anything else raises :class:`relgate.errors.InvalidInputError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from relgate import _native
from relgate.errors import InvalidInputError

NanPolicy = Literal["propagate", "omit"]
StatisticName = Literal["spearman", "kendall_tau_b"]
CiMethod = Literal["percentile", "bca"]
F64Array = npt.NDArray[np.float64]
I64Array = npt.NDArray[np.int64]

__all__ = [
    "BootstrapCI",
    "PairedDiff",
    "benjamini_hochberg",
    "bootstrap_ci_grouped",
    "fisher_z_ci",
    "holm",
    "kendall_tau_b",
    "kendall_tau_b_grouped",
    "paired_bootstrap_diff",
    "spearman",
    "spearman_grouped",
]


def _floats(a: npt.ArrayLike, name: str) -> F64Array:
    """A 1-D float64 view of ``a`` (no copy when it already is one)."""
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D, got an array of shape {arr.shape}")
    if arr.dtype == np.float64:
        return arr
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64)
    raise InvalidInputError(
        f"{name} must be a numeric (float, int or bool) array, got dtype {arr.dtype}"
    )


def _ints(a: npt.ArrayLike, name: str) -> I64Array:
    """A 1-D int64 view of ``a``; only integer dtypes are accepted (ids and offsets)."""
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D, got an array of shape {arr.shape}")
    if arr.dtype == np.int64:
        return arr
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise InvalidInputError(f"{name} has values beyond the int64 range")
        return arr.astype(np.int64)
    raise InvalidInputError(f"{name} must be an integer array, got dtype {arr.dtype}")


def _seed(seed: int) -> int:
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise InvalidInputError(f"seed must be an integer, got {type(seed).__name__}")
    s = int(seed)
    if not 0 <= s < 2**64:
        raise InvalidInputError(f"seed must be in [0, 2**64), got {s}")
    return s


def _resamples(n_resamples: int) -> int:
    if not isinstance(n_resamples, int | np.integer) or isinstance(n_resamples, bool):
        raise InvalidInputError("n_resamples must be an integer")
    if n_resamples < 1:
        raise InvalidInputError(f"n_resamples must be at least 1, got {n_resamples}")
    return int(n_resamples)


def spearman(x: npt.ArrayLike, y: npt.ArrayLike, nan_policy: NanPolicy = "propagate") -> float:
    """Spearman rank correlation of ``x`` and ``y`` (tie-averaged ranks)."""
    return _native.spearman(_floats(x, "x"), _floats(y, "y"), nan_policy)


def kendall_tau_b(x: npt.ArrayLike, y: npt.ArrayLike, nan_policy: NanPolicy = "propagate") -> float:
    """Kendall's tau-b of ``x`` and ``y`` (O(n log n); tie-corrected)."""
    return _native.kendall_tau_b(_floats(x, "x"), _floats(y, "y"), nan_policy)


def spearman_grouped(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    offsets: npt.ArrayLike,
    nan_policy: NanPolicy = "propagate",
) -> F64Array:
    """Spearman rho per CSR group: a float64 array with one value per group."""
    return _native.spearman_grouped(
        _floats(x, "x"), _floats(y, "y"), _ints(offsets, "offsets"), nan_policy
    )


def kendall_tau_b_grouped(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    offsets: npt.ArrayLike,
    nan_policy: NanPolicy = "propagate",
) -> F64Array:
    """Kendall tau-b per CSR group: a float64 array with one value per group."""
    return _native.kendall_tau_b_grouped(
        _floats(x, "x"), _floats(y, "y"), _ints(offsets, "offsets"), nan_policy
    )


@dataclass(frozen=True, eq=False)
class BootstrapCI:
    """Per-group bootstrap interval: ``estimate`` (the statistic on all rows), ``low`` and
    ``high`` (interval bounds), ``n`` (rows used, after NaN omission) and, when thresholds
    were given, ``p_below``: the one-sided bootstrap p-value for H0: statistic >= threshold
    (small when the statistic is shown below it; NaN otherwise)."""

    estimate: F64Array
    low: F64Array
    high: F64Array
    n: I64Array
    p_below: F64Array


@dataclass(frozen=True, eq=False)
class PairedDiff:
    """Per-group paired difference ``statistic(x_new, y) - statistic(x_old, y)``: the
    ``estimate``, its percentile interval ``low`` / ``high``, the one-sided bootstrap
    ``p_value`` for H0: diff <= -margin (small: shown not worse than the margin), ``p_worse``
    for H0: diff >= -margin (small: shown worse than the margin), and ``n`` (rows used)."""

    estimate: F64Array
    low: F64Array
    high: F64Array
    p_value: F64Array
    p_worse: F64Array
    n: I64Array


def bootstrap_ci_grouped(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    offsets: npt.ArrayLike,
    *,
    statistic: StatisticName = "spearman",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    method: CiMethod = "percentile",
    seed: int = 0,
    clusters: npt.ArrayLike | None = None,
    thresholds: npt.ArrayLike | None = None,
) -> BootstrapCI:
    """Bootstrap confidence interval of a rank statistic, per group.

    Rows with a NaN are omitted. With ``clusters`` (integer item ids aligned with ``x``),
    whole clusters are resampled within each group; otherwise rows are. ``method`` is
    ``"percentile"`` or ``"bca"`` (bias-corrected and accelerated, as
    ``scipy.stats.bootstrap``). Resamples whose statistic is undefined (a constant side)
    are left out of the interval. The resampling stream of each group derives from
    ``(seed, group index)``, so results do not depend on the thread count. ``thresholds``
    (one per group) adds ``p_below``, the p-value of a one-sided test that the statistic is
    below its threshold.
    """
    xs, ys = _floats(x, "x"), _floats(y, "y")
    cl = None if clusters is None else _ints(clusters, "clusters")
    th = None if thresholds is None else _floats(thresholds, "thresholds")
    est, low, high, p_below, n = _native.bootstrap_ci_grouped(
        xs,
        ys,
        _ints(offsets, "offsets"),
        cl,
        statistic,
        _resamples(n_resamples),
        float(confidence),
        method,
        _seed(seed),
        th,
    )
    if th is None:
        p_below = np.full(len(est), np.nan)
    return BootstrapCI(estimate=est, low=low, high=high, n=n, p_below=p_below)


def paired_bootstrap_diff(
    x_new: npt.ArrayLike,
    x_old: npt.ArrayLike,
    y: npt.ArrayLike,
    offsets: npt.ArrayLike,
    clusters: npt.ArrayLike,
    *,
    statistic: StatisticName = "spearman",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    margin: float = 0.0,
    seed: int = 0,
) -> PairedDiff:
    """Paired item-cluster bootstrap of ``statistic(x_new, y) - statistic(x_old, y)``.

    Both releases are scored on the same rows; each resample draws item clusters (all
    rows of an item together) and applies the same draw to both releases. Rows with a NaN
    in any of the three arrays are omitted from both. ``p_value`` is the one-sided
    bootstrap p-value for H0: diff <= -margin, ``(#{diff* <= -margin} + 1) / (B + 1)``
    (non-inferiority: small means the new release is not worse by more than ``margin``).
    """
    est, low, high, p, p_worse, n = _native.paired_bootstrap_diff(
        _floats(x_new, "x_new"),
        _floats(x_old, "x_old"),
        _floats(y, "y"),
        _ints(offsets, "offsets"),
        _ints(clusters, "clusters"),
        statistic,
        _resamples(n_resamples),
        float(confidence),
        float(margin),
        _seed(seed),
    )
    return PairedDiff(estimate=est, low=low, high=high, p_value=p, p_worse=p_worse, n=n)


def fisher_z_ci(
    rho: npt.ArrayLike, n: npt.ArrayLike, confidence: float = 0.95
) -> tuple[F64Array, F64Array]:
    """Closed-form Fisher-z interval ``tanh(atanh(rho) -/+ z / sqrt(n - 3))``, vectorized.

    ``rho`` and ``n`` broadcast against each other; NaN where ``n <= 3`` or ``rho`` is NaN.
    """
    r0, k0 = _floats(np.atleast_1d(rho), "rho"), _floats(np.atleast_1d(n), "n")
    try:
        r, k = np.broadcast_arrays(r0, k0)
    except ValueError as exc:
        raise InvalidInputError(
            f"rho and n cannot be broadcast together: shapes {r0.shape} and {k0.shape}"
        ) from exc
    return _native.fisher_z_ci(np.ascontiguousarray(r), np.ascontiguousarray(k), float(confidence))


def holm(pvalues: npt.ArrayLike) -> F64Array:
    """Holm step-down adjusted p-values, same order as given; NaN stays NaN and does not
    count as a test."""
    return _native.holm(_floats(pvalues, "pvalues"))


def benjamini_hochberg(pvalues: npt.ArrayLike) -> F64Array:
    """Benjamini-Hochberg (FDR) adjusted p-values, same order as given; NaN stays NaN and
    does not count as a test."""
    return _native.benjamini_hochberg(_floats(pvalues, "pvalues"))
