"""Builders for constructed gate cases: per-row scores and calibrations made by hand, so each
verdict rule can be driven exactly (no judge involved)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from relgate.gate import Calibration, GateScores, SliceCalibration

SUITE_SHA = "a" * 64
JUDGE_SHA = "b" * 64


def graded_slice(
    n_items: int, rows_per_item: int = 4, seed: int = 0, noise: float = 0.3
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(x, y, item ids) where x tracks the grade y with some noise: rho clearly > 0."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.array([1.0, 1.0, 0.0, 0.0][:rows_per_item]), n_items)
    x = np.clip(0.5 * y + 0.25 + rng.normal(0.0, noise, y.size) * 0.5, 0.0, 1.0)
    items = [f"i{k}" for k in range(n_items) for _ in range(rows_per_item)]
    return x, y, items


def make_scores(
    slices: dict[str, tuple[Sequence[float], Sequence[float] | None, Sequence[float], list[str]]],
) -> GateScores:
    """GateScores from {slice: (x_candidate, x_previous or None, human_grade, item ids)}."""
    frames = []
    has_prev = any(v[1] is not None for v in slices.values())
    for name in sorted(slices):
        x, prev, y, items = slices[name]
        frames.append(
            pl.DataFrame(
                {
                    "item_id": [f"{name}/{i}" for i in items],
                    "slice": [name] * len(items),
                    "reference_sha256": [f"r{k}" for k in range(len(items))],
                    "human_grade": np.asarray(y, dtype=np.float64),
                    "x_candidate": np.asarray(x, dtype=np.float64),
                    "x_previous": pl.Series(
                        [None] * len(items) if prev is None else list(prev), dtype=pl.Float64
                    ),
                }
            )
        )
    return GateScores(
        rows=pl.concat(frames),
        suite_sha256=SUITE_SHA,
        judge_sha256=JUDGE_SHA,
        candidate_sha256="c" * 64,
        previous_sha256="d" * 64 if has_prev else None,
    )


def make_calibration(ceilings: dict[str, tuple[float, float]]) -> Calibration:
    """A calibration with {slice: (ceiling rho, its CI low)}."""
    return Calibration(
        judge_sha256=JUDGE_SHA,
        suite_sha256=SUITE_SHA,
        method="constructed",
        answers_sha256="e" * 64,
        n_resamples=100,
        confidence=0.95,
        seed=0,
        slices=tuple(
            SliceCalibration(
                slice=name,
                n_rows=100,
                n_items=25,
                rho=rho,
                rho_low=low,
                rho_high=min(1.0, rho + 0.1),
                kendall_tau_b=rho * 0.8,
            )
            for name, (rho, low) in ceilings.items()
        ),
    )
