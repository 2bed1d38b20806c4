"""The traces the replay needs, persisted off the request path and reloaded on start.

``TraceLog`` is a ``relgate.traces.TraceSink``: the trace store hands it every trace it records
(the gateway's, and those gateway replicas ship). On the request path it does one bounded append
under a lock: a trace the replay cannot use (no answer, not 2xx) is ignored; when the queue is
full the trace is dropped and counted (``relgate_traces_persist_dropped_total{reason=
"queue_full"}``), never waited for. A background thread writes the queue in batches every
``flush_interval_s`` (``relgate.store.traces.TraceRecords.add``: bounded per tenant, release,
slice and shadow, and by age); a batch the store refuses is dropped and counted
(``reason="write_failed"``), logged, and the writer carries on.

``restore`` reloads the stored traces into the trace store's buffers before the rollouts resume
(``relgate.traces.TraceStore.restore``), so the replay monitor, the shadow's pairs and the
observer sample the traffic the previous process saw. ``stop`` writes what is queued, then ends
the thread. Retention: docs/design.md §4 ("Traces").
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from relgate.store.traces import TraceRecords
from relgate.traces import Trace, TraceStore

__all__ = ["TraceLog", "TraceLogOptions"]

log = logging.getLogger("relgate.traces")


@dataclass(frozen=True, slots=True)
class TraceLogOptions:
    """Bounds of the persisted traces and of the writer's queue."""

    #: Newest traces kept per (tenant, release, slice, shadow): four replays' worth at the
    #: default ``replay_cap`` (50).
    per_group: int = 200
    #: Older traces are pruned and never reloaded (a day: the default shadow's period).
    max_age_s: float = 86_400.0
    queue_max: int = 10_000
    batch_max: int = 500
    flush_interval_s: float = 0.25


def wanted(trace: Trace) -> bool:
    """Whether the replay can use the trace: a 2xx answer (served or mirrored)."""
    return 200 <= trace.status < 300 and bool(trace.answer)


class TraceLog:
    """Bounded queue + batched background writer of traces (see the module docstring)."""

    def __init__(
        self,
        records: TraceRecords,
        *,
        options: TraceLogOptions | None = None,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._records = records
        self.options = opt = options or TraceLogOptions()
        self._clock = clock
        self._queue: deque[Trace] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        reg = registry if registry is not None else REGISTRY
        self.persisted = Counter(
            "relgate_traces_persisted",
            "Traces written to the store for the replay (bounded retention).",
            registry=reg,
        )
        self.dropped = Counter(
            "relgate_traces_persist_dropped",
            "Traces the replay could use that were not persisted: the writer's queue was full "
            "(the gateway never waits for it) or the store refused the batch.",
            ("reason",),
            registry=reg,
        )
        if min(opt.queue_max, opt.batch_max, opt.per_group) < 1 or opt.flush_interval_s <= 0:
            raise ValueError("TraceLogOptions bounds must be positive")

    def __call__(self, trace: Trace) -> None:
        """The trace store's sink: queue ``trace`` if the replay can use it (never blocks)."""
        if not wanted(trace):
            return
        with self._lock:
            if len(self._queue) >= self.options.queue_max:
                full = True
            else:
                full = False
                self._queue.append(trace)
        if full:
            self.dropped.labels(reason="queue_full").inc()

    @property
    def queued(self) -> int:
        """Traces waiting for the writer."""
        with self._lock:
            return len(self._queue)

    def restore(self, traces: TraceStore) -> int:
        """Reload the stored traces into ``traces``' buffers; returns how many."""
        opt = self.options
        rows = self._records.load(per_group=opt.per_group, max_age_s=opt.max_age_s,
                                  now=self._clock())  # fmt: skip
        n = traces.restore(rows)
        if n:
            log.info("restored %d traces for the replay from the store", n)
        return n

    def start(self) -> None:
        """Start the background writer."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="relgate-trace-log", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then end the writer."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        else:
            self.flush()

    def flush(self) -> int:
        """Write everything queued now (on the caller's thread); returns rows written."""
        written = 0
        while True:
            with self._lock:
                n = min(len(self._queue), self.options.batch_max)
                batch = [self._queue.popleft() for _ in range(n)]
            if not batch:
                return written
            written += self._write(batch)

    def _write(self, batch: list[Trace]) -> int:
        opt = self.options
        try:
            n = self._records.add(
                batch, per_group=opt.per_group, max_age_s=opt.max_age_s, now=self._clock()
            )
        except Exception:
            log.exception("persisting %d traces failed; they are dropped", len(batch))
            self.dropped.labels(reason="write_failed").inc(len(batch))
            return 0
        self.persisted.inc(n)
        return n

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.options.flush_interval_s)
            self.flush()
        self.flush()
