"""The control plane's routing: one ``RoutingTable`` per tenant, and the rollout controller's
port onto it.

A tenant's routing changes only by publishing a new immutable ``RoutingSnapshot`` with the next
version (model, endpoint, prompt and routing of each release together). Publishing hands the
snapshot to every gateway that serves the tenant (here: the server's own gateway, swapped
atomically on its loop), then lets the requests pinned to older snapshots drain. The table keeps
the one history of what it published (``RoutingChange``), with each change's swap time and, once
known, its drain.

``RolloutRouting`` is the one adapter between a rollout and the table: the controller says
"candidate at this weight", "serve only this release", "mirror to the candidate", and the adapter
turns that into the snapshot to publish.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

from relgate.gateway.server import Gateway
from relgate.routing import (
    DEFAULT_TENANT,
    FULL_WEIGHT_BP,
    DrainResult,
    ReleaseRoute,
    RoutingChange,
    RoutingSnapshot,
)

__all__ = ["RolloutRouting", "RoutingTable"]

log = logging.getLogger("relgate.routing")

#: Changes a table remembers (a long-lived server must not grow with its history).
HISTORY = 256


class RoutingTable:
    """The routing of one tenant. Thread-safe: controllers publish from worker threads; the
    gateway's drains run on its loop. ``gateway`` None tracks the state with no data plane."""

    def __init__(
        self,
        route_of: Callable[[str], ReleaseRoute],
        *,
        tenant: str = DEFAULT_TENANT,
        gateway: Gateway | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        drain_deadline_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tenant = tenant
        self._route_of = route_of
        self._gateway = gateway
        self._loop = loop
        self._drain_deadline_s = drain_deadline_s
        self._clock = clock
        self._lock = threading.Lock()
        self.snapshot: RoutingSnapshot | None = None
        self.history: deque[RoutingChange] = deque(maxlen=HISTORY)

    @property
    def version(self) -> int:
        """The version of the live snapshot (0: none yet)."""
        return 0 if self.snapshot is None else self.snapshot.version

    @property
    def live(self) -> str | None:
        """The release that serves the traffic not sent to a candidate."""
        return None if self.snapshot is None else self.snapshot.stable.release_sha256

    def serve_only(self, release: str) -> RoutingChange:
        """One release serves everything: model, endpoint, prompt and routing together."""
        return self._publish(lambda v: RoutingSnapshot(v, self._route_of(release)))

    def canary(
        self, stable: str, candidate: str, weight_bp: int, *, shadow: bool = False
    ) -> RoutingChange:
        """``candidate`` serves (or, in shadow, is mirrored) sessions with bucket < weight."""
        return self._publish(
            lambda v: RoutingSnapshot(
                v,
                self._route_of(stable),
                self._route_of(candidate),
                weight_bp=weight_bp,
                shadow=shadow,
            )
        )

    def _publish(self, build: Callable[[int], RoutingSnapshot]) -> RoutingChange:
        with self._lock:
            snap = replace(build(self.version + 1), tenant=self.tenant)
            t0 = time.perf_counter()
            if self._gateway is not None:
                self._gateway.swap(snap)
            change = RoutingChange.of(snap, self._clock(), time.perf_counter() - t0)
            self.snapshot = snap
            self.history.append(change)
        log.info(
            "routing %s v%d: stable %s candidate %s weight %d bp shadow %s",
            self.tenant, snap.version, change.serves[:12], (change.candidate or "-")[:12],
            snap.weight_bp, snap.shadow,
        )  # fmt: skip
        self._drain(change)
        return change

    def _drain(self, change: RoutingChange) -> None:
        gw, loop = self._gateway, self._loop
        if gw is None or loop is None or loop.is_closed():
            return
        coro = gw.drain(self._drain_deadline_s, change.version, tenant=self.tenant)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(coro)
            task.add_done_callback(lambda t: self._drained(change, t.result()))
            return
        fut: Future[DrainResult] = asyncio.run_coroutine_threadsafe(coro, loop)
        fut.add_done_callback(lambda f: self._drained(change, f.result()))

    def _drained(self, change: RoutingChange, result: DrainResult) -> None:
        with self._lock:
            self.history.append(replace(change, drain=result))
        if result.waited_for:
            log.info(
                "drain before %s v%d: %d waited, %d finished, %d cut off in %.3fs",
                self.tenant, result.before_version, result.waited_for, result.finished,
                result.cut_off, result.elapsed_s,
            )  # fmt: skip


class RolloutRouting:
    """The controller's ``Routing`` port for one rollout, over its tenant's table (None: the
    rollout is decided and recorded, but no data plane serves it)."""

    def __init__(
        self,
        table: RoutingTable | None,
        candidate: str,
        stable: str | None,
        mirror: str | None = None,
    ) -> None:
        self._table = table
        self._candidate = candidate
        self._stable = stable
        # A cold start shadows whatever serves now (no previous release of its own).
        self._mirror = mirror if stable is None else stable

    def set_weight(self, weight_bp: int) -> None:
        if self._table is None or self._stable is None:
            return
        if weight_bp >= FULL_WEIGHT_BP:
            self._table.serve_only(self._candidate)
        else:
            self._table.canary(self._stable, self._candidate, weight_bp)

    def swap_to(self, release: str) -> None:
        if self._table is not None:
            self._table.serve_only(release)

    def set_shadow(self, enabled: bool) -> None:
        # With nothing live there is no traffic to mirror (and nothing to serve it).
        if self._table is None or self._mirror is None:
            return
        if enabled:
            self._table.canary(self._mirror, self._candidate, FULL_WEIGHT_BP, shadow=True)
        else:
            self._table.serve_only(self._mirror)
