"""Trace-replay quality for a checkpoint: the gate's statistic on production traces.

For each slice, up to ``cap`` recent traces are replayed through the candidate (the answers are
given to this function; fetching them is the caller's I/O). Each replayed trace gets graded
references:

- the stable release's served answer, graded 1 (or the trace's feedback grade when a user
  graded it), and
- the slice's negative anchors (the suite's human-graded-bad answers plus hedges), graded 0.

The judge scores ``agree(answer, reference)`` for the candidate's answers and, the same way, for
the stable release's answers. Per slice, ``rho = Spearman(agree, grade)`` over the slice's
rows (``relgate.stats.spearman_grouped``, tie-averaged ranks, one group per slice), the ceiling is
the stable answers' rho, and ``q = rho / ceiling`` as at the gate.

Noise-aware ceiling: with ``stable_rerun`` (the stable release *re-answering* the same traces),
the stable arm is that second stable answer, not the served text. A model with sampling on
words every answer differently; the served text scored against itself agrees perfectly, so an
identical candidate (another sample of the same model) would look worse than the stable
release. A rerun has the same relation to the served text as an A/A candidate, so A/A gives
q ~ 1 and paired differences centred on 0. With a rerun each slice also carries one paired
difference per trace (``relgate.rollout.sequential``: candidate minus rerun, on how much closer
each is to the served answer than to the bad anchors), the input of the sequential test.
Traces without a rerun answer are left out of both arms.

A judge that raises, or returns the wrong shape or non-finite scores, yields a reading with
``judge_error`` set: the quality monitor reads it as INCONCLUSIVE, never as success.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from relgate.canonical import canonical_json, sha256_hex
from relgate.errors import InvalidInputError, JudgeError, RelgateError
from relgate.rollout.monitors import QualityReading, SliceQuality
from relgate.rollout.sequential import paired_margin
from relgate.traces import Trace

__all__ = [
    "ReplayTrace",
    "ScoreFn",
    "SpearmanFn",
    "replay_quality",
    "replayable",
    "select_recent",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ScoreFn = Callable[[Sequence[str], Sequence[str]], Any]
"""``score(answers, references) -> array`` of agreement in [0, 1], one per pair."""
SpearmanFn = Callable[[FloatArray, FloatArray, IntArray], Any]
"""``spearman(x, y, offsets) -> array`` of per-group Spearman rho (NaN when undefined)."""


@dataclass(frozen=True, slots=True)
class ReplayTrace:
    """What replay needs of one production trace served by the stable release."""

    trace_id: str
    slice: str
    prompt: str
    stable_answer: str
    time: float
    feedback_grade: float | None = None


def replayable(traces: Iterable[Trace], stable_sha256: str) -> list[ReplayTrace]:
    """The gateway traces that can be replayed: served by the stable release with a 2xx status
    and an answer, not shadow traffic. The stable answer becomes a graded reference."""
    return [
        ReplayTrace(
            trace_id=t.id,
            slice=t.slice,
            prompt=t.prompt,
            stable_answer=t.answer,
            time=t.time,
            feedback_grade=t.feedback_grade,
        )
        for t in traces
        if t.release_sha256 == stable_sha256 and 200 <= t.status < 300 and not t.shadow and t.answer
    ]


def select_recent(traces: Iterable[ReplayTrace], cap: int) -> dict[str, list[ReplayTrace]]:
    """Up to ``cap`` most recent traces per slice (newest first; ties broken by trace id so
    the selection is deterministic)."""
    if cap < 1:
        raise InvalidInputError(f"replay cap must be >= 1, got {cap}")
    by_slice: dict[str, list[ReplayTrace]] = defaultdict(list)
    for t in traces:
        by_slice[t.slice].append(t)
    return {
        name: sorted(rows, key=lambda t: (-t.time, t.trace_id))[:cap]
        for name, rows in sorted(by_slice.items())
    }


def _default_spearman(x: FloatArray, y: FloatArray, offsets: IntArray) -> Any:
    # Resolved at call time: the native statistics live in relgate.stats (Rust), and the rest of
    # the rollout package must import where they are being rebuilt.
    stats = importlib.import_module("relgate.stats")
    return stats.spearman_grouped(x, y, offsets, nan_policy="propagate")


def replay_quality(
    traces_by_slice: Mapping[str, Sequence[ReplayTrace]],
    candidate_answers: Mapping[str, str],
    anchors: Mapping[str, Sequence[str]],
    score: ScoreFn,
    *,
    cap: int = 50,
    judge_sha256: str | None = None,
    spearman: SpearmanFn | None = None,
    stable_rerun: Mapping[str, str] | None = None,
) -> QualityReading:
    """Score the candidate against the stable release on replayed traces, per slice.

    ``candidate_answers`` maps trace id to the candidate's answer; traces without one (the
    candidate failed to answer) are left out of the rows and of ``n``. A slice with no anchors
    has constant grades, so its rho is NaN and its verdict INCONCLUSIVE: anchors are what make
    the statistic meaningful. ``stable_rerun`` maps trace id to the stable release's second
    answer (see the module docstring); without it the ceiling is the served text against itself
    (``ceiling_source`` "served") and no paired differences are given.
    """
    if cap < 1:
        raise InvalidInputError(f"replay cap must be >= 1, got {cap}")
    names: list[str] = []
    counts: list[int] = []
    offsets = [0]
    cand_rows: list[str] = []
    stable_rows: list[str] = []
    refs: list[str] = []
    grades: list[float] = []
    sample: dict[str, list[str]] = {}
    kept: dict[str, list[ReplayTrace]] = {}
    for name in sorted(traces_by_slice):
        chosen = [
            t
            for t in traces_by_slice[name][:cap]
            if t.trace_id in candidate_answers
            and (stable_rerun is None or t.trace_id in stable_rerun)
        ]
        if not chosen:
            continue
        negatives = list(anchors.get(name, ()))
        for t in chosen:
            if t.slice != name:
                raise InvalidInputError(
                    f"trace {t.trace_id} of slice {t.slice} listed under {name}"
                )
            grade = 1.0 if t.feedback_grade is None else float(t.feedback_grade)
            stable_text = t.stable_answer if stable_rerun is None else stable_rerun[t.trace_id]
            for ref, g in ((t.stable_answer, grade), *((a, 0.0) for a in negatives)):
                cand_rows.append(candidate_answers[t.trace_id])
                stable_rows.append(stable_text)
                refs.append(ref)
                grades.append(g)
        names.append(name)
        kept[name] = chosen
        counts.append(len(chosen))
        offsets.append(len(refs))
        sample[name] = sorted(t.trace_id for t in chosen)
    sample_sha = sha256_hex(canonical_json(sample))
    if not names:
        return QualityReading(judge_sha256=judge_sha256, sample_sha256=sample_sha)

    try:
        # One judge call for both arms: a remote judge pays its round trip once.
        raw = score([*cand_rows, *stable_rows], [*refs, *refs])
        scores = np.asarray(raw, dtype=np.float64).reshape(-1)
        if scores.shape != (2 * len(refs),):
            raise JudgeError(f"judge returned {scores.shape[0]} scores for {2 * len(refs)} pairs")
        if not np.all(np.isfinite(scores)):
            raise JudgeError("judge returned non-finite scores")
    except (RelgateError, OSError) as exc:
        # A judge failure (unreachable, timed out, malformed output) is evidence of nothing:
        # INCONCLUSIVE, with the error recorded so a human can see why the rollout paused. A
        # bug anywhere else is not swallowed as "inconclusive".
        return QualityReading(
            judge_error=f"{type(exc).__name__}: {exc}",
            judge_sha256=judge_sha256,
            sample_sha256=sample_sha,
        )

    fn = spearman or _default_spearman
    y = np.asarray(grades, dtype=np.float64)
    off = np.asarray(offsets, dtype=np.int64)
    half = len(refs)
    rho = np.asarray(fn(np.ascontiguousarray(scores[:half]), y, off), dtype=np.float64)
    ceiling = np.asarray(fn(np.ascontiguousarray(scores[half:]), y, off), dtype=np.float64)
    paired = _paired_diffs(names, kept, scores, offsets) if stable_rerun is not None else {}
    source = "served" if stable_rerun is None else "rerun"
    slices = tuple(
        SliceQuality(
            slice=name,
            n=counts[i],
            rho=float(rho[i]),
            ceiling=float(ceiling[i]),
            ceiling_source=source,
            diffs=paired.get(name, ()),
        )
        for i, name in enumerate(names)
    )
    return QualityReading(slices=slices, judge_sha256=judge_sha256, sample_sha256=sample_sha)


def _paired_diffs(
    names: Sequence[str],
    kept: Mapping[str, Sequence[ReplayTrace]],
    scores: FloatArray,
    offsets: Sequence[int],
) -> dict[str, tuple[tuple[str, float], ...]]:
    """Per slice, ``(trace id, d)`` oldest first: ``d = m(candidate) - m(rerun)`` with
    ``m = agree(x, served) - mean agree(x, anchors)`` from the rows already scored (each trace
    has one served row followed by its anchor rows, in both halves of ``scores``)."""
    half = len(scores) // 2
    out: dict[str, tuple[tuple[str, float], ...]] = {}
    for i, name in enumerate(names):
        traces = kept[name]
        lo, hi = offsets[i], offsets[i + 1]
        width = (hi - lo) // len(traces)
        rows = []
        for j, t in enumerate(traces):
            a = lo + j * width
            cand = paired_margin(scores[a], scores[a + 1 : a + width])
            stab = paired_margin(scores[half + a], scores[half + a + 1 : half + a + width])
            rows.append((t.time, t.trace_id, cand - stab))
        out[name] = tuple((tid, float(d)) for _t, tid, d in sorted(rows))
    return out
