"""Judge calibration: how much this judge can show on each slice of this suite.

Per slice, human-graded good answers stand in for a release's answers and rho_S is computed as
for a release: that rho is ``ceiling_S``. Which good answers:

- given ``good_answers`` (item_id -> text, e.g. TruthfulQA's best answers, which the adapter
  held out of the references), those, scored against all of the item's rows except a row whose
  reference is the very same text;
- otherwise, leave one out from the suite itself: per item, the reference with the highest grade
  (ties: the longest text, the most complete statement; then the smallest sha256 of the text, so
  the choice does not depend on row order) becomes the answer and its own row is left out.

The artifact (``Calibration``) is versioned and content-addressed: judge sha256, suite sha256,
method, bootstrap settings, and per slice: ceiling rho with its item-cluster bootstrap CI,
Kendall tau-b with its CI, and n (rows, items).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from relgate.answers import Answers
from relgate.canonical import canonical_sha256, text_sha256
from relgate.errors import GateError, InvalidInputError
from relgate.gate.statistic import kendall_grouped, slice_statistics
from relgate.judge.base import Judge
from relgate.judge.cache import RowProgress, ScoreCache, score_rows
from relgate.suite import Suite

__all__ = ["CALIBRATION_FORMAT", "Calibration", "SliceCalibration", "calibrate", "good_answers"]

CALIBRATION_FORMAT = "relgate.calibration/v1"


@dataclass(frozen=True)
class SliceCalibration:
    """Ceiling of one slice."""

    slice: str
    n_rows: int
    n_items: int
    rho: float
    rho_low: float
    rho_high: float
    kendall_tau_b: float
    kendall_low: float = math.nan
    kendall_high: float = math.nan


@dataclass(frozen=True)
class Calibration:
    """A judge's per-slice ceiling on a suite (see the module docstring)."""

    judge_sha256: str
    suite_sha256: str
    method: str
    answers_sha256: str
    n_resamples: int
    confidence: float
    seed: int
    slices: tuple[SliceCalibration, ...]

    def for_slice(self, name: str) -> SliceCalibration | None:
        """The calibration of slice ``name`` (None when the suite had no such slice)."""
        return next((s for s in self.slices if s.slice == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN written as null)."""
        body = asdict(self)
        body["format"] = CALIBRATION_FORMAT
        body["slices"] = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in s.items()}
            for s in body["slices"]
        ]
        return body

    @property
    def sha256(self) -> str:
        """SHA-256 of the RFC 8785 form of ``to_dict``: the artifact's identity."""
        return canonical_sha256(self.to_dict())

    def write(self, path: str | Path) -> Path:
        """Write as JSON (with its sha256 beside the body)."""
        path = Path(path)
        path.write_text(json.dumps({**self.to_dict(), "sha256": self.sha256}, indent=2) + "\n")
        return path

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Calibration:
        """Inverse of ``to_dict``; checks the format and, when present, the sha256."""
        if body.get("format") != CALIBRATION_FORMAT:
            raise InvalidInputError(f"calibration: format must be {CALIBRATION_FORMAT!r}")

        def num(value: Any) -> float:
            return math.nan if value is None else float(value)

        try:
            slices = tuple(
                SliceCalibration(
                    slice=str(s["slice"]),
                    n_rows=int(s["n_rows"]),
                    n_items=int(s["n_items"]),
                    rho=num(s["rho"]),
                    rho_low=num(s["rho_low"]),
                    rho_high=num(s["rho_high"]),
                    kendall_tau_b=num(s["kendall_tau_b"]),
                    kendall_low=num(s.get("kendall_low")),
                    kendall_high=num(s.get("kendall_high")),
                )
                for s in body["slices"]
            )
            cal = cls(
                judge_sha256=str(body["judge_sha256"]),
                suite_sha256=str(body["suite_sha256"]),
                method=str(body["method"]),
                answers_sha256=str(body["answers_sha256"]),
                n_resamples=int(body["n_resamples"]),
                confidence=float(body["confidence"]),
                seed=int(body["seed"]),
                slices=slices,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"calibration: malformed artifact ({exc!r})") from exc
        if "sha256" in body and body["sha256"] != cal.sha256:
            raise InvalidInputError("calibration: content does not match its sha256")
        return cal

    @classmethod
    def read(cls, path: str | Path) -> Calibration:
        """Read a calibration written by ``write``."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def good_answers(suite: Suite) -> tuple[dict[str, str], npt.NDArray[np.bool_]]:
    """The leave-one-out choice: (item_id -> answer, mask of the rows kept)."""
    frame = suite.frame.with_row_index("row").with_columns(
        pl.col("reference").str.len_chars().alias("_len"),
        pl.col("reference").map_elements(text_sha256, return_dtype=pl.String).alias("_sha"),
    )
    chosen = frame.sort(
        ["item_id", "human_grade", "_len", "_sha"], descending=[False, True, True, False]
    ).unique("item_id", keep="first")
    keep = np.ones(suite.n_rows, dtype=np.bool_)
    keep[chosen["row"].to_numpy()] = False
    answers = dict(zip(chosen["item_id"].to_list(), chosen["reference"].to_list(), strict=True))
    return answers, keep


def calibrate(
    suite: Suite,
    judge: Judge,
    *,
    answers: dict[str, str] | None = None,
    cache: ScoreCache | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    progress: RowProgress | None = None,
) -> Calibration:
    """Measure ``ceiling_S`` for every slice of ``suite`` with ``judge``; ``progress`` sees
    the judged rows (``score_rows``)."""
    refs = suite.frame["reference"].to_list()
    items = suite.frame["item_id"].to_list()
    if answers is None:
        chosen, keep = good_answers(suite)
        method = "leave-one-out: top-graded, longest reference per item"
    else:
        missing = sorted(set(items) - set(answers))
        if missing:
            raise GateError(f"calibration: no good answer for item(s) {', '.join(missing[:5])}")
        chosen = dict(answers)
        keep = np.array([answers[i] != r for i, r in zip(items, refs, strict=True)])
        method = "given good answers, identical references left out"
    rows = np.flatnonzero(keep)
    x = score_rows(
        judge,
        [items[i] for i in rows],
        [chosen[items[i]] for i in rows],
        [refs[i] for i in rows],
        cache,
        progress=progress,
    )
    y = suite.grades()[rows]
    # Offsets and clusters of the kept rows (rows stay sorted by slice).
    slice_index = np.searchsorted(suite.offsets, rows, side="right") - 1
    counts = np.bincount(slice_index, minlength=len(suite.slices))
    offsets = np.zeros(len(suite.slices) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(counts)
    clusters = suite.clusters[rows]
    stats = slice_statistics(
        suite.slices,
        x,
        y,
        offsets,
        clusters,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    taus, tau_lows, tau_highs = kendall_grouped(
        x, y, offsets, clusters, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    slices = tuple(
        SliceCalibration(
            slice=s.slice,
            n_rows=s.n_rows,
            n_items=s.n_items,
            rho=s.rho,
            rho_low=s.rho_low,
            rho_high=s.rho_high,
            kendall_tau_b=float(t),
            kendall_low=float(t_lo),
            kendall_high=float(t_hi),
        )
        for s, t, t_lo, t_hi in zip(stats, taus, tau_lows, tau_highs, strict=True)
    )
    answers_sha = Answers(chosen).sha256
    return Calibration(
        judge_sha256=judge.judge_sha256,
        suite_sha256=suite.sha256,
        method=method,
        answers_sha256=answers_sha,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        slices=slices,
    )
