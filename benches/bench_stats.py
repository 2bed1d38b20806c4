"""Rank statistics: relgate.stats against scipy, numpy and polars, as ratios in one run.

Scores on a 0.1 grid (the domain's discrete, heavily tied scores), best of ``--repeat``
runs after one warm-up run each:

1. 10,000 groups x 50 rows, Spearman per group: relgate ``spearman_grouped``; numpy
   (``scipy.stats.rankdata(axis=1)`` on the 2-D block + einsum, the fastest numpy way);
   a scipy ``spearmanr`` loop; polars ``group_by().agg(pl.corr(..., method="spearman"))``.
2. 100 groups x 10,000 rows, the same four.
3. 1 group of 10,000,000 rows: relgate ``spearman``; polars; numpy (rankdata + corrcoef).
4. 1,000-resample bootstrap CI of Spearman on 200 rows: relgate (percentile, and BCa); numpy
   (all resample indices at once, rankdata(axis=1) + einsum, percentiles).
5. Not a target, for context: case 1 with continuous judge scores against grades 0/0.5/1
   (one side needs a real sort per group).

Every competitor's result is checked against relgate's (1e-9) before it is timed. Ratios
are ``competitor time / relgate time`` (best wall times; above 1: relgate is faster). The
mean CPU time per call (all threads of the process) is printed beside each: on a machine
shared with other work it shows the work done, where wall time also shows contention.
Targets from docs/design.md §8 are printed beside the absolute times of this machine.
The rayon pool uses all cores unless ``RAYON_NUM_THREADS`` says otherwise;
``OPENBLAS_CORETYPE`` (if set) only affects numpy's BLAS and is reported.

    .venv/bin/python benches/bench_stats.py [--repeat 7] [--skip-scipy-loop]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from relgate import stats
from scipy import stats as sps

# CPU time (all threads of this process) per call of the last `best_ms`, in ms: on a
# machine shared with other work, wall time shows contention, CPU time shows the work.
_last_cpu_ms = [0.0]


def best_ms(f: Callable[[], Any], repeat: int) -> float:
    """Best wall time of ``repeat`` runs after one warm-up run, in milliseconds."""
    f()
    times = []
    cpu = time.process_time()
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    _last_cpu_ms[0] = (time.process_time() - cpu) / repeat * 1e3
    return min(times) * 1e3


def numpy_spearman_2d(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman per row of equal-length groups: rankdata(axis=1) + einsum."""
    rx = sps.rankdata(x, axis=1)
    ry = sps.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", rx, ry)
    den = np.sqrt(np.einsum("ij,ij->i", rx, rx) * np.einsum("ij,ij->i", ry, ry))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(num / den)


