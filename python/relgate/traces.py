"""Traces of served requests and per-release latency/status windows.

Every request the gateway handles becomes a :class:`Trace`. Traces live in bounded per-slice
ring buffers (``collections.deque(maxlen=...)``), so memory stays flat however long the gateway
runs; the replay monitor reads them with :meth:`TraceStore.recent`. Each finished request also
feeds a per-release event window (time, latency, status) from which the rollout monitors read
``p95`` and ``error_rate`` over a sliding time window. The clock is injectable so tests and
simulations can move time by hand.

Quantiles are exact nearest-rank over the window (``sorted[ceil(q*n) - 1]``): the monitors
compare two releases' p95 within 1.2x, which a coarse bucketed histogram would blur.
"""

from __future__ import annotations

import math
import operator
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

from relgate.access import DEFAULT_TENANT
from relgate.errors import InvalidInputError, NotFoundError

Clock = Callable[[], float]


#: A mirrored (shadow) request's trace id is the id of the served request it mirrors plus this
#: suffix: how shadow scoring pairs the candidate's mirrored answer with the answer served to
#: the same request (``shadow_trace_id``, ``served_trace_id``).
SHADOW_SUFFIX = ".shadow"


def shadow_trace_id(served_id: str) -> str:
    """The trace id of the mirror of the served request ``served_id``."""
    return served_id + SHADOW_SUFFIX


def served_trace_id(shadow_id: str) -> str | None:
    """The served request a mirrored trace id mirrors (None: not a mirror's id)."""
    if not shadow_id.endswith(SHADOW_SUFFIX) or len(shadow_id) == len(SHADOW_SUFFIX):
        return None
    return shadow_id[: -len(SHADOW_SUFFIX)]


class TraceSink(Protocol):
    """Where recorded traces also go (must not block: queue and return)."""

    def __call__(self, trace: Trace) -> None: ...


@dataclass(frozen=True, slots=True)
class Trace:
    """One request as the gateway saw it.

    ``time`` is the finish time on the store's clock; ``admitted_at`` the admission time on the
    same clock (the moment the routing snapshot was pinned); ``snapshot_version`` the version of
    that snapshot. ``prompt`` is the client's last user message before templating and
    ``variables`` the template variables it supplied, so a trace can be replayed through another
    release's template. ``status`` is the HTTP status returned to the client (499: the client
    went away; 503 with ``error`` "drain deadline": cut off by a drain).
    """

    id: str
    time: float
    slice: str
    traffic_class: str
    prompt: str
    answer: str
    latency_s: float
    status: int
    release_sha256: str
    session_bucket: int
    feedback_grade: float | None = None
    admitted_at: float = 0.0
    snapshot_version: int = 0
    role: str = "stable"
    shadow: bool = False
    stream: bool = False
    variables: tuple[tuple[str, str], ...] = ()
    error: str = ""
    tenant: str = DEFAULT_TENANT


# Buffers hold each trace as a plain tuple of its fields: the cyclic GC untracks tuples of
# atomic values, so a full collection does not walk every buffered trace (measured here with
# 256k traces: ~410 ms per full collection as objects, ~50 ms as tuples: a loop pause that
# would land on whichever requests are in flight).
_Row = tuple[Any, ...]
_FIELDS = tuple(f.name for f in fields(Trace))
_as_row: Callable[[Trace], _Row] = operator.attrgetter(*_FIELDS)
_ID, _STATUS, _RELEASE, _FEEDBACK, _TENANT = (
    _FIELDS.index(n) for n in ("id", "status", "release_sha256", "feedback_grade", "tenant")
)


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """Requests of one release in a window, by status class."""

    total: int
    ok: int
    client_errors: int
    server_errors: int

    @property
    def error_rate(self) -> float:
        """Share of 5xx (0.0 when there were no requests)."""
        return self.server_errors / self.total if self.total else 0.0


