"""Holm / Benjamini-Hochberg against reference implementations written here, and every
bad-input case raising InvalidInputError with a message naming the problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relgate import stats
from relgate.errors import InvalidInputError


def ref_holm(p: np.ndarray) -> np.ndarray:
    out = np.full(len(p), np.nan)
    idx = [i for i in np.argsort(p, kind="stable") if not np.isnan(p[i])]
    m, running = len(idx), 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def ref_bh(p: np.ndarray) -> np.ndarray:
    out = np.full(len(p), np.nan)
    idx = [i for i in np.argsort(p, kind="stable") if not np.isnan(p[i])]
    m = len(idx)
    for rank, i in enumerate(idx):
        out[i] = min(min(1.0, m / (k + 1) * p[idx[k]]) for k in range(rank, m))
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(0, 1), st.just(float("nan")), st.sampled_from([0.01, 0.05])),
        max_size=40,
    )
)
def test_adjustments_match_reference(pvals: list[float]) -> None:
    p = np.array(pvals, dtype=np.float64)
    np.testing.assert_allclose(stats.holm(p), ref_holm(p), rtol=1e-12, atol=0)
    np.testing.assert_allclose(stats.benjamini_hochberg(p), ref_bh(p), rtol=1e-12, atol=0)


def test_adjustment_known_values() -> None:
    p = [0.01, 0.04, np.nan, 0.03, 0.005]
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, np.nan, 0.06, 0.02])
    np.testing.assert_allclose(stats.benjamini_hochberg(p), [0.02, 0.04, np.nan, 0.04, 0.02])


X = np.array([0.1, 0.2, 0.3, 0.4])
Y = np.array([1.0, 0.0, 1.0, 1.0])
OFF = np.array([0, 2, 4])
ITEMS = np.array([0, 0, 1, 1])

ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    ("length", lambda: stats.spearman(X, Y[:3]), "length mismatch"),
    ("length-k", lambda: stats.kendall_tau_b(X[:2], Y), "length mismatch"),
    ("policy", lambda: stats.spearman(X, Y, nan_policy="raise"), "nan_policy"),  # type: ignore[arg-type]
    ("policy-g", lambda: stats.kendall_tau_b_grouped(X, Y, OFF, "drop"), "nan_policy"),  # type: ignore[arg-type]
    ("2d", lambda: stats.spearman(np.ones((2, 2)), Y), "1-D"),
    ("strings", lambda: stats.spearman(np.array(["a", "b"]), [1, 2]), "numeric"),
    ("objects", lambda: stats.spearman([1, None], [1, 2]), "numeric"),
    ("complex", lambda: stats.spearman(np.ones(2, complex), [1, 2]), "numeric"),
    ("offsets-empty", lambda: stats.spearman_grouped(X, Y, np.array([], np.int64)), "offsets"),
    ("offsets-start", lambda: stats.spearman_grouped(X, Y, [1, 4]), "start at 0"),
    ("offsets-order", lambda: stats.spearman_grouped(X, Y, [0, 3, 2, 4]), "non-decreasing"),
    ("offsets-range", lambda: stats.spearman_grouped(X, Y, [0, 2, 5]), "out of range"),
    ("offsets-short", lambda: stats.spearman_grouped(X, Y, [0, 2]), "out of range"),
    ("offsets-float", lambda: stats.spearman_grouped(X, Y, [0.0, 4.0]), "integer"),
    ("grouped-len", lambda: stats.spearman_grouped(X, Y[:3], [0, 3]), "length mismatch"),
    (
        "method",
        lambda: stats.bootstrap_ci_grouped(X, Y, OFF, method="basic"),  # type: ignore[arg-type]
        "method",
    ),
    (
        "statistic",
        lambda: stats.bootstrap_ci_grouped(X, Y, OFF, statistic="pearson"),  # type: ignore[arg-type]
        "statistic",
    ),
    ("conf-1", lambda: stats.bootstrap_ci_grouped(X, Y, OFF, confidence=1.0), "confidence"),
    ("conf-0", lambda: stats.bootstrap_ci_grouped(X, Y, OFF, confidence=0.0), "confidence"),
    ("conf-nan", lambda: stats.bootstrap_ci_grouped(X, Y, OFF, confidence=np.nan), "confidence"),
    ("resamples", lambda: stats.bootstrap_ci_grouped(X, Y, OFF, n_resamples=0), "n_resamples"),
    ("seed", lambda: stats.bootstrap_ci_grouped(X, Y, OFF, seed=-1), "seed"),
    ("clusters-len", lambda: stats.bootstrap_ci_grouped(X, Y, OFF, clusters=[0, 1]), "clusters"),
    ("clusters-type", lambda: stats.bootstrap_ci_grouped(X, Y, OFF, clusters=X), "integer"),
    ("boot-offsets", lambda: stats.bootstrap_ci_grouped(X, Y, [0, 5]), "out of range"),
    ("paired-len", lambda: stats.paired_bootstrap_diff(X, X[:3], Y, OFF, ITEMS), "x_old"),
    ("paired-items", lambda: stats.paired_bootstrap_diff(X, X, Y, OFF, ITEMS[:3]), "clusters"),
    (
        "paired-conf",
        lambda: stats.paired_bootstrap_diff(X, X, Y, OFF, ITEMS, confidence=2.0),
        "confidence",
    ),
    (
        "paired-resamples",
        lambda: stats.paired_bootstrap_diff(X, X, Y, OFF, ITEMS, n_resamples=0),
        "n_resamples",
    ),
    (
        "paired-margin",
        lambda: stats.paired_bootstrap_diff(X, X, Y, OFF, ITEMS, margin=np.inf),
        "margin",
    ),
    ("fisher-conf", lambda: stats.fisher_z_ci([0.5], [10], confidence=1.5), "confidence"),
    ("fisher-shape", lambda: stats.fisher_z_ci([0.5, 0.1], [10, 20, 30]), "broadcast"),
    ("holm-range", lambda: stats.holm([0.5, 1.5]), "[0, 1]"),
    ("bh-range", lambda: stats.benjamini_hochberg([-0.1]), "[0, 1]"),
]


@pytest.mark.parametrize(("name", "call", "needle"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_invalid_input(name: str, call: Callable[[], Any], needle: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert needle in str(info.value), str(info.value)
