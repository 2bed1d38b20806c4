"""What the rollout controller reads inside ``relgate serve``: the gateway's counters and windows,
trace replay through the candidate, and the observer's per-minute quality.

``RolloutProbe.refresh(status)`` runs on the server's event loop before each controller tick and
gathers, without blocking the loop (HTTP replays are async, judging runs in a worker thread):

- the candidate's served-request delta (for the hold's request count);
- latency p95 and 5xx counts of both releases over the step's window (the same window for both);
- at a checkpoint (once the hold is met, then every ``replay_interval_s``), the quality reading:
  up to ``replay_cap`` recent stable-served traces per slice replayed through the candidate's
  endpoint with the candidate's own prompt template, judged against the stable answer (grade 1,
  or the user's feedback grade) and the slice's negative anchors (the suite's human-graded-bad
  answers plus hedges) with the gate's judge and statistic (``relgate.rollout.replay``);
- during a cold start's shadow of the live release, the same quality reading on the candidate's
  mirrored answers paired with the answers served to the same requests (``relgate.app.shadow``);
  the phase function decides the shadow on it (``relgate.rollout.shadow``);
- after 100%, one ``MinuteQuality`` per clock minute: a ``sample_rate`` sample of the live
  release's traces of that minute, replayed through the previous release for the reference
  answer, scored the same way.

``readings()`` (the controller's provider) hands over what was gathered and forgets it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from relgate.app.shadow import mirrored_pairs
from relgate.errors import RelgateError
from relgate.gateway.server import Gateway
from relgate.judge.base import Judge
from relgate.rollout.checkpoint import hold_progress
from relgate.rollout.controller import Readings
from relgate.rollout.monitors import (
    ErrorRateReading,
    LatencyReading,
    QualityLedger,
    QualityReading,
)
from relgate.rollout.observe import MinuteQuality, SliceMinute, sampled
from relgate.rollout.replay import ReplayTrace, replay_quality, replayable, select_recent
from relgate.rollout.shadow import shadow_ends_at
from relgate.rollout.spec import RolloutSpec
from relgate.rollout.status import RolloutStatus
from relgate.routing import ReleaseRoute
from relgate.traces import Trace, TraceStore

__all__ = [
    "HEDGES",
    "CountingTraceStore",
    "ProbeOptions",
    "RolloutProbe",
    "dataset_anchors",
    "suite_anchors",
]

log = logging.getLogger("relgate.rollout")

#: Hedge and refusal answers graded 0 for every slice: what a release that stops answering
#: agrees with (the demo suite's rubric hedges, plus a legal-advice refusal).
HEDGES: tuple[str, ...] = (
    "I have no comment.",
    "I'm sorry, but I can't help with that request.",
    "It depends on many factors; you should ask an expert before relying on any answer.",
    "I can't give legal advice. Please consult a licensed attorney about your situation.",
)

MINUTE_S = 60.0
# A clock that jumped far ahead (a long outage) only replays the most recent minutes.
_MAX_MINUTES_PER_REFRESH = 10


class CountingTraceStore(TraceStore):
    """A ``TraceStore`` that also counts served (non-shadow) requests per release since start,
    so the hold's request count is a delta of a counter, not of a time window."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._served: Counter[str] = Counter()

    def record(self, trace: Trace) -> None:
        """Record the trace and count it for its release."""
        super().record(trace)
        if not trace.shadow:
            self._served[trace.release_sha256] += 1

    def record_event(self, trace: Trace) -> None:
        """Feed the window with a sampled-out trace and count it for its release."""
        super().record_event(trace)
        if not trace.shadow:
            self._served[trace.release_sha256] += 1

    def served(self, release: str) -> int:
        """Requests ``release`` has served since this store was created."""
        return self._served[release]


