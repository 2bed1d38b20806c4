"""relgate.stats Spearman / Kendall tau-b against scipy: ties, tiny, constant, NaN (both
policies), infinities, signed zeros, large inputs, grouped, and input dtypes."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relgate import stats
from scipy import stats as sps

TOL = 1e-12


def ref_spearman(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input; we return NaN
        return float(sps.spearmanr(x, y)[0])


def ref_kendall(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(sps.kendalltau(x, y, variant="b")[0])


def same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or abs(a - b) <= TOL


CASES = {
    "ties": ([1, 2, 2, 3, 4, 4, 4, 5], [2, 1, 3, 3, 5, 4, 4, 6]),
    "two": ([1.0, 2.0], [3.0, 1.0]),
    "three": ([0.5, 0.1, 0.9], [1.0, 0.0, 1.0]),
    "grades": ([0.9, 0.8, 0.1, 0.2, 0.85, 0.15], [1, 1, 0, 0, 1, 0]),
    "signed_zeros": ([0.0, -0.0, 1.0, -1.0, 0.0], [1.0, 2.0, 3.0, 0.0, 2.0]),
    "infinities": ([-np.inf, 0.0, np.inf, 1.0, np.inf], [0.0, 1.0, 3.0, 1.0, 2.0]),
    "reversed": ([1, 2, 3, 4], [4, 3, 2, 1]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_scipy_on_reference_cases(name: str) -> None:
    x, y = (np.asarray(v, dtype=np.float64) for v in CASES[name])
    assert same(stats.spearman(x, y), ref_spearman(x, y))
    assert same(stats.kendall_tau_b(x, y), ref_kendall(x, y))


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([], []),
        ([1.0], [2.0]),
        ([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]),
        ([0.0, -0.0, 0.0], [1.0, 2.0, 3.0]),
        ([1.0, 2.0, 3.0], [np.inf, np.inf, np.inf]),
    ],
)
def test_undefined_is_nan_not_zero_or_error(x: list[float], y: list[float]) -> None:
    for f in (stats.spearman, stats.kendall_tau_b):
        assert np.isnan(f(x, y))
        assert np.isnan(f(y, x))


def test_nan_policies() -> None:
    x = np.array([1.0, np.nan, 3.0, 4.0, 5.0, 2.0])
    y = np.array([2.0, 1.0, np.nan, 3.0, 5.0, 1.0])
    keep = ~(np.isnan(x) | np.isnan(y))
    for f, ref in ((stats.spearman, ref_spearman), (stats.kendall_tau_b, ref_kendall)):
        assert np.isnan(f(x, y))
        assert np.isnan(f(x, y, nan_policy="propagate"))
        assert same(f(x, y, nan_policy="omit"), ref(x[keep], y[keep]))
    # Omitting down to fewer than two pairs is undefined, not an error.
    assert np.isnan(stats.spearman([np.nan, 1.0, 2.0], [1.0, np.nan, 2.0], nan_policy="omit"))


@pytest.mark.parametrize("n", [300, 100_000, 400_000])
@pytest.mark.parametrize("kind", ["grid", "wide", "continuous"])
def test_large_inputs(n: int, kind: str) -> None:
    rng = np.random.default_rng(n)
    base = rng.random(n)
    x = {
        "grid": np.round(base, 1),
        "wide": np.round(base * 300),
        "continuous": base,
    }[kind]
    y = np.round(base + rng.random(n), 1)
    assert same(stats.spearman(x, y), ref_spearman(x, y))
    if n <= 100_000:
        assert same(stats.kendall_tau_b(x, y), ref_kendall(x, y))


values = st.one_of(
    st.sampled_from([0.0, -0.0, 0.1, 0.2, 0.5, 1.0, np.inf, -np.inf]),
    st.floats(-1e9, 1e9, allow_nan=False),
    st.integers(0, 4).map(float),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(values, values), max_size=60))
def test_hypothesis_matches_scipy(pairs: list[tuple[float, float]]) -> None:
    x = np.array([p[0] for p in pairs], dtype=np.float64)
    y = np.array([p[1] for p in pairs], dtype=np.float64)
    assert same(stats.spearman(x, y), ref_spearman(x, y))
    assert same(stats.kendall_tau_b(x, y), ref_kendall(x, y))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 30), max_size=25),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["propagate", "omit"]),
)
def test_grouped_matches_scipy_per_group(sizes: list[int], seed: int, policy: str) -> None:
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    x = np.round(rng.random(n), 1)
    y = np.round(rng.random(n) * 4)
    if n:
        x[rng.integers(0, n, size=max(1, n // 20))] = np.nan
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rho = stats.spearman_grouped(x, y, offsets, nan_policy=policy)  # type: ignore[arg-type]
    tau = stats.kendall_tau_b_grouped(x, y, offsets, nan_policy=policy)  # type: ignore[arg-type]
    assert rho.dtype == np.float64 and rho.shape == (len(sizes),)
    for g, (a, b) in enumerate(itertools.pairwise(offsets)):
        gx, gy = x[a:b], y[a:b]
        if policy == "omit":
            keep = ~(np.isnan(gx) | np.isnan(gy))
            gx, gy = gx[keep], gy[keep]
        elif np.isnan(gx).any():
            assert np.isnan(rho[g]) and np.isnan(tau[g])
            continue
        assert same(rho[g], ref_spearman(gx, gy))
        assert same(tau[g], ref_kendall(gx, gy))


def test_grouped_mixed_sizes_match_scipy() -> None:
    rng = np.random.default_rng(1)
    sizes = [50] * 300 + [5000, 0, 1, 2, 300_000, 50]
    n = sum(sizes)
    x = np.round(rng.random(n), 1)
    y = np.round(x + rng.random(n), 1)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rho = stats.spearman_grouped(x, y, offsets)
    for g in [0, 299, 300, 301, 302, 303, 304, 305]:
        a, b = offsets[g], offsets[g + 1]
        assert same(rho[g], ref_spearman(x[a:b], y[a:b]))


def test_dtypes_and_layouts_are_converted() -> None:
    x = np.array([3, 1, 2, 5, 4, 4], dtype=np.int32)
    y = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    want = ref_spearman(x.astype(float), y.astype(float))
    assert same(stats.spearman(x, y), want)
    assert same(stats.spearman(x.astype(np.float32), y.astype(np.uint8)), want)
    assert same(stats.spearman(list(x), list(y)), want)
    big = np.arange(40, dtype=np.float64)[::-1]
    strided = big[::2]  # non-contiguous view
    assert not strided.flags.c_contiguous
    assert stats.spearman(strided, np.arange(20.0)) == -1.0
    offsets = np.array([0, 10, 20], dtype=np.int32)
    rho = stats.spearman_grouped(strided, np.arange(20.0), offsets)
    np.testing.assert_array_equal(rho, [-1.0, -1.0])