class TraceStore:
    """Bounded trace buffers and latency/status windows, safe to use from several threads.

    ``per_slice`` bounds each slice's buffer; ``max_slices`` bounds how many slices are kept
    (the least recently written slice is dropped first); ``window_events`` bounds each release's
    event window and ``max_releases`` how many releases are tracked; events older than
    ``max_window_s`` are discarded on write; prompts and answers are kept up to
    ``max_text_chars`` characters each.
    """

    def __init__(
        self,
        *,
        per_slice: int = 1000,
        max_slices: int = 256,
        window_events: int = 200_000,
        max_releases: int = 32,
        max_window_s: float = 3600.0,
        max_text_chars: int = 32_768,
        clock: Clock = time.time,
    ) -> None:
        if (
            min(per_slice, max_slices, window_events, max_releases, max_text_chars) < 1
            or max_window_s <= 0
        ):
            raise InvalidInputError("TraceStore bounds must be positive")
        self.clock = clock
        self._per_slice = per_slice
        self._max_slices = max_slices
        self._window_events = window_events
        self._max_releases = max_releases
        self._max_window_s = max_window_s
        self._max_text = max_text_chars
        self._lock = threading.Lock()
        # (slice, shadow) -> ring buffer of rows; ordered by last write for eviction of slices.
        self._buffers: OrderedDict[tuple[str, bool], deque[_Row]] = OrderedDict()
        self._by_id: dict[str, _Row] = {}
        self._feedback: dict[str, float] = {}
        self._events: OrderedDict[str, deque[tuple[float, float, int]]] = OrderedDict()
        self._recorded = 0
        self._sinks: list[TraceSink] = []

    # -- writing ---------------------------------------------------------------------------

    def record(self, trace: Trace) -> None:
        """Add a finished request's trace and feed its release's window."""
        cap = self._max_text
        if len(trace.prompt) > cap or len(trace.answer) > cap:
            trace = replace(trace, prompt=trace.prompt[:cap], answer=trace.answer[:cap])
        with self._lock:
            self._recorded += 1
            key = (trace.slice, trace.shadow)
            buf = self._buffers.get(key)
            if buf is None:
                buf = self._buffers[key] = deque(maxlen=self._per_slice)
                while len(self._buffers) > self._max_slices:
                    _, dropped = self._buffers.popitem(last=False)
                    for r in dropped:
                        self._forget(r[_ID])
            else:
                self._buffers.move_to_end(key)
            if len(buf) == buf.maxlen:
                self._forget(buf[0][_ID])
            row = _as_row(trace)
            buf.append(row)
            self._by_id[trace.id] = row
            self._event(trace)
        for sink in self._sinks:
            sink(trace)

    def restore(self, traces: Iterable[Trace]) -> int:
        """Refill the buffers with persisted traces, oldest first (``relgate.app.trace_log``):
        the replay sees them again; the release windows, the counters and the sinks do not (they
        describe this process's traffic). Returns how many were restored."""
        n = 0
        with self._lock:
            for trace in traces:
                key = (trace.slice, trace.shadow)
                buf = self._buffers.get(key)
                if buf is None:
                    if len(self._buffers) >= self._max_slices:
                        continue
                    buf = self._buffers[key] = deque(maxlen=self._per_slice)
                if trace.id in self._by_id:
                    continue
                if len(buf) == buf.maxlen:
                    self._forget(buf[0][_ID])
                row = _as_row(trace)
                buf.append(row)
                self._by_id[trace.id] = row
                n += 1
        return n

    def record_event(self, trace: Trace) -> None:
        """Feed only the release's window (time, latency, status) with a request whose text was
        not kept (a gateway replica sampled it out): the latency and 5xx monitors count it, the
        replay never sees it. Sinks are not called."""
        with self._lock:
            self._recorded += 1
            self._event(trace)

    def add_sink(self, sink: TraceSink) -> None:
        """Hand every trace recorded from now on to ``sink`` too (after it is stored, outside
        the store's lock): how a gateway replica ships its traces to the control plane."""
        self._sinks.append(sink)

    def _event(self, trace: Trace) -> None:
        # Called with the lock held.
        ev = self._events.get(trace.release_sha256)
        if ev is None:
            ev = self._events[trace.release_sha256] = deque(maxlen=self._window_events)
            while len(self._events) > self._max_releases:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(trace.release_sha256)
        ev.append((trace.time, trace.latency_s, trace.status))
        horizon = trace.time - self._max_window_s
        while ev and ev[0][0] < horizon:
            ev.popleft()

    def _forget(self, trace_id: str) -> None:
        self._by_id.pop(trace_id, None)
        self._feedback.pop(trace_id, None)

    def set_feedback(self, trace_id: str, grade: object, *, tenant: str | None = None) -> Trace:
        """Attach a user's grade in [0, 1] to a trace still in the buffers; with ``tenant``,
        only to a trace of that tenant (another tenant's trace is reported as absent)."""
        if (
            isinstance(grade, bool)
            or not isinstance(grade, int | float)
            or not (math.isfinite(grade) and 0.0 <= grade <= 1.0)
        ):
            raise InvalidInputError(f"grade: expected a number in [0, 1], got {grade!r}")
        with self._lock:
            row = self._by_id.get(trace_id)
            if row is None or (tenant is not None and row[_TENANT] != tenant):
                raise NotFoundError(f"trace {trace_id!r} not found (unknown or evicted)")
            self._feedback[trace_id] = float(grade)
            return self._trace(row)

    # -- reading traces --------------------------------------------------------------------

    def _trace(self, row: _Row) -> Trace:
        fb = self._feedback.get(row[_ID])
        if fb is not None:
            row = (*row[:_FEEDBACK], fb, *row[_FEEDBACK + 1 :])
        return Trace(*row)

    def get(self, trace_id: str) -> Trace:
        """One trace by id (with its feedback grade)."""
        with self._lock:
            row = self._by_id.get(trace_id)
            if row is None:
                raise NotFoundError(f"trace {trace_id!r} not found (unknown or evicted)")
            return self._trace(row)

    def recent(
        self,
        slice: str,
        n: int,
        release: str | None = None,
        *,
        shadow: bool = False,
        status: int | None = 200,
    ) -> list[Trace]:
        """Up to ``n`` most recent traces of ``slice``, newest first.

        ``release`` keeps only traces served by that sha256; ``status`` keeps only that status
        (default 200: a replay needs an answer; None keeps all); ``shadow`` reads the mirrored
        traces of shadow mode instead of served ones.
        """
        out: list[Trace] = []
        with self._lock:
            buf = self._buffers.get((slice, shadow), ())
            for r in reversed(buf):
                if len(out) >= n:
                    break
                if release is not None and r[_RELEASE] != release:
                    continue
                if status is not None and r[_STATUS] != status:
                    continue
                out.append(self._trace(r))
        return out

    def slices(self, *, shadow: bool = False) -> list[str]:
        """Slices that currently hold traces."""
        with self._lock:
            return sorted(s for (s, sh), buf in self._buffers.items() if sh == shadow and buf)

    def all_traces(self) -> Iterator[Trace]:
        """Every buffered trace (a copy taken under the lock), oldest first per slice."""
        with self._lock:
            items = [self._trace(r) for buf in self._buffers.values() for r in buf]
        return iter(items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)

    @property
    def recorded(self) -> int:
        """Traces recorded since start (including evicted ones)."""
        return self._recorded

    # -- windows ---------------------------------------------------------------------------

    def _window(self, release: str, window_s: float) -> list[tuple[float, float, int]]:
        if window_s <= 0:
            raise InvalidInputError("window must be positive")
        cutoff = self.clock() - window_s
        with self._lock:
            ev = self._events.get(release)
            if not ev:
                return []
            out: list[tuple[float, float, int]] = []
            for e in reversed(ev):
                if e[0] < cutoff:
                    break
                out.append(e)
            return out

    def counts(self, release: str, window_s: float) -> StatusCounts:
        """Requests of ``release`` finished in the last ``window_s`` seconds, by status class."""
        ev = self._window(release, window_s)
        c4 = sum(1 for e in ev if 400 <= e[2] < 500)
        c5 = sum(1 for e in ev if e[2] >= 500)
        ok = sum(1 for e in ev if e[2] < 400)
        return StatusCounts(len(ev), ok, c4, c5)

    def error_rate(self, release: str, window_s: float) -> float:
        """Share of 5xx among ``release``'s requests in the window (0.0 if none)."""
        return self.counts(release, window_s).error_rate

    def quantile(self, release: str, window_s: float, q: float) -> float | None:
        """Nearest-rank latency quantile in seconds over the window; None without data."""
        if not 0.0 < q <= 1.0:
            raise InvalidInputError("q must be in (0, 1]")
        lat = sorted(e[1] for e in self._window(release, window_s))
        if not lat:
            return None
        return lat[max(0, math.ceil(q * len(lat)) - 1)]

    def p95(self, release: str, window_s: float) -> float | None:
        """p95 latency in seconds of ``release`` over the window; None without data."""
        return self.quantile(release, window_s, 0.95)


__all__ = [
    "SHADOW_SUFFIX",
    "Clock",
    "StatusCounts",
    "Trace",
    "TraceStore",
    "served_trace_id",
    "shadow_trace_id",
]
