"""A replica's traces, shipped to the control plane: batched, bounded, back-pressured, sampled.

:class:`TraceShipper` is a ``TraceSink`` (``gateway.traces.add_sink(shipper)``): the request path
only appends to a bounded queue (the oldest trace is dropped and counted when it is full: the
data plane never waits for the control plane). :meth:`TraceShipper.run` sends batches of up to
``batch`` traces every ``interval_s`` (sooner when a batch is full) through ``send``, waits as
long as the control plane asks (``retry_after``), and keeps a batch that failed to send for the
next try (still within the bound).

Sampling is per slice: each slice's prompt and answer text is kept for up to
``text_per_slice_per_s`` traces per second (a token bucket per slice, burst one second's
worth), enough for the replay monitor's per-slice samples; the others travel as events (time,
latency, status, release) so the latency and 5xx windows count every request of the fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from relgate.traces import Trace

#: send(batch of (trace, event_only), dropped since last send) -> seconds to wait.
Send = Callable[[Sequence[tuple[Trace, bool]], int], Awaitable[float]]


@dataclass(frozen=True, slots=True)
class ShipperStats:
    """Counters of a shipper since it started."""

    queued: int
    shipped: int
    events_only: int
    dropped: int
    failed_pushes: int


class TraceShipper:
    """Bounded trace queue in front of the control plane (see the module docstring)."""

    def __init__(
        self,
        send: Send,
        *,
        max_queue: int = 20_000,
        batch: int = 512,
        interval_s: float = 0.2,
        text_per_slice_per_s: float = 50.0,
        max_slices: int = 256,
    ) -> None:
        self._send = send
        # (sequence number, trace, event_only)
        self._queue: deque[tuple[int, Trace, bool]] = deque()
        self._seq = 0
        self._max = max_queue
        self._batch = batch
        self._interval = interval_s
        self._rate = text_per_slice_per_s
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_slices = max_slices
        self._full = asyncio.Event()
        self._shipped = self._events = self._dropped = self._failed = 0
        self._unreported_drops = 0

    def __call__(self, trace: Trace) -> None:
        """Queue one trace (never blocks; drops the oldest when full)."""
        if len(self._queue) >= self._max:
            self._queue.popleft()
            self._dropped += 1
            self._unreported_drops += 1
        self._seq += 1
        self._queue.append((self._seq, trace, not self._keep_text(trace)))
        if len(self._queue) >= self._batch:
            self._full.set()

    def _keep_text(self, trace: Trace) -> bool:
        now = time.monotonic()
        key = f"{trace.tenant}\x00{trace.slice}"
        tokens, at = self._buckets.pop(key, (self._rate, now))
        tokens = min(self._rate, tokens + (now - at) * self._rate)
        keep = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if keep else tokens, now)
        while len(self._buckets) > self._max_slices:
            self._buckets.popitem(last=False)
        return keep

    def stats(self) -> ShipperStats:
        """The counters now."""
        return ShipperStats(len(self._queue), self._shipped, self._events, self._dropped,
                            self._failed)  # fmt: skip

    async def flush(self) -> None:
        """Send what is queued now (one batch at a time); stops at the first failure."""
        while self._queue:
            if not await self._send_batch():
                return

    async def _send_batch(self) -> bool:
        rows = [self._queue[i] for i in range(min(self._batch, len(self._queue)))]
        batch = [(t, e) for _, t, e in rows]
        try:
            wait = await self._send(batch, self._unreported_drops)
        except ConnectionError:
            self._failed += 1
            return False
        # Sent: take them off the front (those the queue already dropped meanwhile are gone).
        last = rows[-1][0]
        while self._queue and self._queue[0][0] <= last:
            self._queue.popleft()
        self._unreported_drops = 0
        self._shipped += len(batch)
        self._events += sum(1 for _, e in batch if e)
        if wait > 0:
            await asyncio.sleep(wait)
        return True

    async def run(self) -> None:
        """Ship until cancelled."""
        while True:
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval)
            if self._queue and not await self._send_batch():
                await asyncio.sleep(self._interval)
