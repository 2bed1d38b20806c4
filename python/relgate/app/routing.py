"""The control plane's routing: one ``RoutingTable`` per tenant, and the rollout controller's
port onto it.

A tenant's routing changes only by publishing a new immutable ``RoutingSnapshot`` with the next
version (model, endpoint, prompt and routing of each release together). Publishing hands the
snapshot to the fleet hub (``relgate.app.fleet``), which delivers it to every gateway that serves
the tenant: the server's own gateway (swapped atomically, on the publisher's thread) and every
``relgate gateway`` replica (over its watch stream). The swap completes when every replica has
acked the version or the ack deadline passes; then the requests pinned to older snapshots of the
in-process gateway drain. The table keeps the one history of what it published
(``RoutingChange``), with each change's swap time and, once known, its acks and its drain.

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
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, TypeVar

from relgate.app.fleet import FleetHub
from relgate.gateway.feed import SnapshotFeed
from relgate.gateway.server import Gateway
from relgate.routing import (
    DEFAULT_TENANT,
    FULL_WEIGHT_BP,
    DrainResult,
    FleetAcks,
    ReleaseRoute,
    RoutingChange,
    RoutingSnapshot,
)

__all__ = ["RolloutRouting", "RoutingTable"]

log = logging.getLogger("relgate.routing")

#: Changes a table remembers (a long-lived server must not grow with its history).
HISTORY = 256
#: The in-process gateway's name among a hub's replicas (receipts name it so).
LOCAL_REPLICA = "in-process"

T = TypeVar("T")
# Background tasks (drains, ack waits) are referenced until done: the loop keeps weak ones only.
_TASKS: set[asyncio.Task[Any]] = set()


def local_hub(gateway: Gateway, hub: FleetHub | None = None) -> FleetHub:
    """Connect ``gateway`` (in this process) to ``hub`` (a new one if None) as a replica: it is
    fed through the same :class:`~relgate.gateway.feed.SnapshotFeed` as a replica process, and
    its acks are direct calls."""
    hub = hub if hub is not None else FleetHub()
    feed = SnapshotFeed(gateway)
    feed.connection(True)

    def deliver(epoch: int, snapshot: RoutingSnapshot) -> None:
        feed.offer(epoch, snapshot)

    replica = hub.connect(LOCAL_REPLICA, frozenset(), deliver, local=True)
    feed.set_ack(lambda tenant, epoch, version: hub.ack(replica, tenant, epoch, version))
    return hub


class RoutingTable:
    """The routing of one tenant. Thread-safe: controllers publish from worker threads; the
    gateway's drains and the ack waits run on ``loop``. ``hub`` None and ``gateway`` None track
    the state with no data plane; a ``gateway`` with no ``hub`` gets a hub of its own, so every
    table publishes through one (see ``relgate.app.fleet``).

    ``on_acked(change, acks, subject)`` is called (on the loop) once a change is acked by every
    replica or its ``ack_deadline_s`` passed; ``subject`` is the release the change was made
    for (the rollout's candidate), when known.
    """

    def __init__(
        self,
        route_of: Callable[[str], ReleaseRoute],
        *,
        tenant: str = DEFAULT_TENANT,
        gateway: Gateway | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        drain_deadline_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        hub: FleetHub | None = None,
        ack_deadline_s: float = 5.0,
        on_acked: Callable[[RoutingChange, FleetAcks, str | None], None] | None = None,
    ) -> None:
        self.tenant = tenant
        self._route_of = route_of
        self._gateway = gateway
        if hub is None and gateway is not None:
            hub = local_hub(gateway)
        self.hub = hub
        self._ack_deadline_s = ack_deadline_s
        self._on_acked = on_acked
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

    def serve_only(self, release: str, *, subject: str | None = None) -> RoutingChange:
        """One release serves everything: model, endpoint, prompt and routing together."""
        return self._publish(lambda v: RoutingSnapshot(v, self._route_of(release)), subject)

    def canary(
        self,
        stable: str,
        candidate: str,
        weight_bp: int,
        *,
        shadow: bool = False,
        subject: str | None = None,
    ) -> RoutingChange:
        """``candidate`` serves (or, in shadow, is mirrored) sessions with bucket < weight."""
        return self._publish(
            lambda v: RoutingSnapshot(
                v,
                self._route_of(stable),
                self._route_of(candidate),
                weight_bp=weight_bp,
                shadow=shadow,
            ),
            subject or candidate,
        )

    def _publish(
        self, build: Callable[[int], RoutingSnapshot], subject: str | None = None
    ) -> RoutingChange:
        with self._lock:
            snap = replace(build(self.version + 1), tenant=self.tenant)
            t0 = time.perf_counter()
            if self.hub is not None:
                self.hub.publish(snap)
            change = RoutingChange.of(snap, self._clock(), time.perf_counter() - t0)
            self.snapshot = snap
            self.history.append(change)
        log.info(
            "routing %s v%d: stable %s candidate %s weight %d bp shadow %s",
            self.tenant, snap.version, change.serves[:12], (change.candidate or "-")[:12],
            snap.weight_bp, snap.shadow,
        )  # fmt: skip
        self._drain(change)
        self._wait_acks(change, subject)
        return change

    def _wait_acks(self, change: RoutingChange, subject: str | None) -> None:
        hub, loop = self.hub, self._loop
        if hub is None or loop is None or loop.is_closed():
            return

        def done(acks: FleetAcks) -> None:
            with self._lock:
                self.history.append(replace(change, acks=acks))
            if not acks.complete:
                log.warning(
                    "routing %s v%d: %d replica(s) did not ack within %.1fs: %s",
                    self.tenant, change.version, len(acks.missing), acks.deadline_s,
                    ", ".join(acks.missing),
                )  # fmt: skip
            if self._on_acked is not None:
                self._on_acked(change, acks, subject)

        coro = hub.wait_acked(self.tenant, change.version, self._ack_deadline_s)
        self._on_loop(loop, coro, done)

    def _drain(self, change: RoutingChange) -> None:
        gw, loop = self._gateway, self._loop
        if gw is None or loop is None or loop.is_closed():
            return
        coro = gw.drain(self._drain_deadline_s, change.version, tenant=self.tenant)
        self._on_loop(loop, coro, lambda result: self._drained(change, result))

    @staticmethod
    def _on_loop(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], then: Callable[[T], None]
    ) -> None:
        """Run ``coro`` on ``loop`` (from any thread) and hand its result to ``then``."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(coro)
            _TASKS.add(task)
            task.add_done_callback(_TASKS.discard)
            task.add_done_callback(lambda t: None if t.cancelled() else then(t.result()))
            return
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        fut.add_done_callback(lambda f: None if f.cancelled() else then(f.result()))

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
        # A cold start's canary (after a passing shadow) splits with the release it mirrored.
        if self._table is None or self._mirror is None:
            return
        if weight_bp >= FULL_WEIGHT_BP:
            self._table.serve_only(self._candidate, subject=self._candidate)
        else:
            self._table.canary(self._mirror, self._candidate, weight_bp)

    def swap_to(self, release: str) -> None:
        if self._table is not None:
            self._table.serve_only(release, subject=self._candidate)

    def set_shadow(self, enabled: bool) -> None:
        # With nothing live there is no traffic to mirror (and nothing to serve it).
        if self._table is None or self._mirror is None:
            return
        if enabled:
            self._table.canary(self._mirror, self._candidate, FULL_WEIGHT_BP, shadow=True)
        else:
            self._table.serve_only(self._mirror, subject=self._candidate)