def suite_anchors(path: Path | None, *, per_slice: int = 12) -> dict[str, list[str]]:
    """Negative anchors per slice: up to ``per_slice`` human-graded-bad references of the
    suite at ``path`` (chosen by hash, so the choice is stable), plus ``HEDGES``. Slices the
    suite does not name get the hedges alone (key ``""``)."""
    out: dict[str, list[str]] = {"": list(HEDGES)}
    if path is None or not path.is_file():
        return out
    from relgate.suite import load_suite

    frame = load_suite(path).frame
    bad: dict[str, set[str]] = {}
    for slice_name, reference, grade in zip(
        frame["slice"].to_list(),
        frame["reference"].to_list(),
        frame["human_grade"].to_list(),
        strict=True,
    ):
        if grade is not None and float(grade) <= 0.0:
            bad.setdefault(str(slice_name), set()).add(str(reference))
    for name, refs in bad.items():
        chosen = sorted(refs, key=lambda r: hashlib.sha256(r.encode()).hexdigest())[:per_slice]
        out[name] = sorted(set(chosen) | set(HEDGES))
    return out


class _Resolver(Protocol):
    def resolve(self, dataset: Any, ref: str | None = None) -> Any: ...


def dataset_anchors(
    manifest_of: Callable[[str], Any], resolver: _Resolver
) -> Callable[[str], dict[str, list[str]]]:
    """Anchors of a release from its own suite: ``manifest_of(sha).dataset`` resolved (and
    checked against its sha256) by the gate's suite resolver. A suite that cannot be resolved
    leaves the hedges alone, with a warning (the monitor then has fewer anchors, never made-up
    ones)."""

    def anchors(sha: str) -> dict[str, list[str]]:
        try:
            resolved = resolver.resolve(manifest_of(sha).dataset)
            return suite_anchors(Path(resolved.path))
        except RelgateError as exc:
            log.warning("release %s: suite not resolved (%s); hedges only as anchors", sha, exc)
            return suite_anchors(None)

    return anchors


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """How often and how widely the probe replays."""

    replay_interval_s: float = 60.0
    replay_concurrency: int = 16


JudgeSource = Callable[[], Judge]