def scipy_loop(x: np.ndarray, y: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.empty(len(offsets) - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g in range(len(out)):
            a, b = offsets[g], offsets[g + 1]
            out[g] = sps.spearmanr(x[a:b], y[a:b])[0]
    return out


def polars_frame(x: np.ndarray, y: np.ndarray, offsets: np.ndarray) -> pl.DataFrame:
    groups = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    return pl.DataFrame({"g": groups, "x": x, "y": y})


def polars_spearman(df: pl.DataFrame) -> np.ndarray:
    out = df.group_by("g").agg(pl.corr("x", "y", method="spearman")).sort("g")
    return np.asarray(out["x"].to_numpy(), dtype=np.float64)


def numpy_bootstrap(x: np.ndarray, y: np.ndarray, n_resamples: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    rho = numpy_spearman_2d(x[idx], y[idx])
    lo, hi = np.nanpercentile(rho, [2.5, 97.5])
    return float(lo), float(hi)


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, float | None]] = []

    def add(self, case: str, who: str, ms: float, relgate_ms: float | None) -> None:
        self.rows.append((case, who, ms, relgate_ms))
        ratio = "" if relgate_ms is None else f"{ms / relgate_ms:9.1f}x"
        cpu = f"(cpu {_last_cpu_ms[0]:9.2f} ms/call)"
        print(f"  {who:<34} {ms:10.2f} ms {cpu} {ratio}", flush=True)


def check(name: str, got: np.ndarray, want: np.ndarray) -> None:
    if not np.allclose(got, want, rtol=0, atol=1e-9, equal_nan=True):
        bad = int(np.sum(~np.isclose(got, want, rtol=0, atol=1e-9, equal_nan=True)))
        raise SystemExit(f"{name}: {bad} results differ from relgate's")


def grouped_case(
    report: Report,
    groups: int,
    rows: int,
    target_ms: float | None,
    args: argparse.Namespace,
    judge_scores: bool = False,
) -> None:
    rng = np.random.default_rng(groups)
    n = groups * rows
    x = np.round(rng.random(n), 1)
    y = np.round(0.5 * x + 0.5 * rng.random(n), 1)
    if judge_scores:
        # Continuous judge agreement scores against human grades 0 / 0.5 / 1.
        y = np.round(rng.random(n) * 2) / 2
        x = 0.3 * y + rng.random(n)
    offsets = np.arange(0, n + 1, rows, dtype=np.int64)
    case = f"{groups:,} groups x {rows:,} rows" + (
        ", judge scores x grades" if judge_scores else ""
    )
    target = f" (target <= {target_ms} ms)" if target_ms else ""
    print(f"{case}{target}")
    ours = stats.spearman_grouped(x, y, offsets)
    t_ours = best_ms(lambda: stats.spearman_grouped(x, y, offsets), args.repeat)
    report.add(case, "relgate spearman_grouped", t_ours, None)
    x2, y2 = x.reshape(groups, rows), y.reshape(groups, rows)
    check("numpy", numpy_spearman_2d(x2, y2), ours)
    report.add(
        case,
        "numpy rankdata(axis=1)+einsum",
        best_ms(lambda: numpy_spearman_2d(x2, y2), args.repeat),
        t_ours,
    )
    df = polars_frame(x, y, offsets)
    check("polars", polars_spearman(df), ours)
    report.add(
        case,
        "polars group_by corr(spearman)",
        best_ms(lambda: polars_spearman(df), args.repeat),
        t_ours,
    )
    if not args.skip_scipy_loop:
        check("scipy", scipy_loop(x, y, offsets), ours)
        report.add(
            case, "scipy spearmanr loop", best_ms(lambda: scipy_loop(x, y, offsets), 1), t_ours
        )


def single_case(report: Report, n: int, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(7)
    x = np.round(rng.random(n), 1)
    y = np.round(0.5 * x + 0.5 * rng.random(n), 1)
    case = f"1 group x {n:,} rows"
    print(f"{case} (target <= 100 ms)")
    ours = np.array([stats.spearman(x, y)])
    t_ours = best_ms(lambda: stats.spearman(x, y), args.repeat)
    report.add(case, "relgate spearman", t_ours, None)
    df = polars_frame(x, y, np.array([0, n]))
    check("polars", polars_spearman(df), ours)
    report.add(
        case,
        "polars group_by corr(spearman)",
        best_ms(lambda: polars_spearman(df), max(1, args.repeat // 2)),
        t_ours,
    )

    def numpy_one() -> float:
        return float(np.corrcoef(sps.rankdata(x), sps.rankdata(y))[0, 1])

    check("numpy", np.array([numpy_one()]), ours)
    report.add(case, "numpy rankdata+corrcoef", best_ms(numpy_one, 1), t_ours)


def bootstrap_case(report: Report, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.random(200), 1)
    y = np.round(0.5 * x + 0.5 * rng.random(200), 1)
    offsets = np.array([0, 200])
    case = "bootstrap 1,000 x 200 rows"
    print(f"{case} (target <= 1 ms)")

    def ours(method: str) -> Callable[[], Any]:
        return lambda: stats.bootstrap_ci_grouped(
            x,
            y,
            offsets,
            n_resamples=1000,
            method=method,  # type: ignore[arg-type]
        )

    t_ours = best_ms(ours("percentile"), args.repeat * 5)
    report.add(case, "relgate percentile CI", t_ours, None)
    report.add(case, "relgate BCa CI", best_ms(ours("bca"), args.repeat * 5), t_ours)
    ci = stats.bootstrap_ci_grouped(x, y, offsets, n_resamples=1000)
    lo, hi = numpy_bootstrap(x, y, 1000)
    # Different random streams: the intervals agree only to Monte Carlo error.
    if abs(lo - ci.low[0]) > 0.05 or abs(hi - ci.high[0]) > 0.05:
        raise SystemExit(f"bootstrap intervals disagree: numpy {lo, hi} vs relgate {ci}")
    report.add(
        case,
        "numpy vectorized resamples",
        best_ms(lambda: numpy_bootstrap(x, y, 1000), args.repeat),
        t_ours,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--skip-scipy-loop", action="store_true")
    args = ap.parse_args()
    print(
        f"cores={os.cpu_count()} RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', '-')} "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')} numpy={np.__version__} "
        f"polars={pl.__version__}"
    )
    print("ratio = competitor time / relgate time (above 1: relgate faster)\n")
    report = Report()
    grouped_case(report, 10_000, 50, 5.0, args)
    grouped_case(report, 100, 10_000, None, args)
    single_case(report, 10_000_000, args)
    bootstrap_case(report, args)
    # Not a target: the continuous-score shape, where ranks need a sort per group.
    grouped_case(report, 10_000, 50, None, args, judge_scores=True)


if __name__ == "__main__":
    main()
