"""Bootstrap intervals and the paired item-cluster bootstrap: determinism across thread
counts, consistency with the point statistics, BCa close to scipy.stats.bootstrap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from relgate import stats
from scipy import stats as sps


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    items = np.repeat(np.arange(n // 4), 4)
    grade = (rng.random(len(items)) < 0.4).astype(np.float64)
    x_old = np.round(np.clip(grade * 0.5 + rng.random(len(items)) * 0.6, 0, 1), 1)
    x_new = np.round(np.clip(grade * 0.3 + rng.random(len(items)) * 0.6, 0, 1), 1)
    return x_new, x_old, grade, items.astype(np.int64)


def test_ci_brackets_estimate_and_matches_point_statistic() -> None:
    x, _, y, _ = _data(800, 0)
    offsets = np.array([0, 200, 800])
    for statistic in ("spearman", "kendall_tau_b"):
        for method in ("percentile", "bca"):
            ci = stats.bootstrap_ci_grouped(
                x, y, offsets, statistic=statistic, method=method, n_resamples=500
            )
            point = (
                stats.spearman_grouped(x, y, offsets)
                if statistic == "spearman"
                else stats.kendall_tau_b_grouped(x, y, offsets)
            )
            np.testing.assert_array_equal(ci.estimate, point)
            assert np.all(ci.low < ci.estimate) and np.all(ci.estimate < ci.high)
            np.testing.assert_array_equal(ci.n, [200, 600])


def test_same_seed_same_result_other_seed_differs() -> None:
    x, _, y, items = _data(400, 1)
    offsets = np.array([0, 400])
    a = stats.bootstrap_ci_grouped(x, y, offsets, seed=3, clusters=items)
    b = stats.bootstrap_ci_grouped(x, y, offsets, seed=3, clusters=items)
    c = stats.bootstrap_ci_grouped(x, y, offsets, seed=4, clusters=items)
    np.testing.assert_array_equal(a.low, b.low)
    np.testing.assert_array_equal(a.high, b.high)
    assert (a.low[0], a.high[0]) != (c.low[0], c.high[0])


def test_cluster_resampling_widens_interval_for_duplicated_rows() -> None:
    # Every item contributes 4 identical rows: resampling rows pretends to have 4x the
    # information, resampling items does not.
    rng = np.random.default_rng(2)
    base_x = np.round(rng.random(100), 1)
    base_y = np.round(base_x * 0.5 + rng.random(100) * 0.5, 1)
    x, y = np.repeat(base_x, 4), np.repeat(base_y, 4)
    items = np.repeat(np.arange(100), 4).astype(np.int64)
    offsets = np.array([0, 400])
    rows = stats.bootstrap_ci_grouped(x, y, offsets, n_resamples=2000)
    clustered = stats.bootstrap_ci_grouped(x, y, offsets, n_resamples=2000, clusters=items)
    width_rows = rows.high[0] - rows.low[0]
    width_items = clustered.high[0] - clustered.low[0]
    assert width_items > 1.5 * width_rows


_SCRIPT = """
import json, numpy as np
from relgate import stats
rng = np.random.default_rng(0)
n = 2000
items = np.repeat(np.arange(n // 4), 4).astype(np.int64)
y = (rng.random(n) < 0.5).astype(float)
x_new = np.round(y * 0.3 + rng.random(n) * 0.6, 1)
x_old = np.round(y * 0.4 + rng.random(n) * 0.6, 1)
off = np.array([0, 100, 700, 701, 2000])
out = {}
for m in ("percentile", "bca"):
    ci = stats.bootstrap_ci_grouped(x_new, y, off, method=m, n_resamples=300, clusters=items)
    out[m] = [a.tobytes().hex() for a in (ci.estimate, ci.low, ci.high)]
d = stats.paired_bootstrap_diff(x_new, x_old, y, off, items, n_resamples=300, margin=0.05)
out["paired"] = [a.tobytes().hex() for a in (d.estimate, d.low, d.high, d.p_value)]
print(json.dumps(out))
"""


def test_results_identical_for_any_thread_count() -> None:
    outs = []
    for threads in ("1", "2", "3"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        proc = subprocess.run(
            [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        outs.append(json.loads(proc.stdout))
    assert outs[0] == outs[1] == outs[2]


def test_bca_close_to_scipy_bootstrap() -> None:
    rng = np.random.default_rng(5)
    x = np.round(rng.random(150), 1)
    y = np.round(x * 0.6 + rng.random(150) * 0.6, 1)

    def rho(a: np.ndarray, b: np.ndarray) -> float:
        return float(sps.spearmanr(a, b)[0])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sps.bootstrap(
            (x, y),
            rho,
            paired=True,
            vectorized=False,
            n_resamples=3000,
            method="BCa",
            confidence_level=0.9,
            rng=np.random.default_rng(0),
        )
    ours = stats.bootstrap_ci_grouped(
        x, y, np.array([0, 150]), method="bca", n_resamples=3000, confidence=0.9
    )
    # Different random streams: agreement to Monte Carlo error.
    assert ours.low[0] == pytest.approx(ref.confidence_interval.low, abs=0.03)
    assert ours.high[0] == pytest.approx(ref.confidence_interval.high, abs=0.03)
    pct = stats.bootstrap_ci_grouped(
        x, y, np.array([0, 150]), method="percentile", n_resamples=3000, confidence=0.9
    )
    assert (ours.low[0], ours.high[0]) != (pct.low[0], pct.high[0])


def test_nan_rows_are_omitted_and_undefined_groups_are_nan() -> None:
    x = np.array([1.0, 1.0, 1.0, np.nan, 0.2, 0.4, 0.1, 0.9, 0.5])
    y = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 3.0, 2.0, np.nan, 0.0])
    ci = stats.bootstrap_ci_grouped(x, y, np.array([0, 3, 9]))
    assert np.isnan(ci.estimate[0]) and np.isnan(ci.low[0]) and np.isnan(ci.high[0])
    np.testing.assert_array_equal(ci.n, [3, 4])
    assert ci.estimate[1] == pytest.approx(sps.spearmanr([0.2, 0.4, 0.1, 0.5], [1, 3, 2, 0])[0])


def test_paired_semantics() -> None:
    x_new, x_old, y, items = _data(2000, 7)
    offsets = np.array([0, 2000])
    same = stats.paired_bootstrap_diff(x_old, x_old, y, offsets, items, n_resamples=200)
    assert (same.estimate[0], same.low[0], same.high[0]) == (0.0, 0.0, 0.0)
    assert same.p_value[0] == 1.0  # every resampled diff is 0 <= -0
    loose = stats.paired_bootstrap_diff(
        x_old, x_old, y, offsets, items, n_resamples=200, margin=0.05
    )
    assert loose.p_value[0] == pytest.approx(1 / 201)
    worse = stats.paired_bootstrap_diff(x_new, x_old, y, offsets, items, n_resamples=500)
    assert worse.estimate[0] == stats.spearman(x_new, y) - stats.spearman(x_old, y)
    assert worse.high[0] < 0 < worse.p_value[0]
    assert worse.p_value[0] > 0.9
    better = stats.paired_bootstrap_diff(x_old, x_new, y, offsets, items, n_resamples=500)
    assert better.low[0] > 0 and better.p_value[0] < 0.01
    assert better.n[0] == 2000


def test_fisher_z_ci() -> None:
    rho = np.array([0.5, -0.2, np.nan, 0.3, 1.0])
    n = np.array([50, 30, 40, 3, 20])
    lo, hi = stats.fisher_z_ci(rho, n, confidence=0.9)
    z = sps.norm.ppf(0.95)
    want_lo = np.tanh(np.arctanh(rho[:2]) - z / np.sqrt(n[:2] - 3))
    want_hi = np.tanh(np.arctanh(rho[:2]) + z / np.sqrt(n[:2] - 3))
    np.testing.assert_allclose(lo[:2], want_lo, rtol=1e-12)
    np.testing.assert_allclose(hi[:2], want_hi, rtol=1e-12)
    assert np.isnan(lo[2]) and np.isnan(hi[3])
    assert lo[4] == hi[4] == 1.0
    lo1, hi1 = stats.fisher_z_ci(0.5, 50)
    assert lo1.shape == (1,) and lo1[0] < 0.5 < hi1[0]


def test_the_two_tails_of_the_paired_bootstrap_and_the_threshold_test() -> None:
    rng = np.random.default_rng(8)
    n_items = 40
    y = np.tile(np.array([1.0, 1.0, 0.0, 0.0]), n_items)
    items = np.repeat(np.arange(n_items), 4)
    x_old = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.15, y.size), 0, 1)
    x_worse = np.clip(0.3 + 0.1 * y + rng.normal(0, 0.15, y.size), 0, 1)
    off = np.array([0, y.size])
    worse = stats.paired_bootstrap_diff(x_worse, x_old, y, off, items, n_resamples=500, margin=0.05)
    # Shown worse: tiny p_worse, and non-inferiority not shown.
    assert worse.high[0] < -0.05 and worse.p_worse[0] == pytest.approx(1 / 501)
    assert worse.p_value[0] > 0.99
    same = stats.paired_bootstrap_diff(x_old, x_old, y, off, items, n_resamples=500, margin=0.05)
    assert same.p_worse[0] == 1.0 and same.p_value[0] == pytest.approx(1 / 501)
    rho = stats.spearman(x_old, y)
    ci = stats.bootstrap_ci_grouped(
        x_old, y, off, clusters=items, n_resamples=500, thresholds=np.array([rho + 1.0])
    )
    assert ci.p_below[0] == pytest.approx(1 / 501)  # every resample is below rho + 1
    ci = stats.bootstrap_ci_grouped(
        x_old, y, off, clusters=items, n_resamples=500, thresholds=np.array([-1.0])
    )
    assert ci.p_below[0] == 1.0
    assert np.isnan(stats.bootstrap_ci_grouped(x_old, y, off).p_below[0])