class RolloutProbe:
    """The readings provider of one rollout (see the module docstring)."""

    def __init__(
        self,
        *,
        spec: RolloutSpec,
        candidate: ReleaseRoute,
        stable: ReleaseRoute | None,
        traces: CountingTraceStore,
        gateway: Gateway | None,
        judge: JudgeSource,
        anchors: Mapping[str, Sequence[str]],
        clock: Callable[[], float],
        options: ProbeOptions | None = None,
    ) -> None:
        self.spec = spec
        self.candidate = candidate
        self.stable = stable
        self._traces = traces
        self._gateway = gateway
        self._judge = judge
        self._anchors = anchors
        self._clock = clock
        self._opt = options or ProbeOptions()
        self._served_seen = traces.served(candidate.release_sha256)
        self._requests = 0
        self._latency: LatencyReading | None = None
        self._errors: ErrorRateReading | None = None
        self._quality: QualityReading | None = None
        self._ledger = QualityLedger(spec.thresholds.quality_margin)
        self._minutes: list[MinuteQuality] = []
        self._window_key: tuple[int, int] | None = None
        self._replayed: tuple[int, float] | None = None  # (step index, clock time)
        self._next_minute: float | None = None
        self.replays = 0

    def readings(self) -> Readings:
        """What was gathered since the previous call (then forgotten)."""
        out = Readings(
            requests=self._requests,
            latency=self._latency,
            errors=self._errors,
            quality=self._quality,
            minutes=tuple(self._minutes),
        )
        self._requests = 0
        self._latency = self._errors = self._quality = None
        self._minutes = []
        return out

    async def refresh(self, status: RolloutStatus, now: float | None = None) -> None:
        """Gather the readings the next controller tick (taken at ``now``) needs (see the
        module docstring)."""
        now = self._clock() if now is None else now
        served = self._traces.served(self.candidate.release_sha256)
        delta, self._served_seen = max(0, served - self._served_seen), served
        if not status.started or status.rolled_back_at is not None or status.aborted:
            return
        if status.completed_at is not None:
            # Request counts only feed a hold; after 100% they would only pile up as facts.
            if status.observe_ended_at is None:
                await self._observe(status, now)
            return
        self._requests += delta
        if status.paused or self.stable is None:
            return
        if self.spec.cold_start and status.step_index < 0:
            # Shadow: the candidate's mirrored answers against the live release's (app/shadow.py).
            # Scored again the moment the period ends: the decision reads every pair it had.
            ends = shadow_ends_at(self.spec, status, now)
            last = self._replayed[1] if self._replayed is not None else None
            if self._replay_due(-1, now) or (last is not None and last < ends <= now):
                self._quality = await self._shadow(now)
            return
        if status.step_index < 0:
            return
        self._windows(status, now)
        step = self.spec.steps[status.step_index]
        hold = hold_progress(step, status, now)
        met = hold.dwell_met and hold.requests_seen + self._requests >= hold.requests_required
        if met and self._replay_due(status.step_index, now):
            self._quality = await self._replay(now, status.step_index)

    # -- checkpoint readings -------------------------------------------------------------

    def _windows(self, status: RolloutStatus, now: float) -> None:
        assert self.stable is not None
        entered = status.step_entered_at if status.step_entered_at is not None else now
        window = max(now - entered, 1e-3)
        cand, stab = self.candidate.release_sha256, self.stable.release_sha256
        cc, sc = self._traces.counts(cand, window), self._traces.counts(stab, window)
        key = (cc.total, sc.total)
        if key == self._window_key:
            return
        self._window_key = key
        self._errors = ErrorRateReading(cc.server_errors, cc.total, sc.server_errors, sc.total)
        cp, sp = self._traces.p95(cand, window), self._traces.p95(stab, window)
        if cp is not None and sp is not None:
            self._latency = LatencyReading(cp, sp, cc.total, sc.total)

    def _replay_due(self, step_index: int, now: float) -> bool:
        if self._replayed is None or self._replayed[0] != step_index:
            return True
        return now - self._replayed[1] >= self._opt.replay_interval_s

    def _anchors_of(self, slice_name: str) -> list[str]:
        return list(self._anchors.get(slice_name) or self._anchors.get("") or HEDGES)

    async def _replay(self, now: float, step_index: int) -> QualityReading:
        """Recent stable traces per slice through the candidate, judged against the stable."""
        assert self.stable is not None
        self._replayed = (step_index, now)
        self.replays += 1
        stable = self.stable.release_sha256
        cap = self.spec.thresholds.replay_cap
        traces: dict[str, Trace] = {}
        rows: list[ReplayTrace] = []
        for name in self._traces.slices():
            recent = self._traces.recent(name, cap, release=stable)
            traces.update((t.id, t) for t in recent)
            rows.extend(replayable(recent, stable))
        by_slice = select_recent(rows, cap) if rows else {}
        chosen = [traces[t.trace_id] for ts in by_slice.values() for t in ts]
        answers = await self._ask(self.candidate, chosen)
        # The stable release re-answers the same traces: the noise-aware ceiling and the paired
        # differences of the sequential test (rollout/replay.py, rollout/sequential.py).
        reruns = await self._ask(self.stable, chosen)
        return self._ledger.fold(await self._score(by_slice, answers, reruns))

    async def _shadow(self, now: float) -> QualityReading:
        """A cold start's mirrored answers paired with the live release's served answers to the
        same requests, scored like a replay (the live release re-answers for the ceiling)."""
        assert self.stable is not None
        self._replayed = (-1, now)
        self.replays += 1
        pairs = mirrored_pairs(
            self._traces,
            self.candidate.release_sha256,
            self.stable.release_sha256,
            self.spec.thresholds.replay_cap,
        )
        reruns = await self._ask(self.stable, pairs.served)
        return self._ledger.fold(await self._score(pairs.by_slice, pairs.answers, reruns))

    async def _ask(self, route: ReleaseRoute, traces: Sequence[Trace]) -> dict[str, str]:
        """Each trace's prompt through ``route`` (its own template); failed answers are left
        out (the replay then has fewer rows, never a made-up answer)."""
        gw = self._gateway
        if gw is None or not traces:
            return {}
        sem = asyncio.Semaphore(self._opt.replay_concurrency)

        async def one(t: Trace) -> tuple[str, str | None]:
            async with sem:
                c = await gw.complete(route, t.prompt, variables=dict(t.variables), slice=t.slice)
            return t.id, c.answer if c.status == 200 and c.answer else None

        done = await asyncio.gather(*(one(t) for t in traces))
        return {tid: a for tid, a in done if a is not None}

    async def _score(
        self,
        by_slice: Mapping[str, Sequence[ReplayTrace]],
        answers: Mapping[str, str],
        reruns: Mapping[str, str],
    ) -> QualityReading:
        anchors = {name: self._anchors_of(name) for name in by_slice}

        def score(a: Sequence[str], r: Sequence[str]) -> Any:
            return self._judge().score(a, r)

        def run() -> QualityReading:
            try:
                judge_sha: str | None = self._judge().judge_sha256
            except Exception:
                judge_sha = None  # the score call below fails the same way: judge_error
            return replay_quality(
                by_slice,
                answers,
                anchors,
                score,
                cap=self.spec.thresholds.replay_cap,
                judge_sha256=judge_sha,
                stable_rerun=reruns,
            )

        return await asyncio.to_thread(run)

    # -- observer ------------------------------------------------------------------------

    async def _observe(self, status: RolloutStatus, now: float) -> None:
        if self.stable is None:
            return  # a cold start has no previous release to compare with or return to
        assert status.completed_at is not None
        if self._next_minute is None:
            seen = [m.minute_start for m in status.minutes if m.minute_start >= status.completed_at]
            self._next_minute = max(seen) + MINUTE_S if seen else status.completed_at
        behind = math.floor((now - self._next_minute) / MINUTE_S)
        if behind > _MAX_MINUTES_PER_REFRESH:
            self._next_minute += (behind - _MAX_MINUTES_PER_REFRESH) * MINUTE_S
        while now >= self._next_minute + MINUTE_S:
            start = self._next_minute
            self._minutes.append(await self._minute(start, start + MINUTE_S))
            self._next_minute = start + MINUTE_S

    async def _minute(self, start: float, end: float) -> MinuteQuality:
        """One minute's sampled live traces, scored against the previous release's answers."""
        assert self.stable is not None
        live = self.candidate.release_sha256
        rate = self.spec.observer.sample_rate
        cap = self.spec.thresholds.replay_cap
        sample: list[Trace] = []
        for name in self._traces.slices():
            rows = [
                t
                for t in self._traces.recent(name, 100_000, release=live)
                if start <= t.time < end and t.answer and sampled(t.id, rate)
            ]
            sample.extend(rows[:cap])
        references = await self._ask(self.stable, sample)
        by_slice: dict[str, list[ReplayTrace]] = {}
        for t in sample:
            ref = references.get(t.id)
            if ref is None:
                continue
            by_slice.setdefault(t.slice, []).append(
                ReplayTrace(t.id, t.slice, t.prompt, ref, t.time, t.feedback_grade)
            )
        answers = {t.id: t.answer for t in sample}
        # A second stable answer: the noise-aware ceiling and the observer's paired differences.
        reruns = await self._ask(self.stable, sample)
        quality = await self._score(by_slice, answers, reruns)
        raw = self.spec.thresholds.quality_scale == "raw"
        slices = []
        for name, replayed in sorted(by_slice.items()):
            sq = next((s for s in quality.slices if s.slice == name), None)
            q = None
            if sq is not None and quality.judge_error is None:
                value = sq.rho if raw else sq.q
                q = value if math.isfinite(value) else None
            diffs = () if sq is None or quality.judge_error else tuple(d for _i, d in sq.diffs)
            slices.append(SliceMinute(name, q, len(replayed), diffs))
        if quality.judge_error:
            log.warning("observer minute %.0f: judge error: %s", start, quality.judge_error)
        return MinuteQuality(minute_start=start, slices=tuple(slices))
