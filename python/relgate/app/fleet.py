"""The control plane's side of the gateway fleet: who serves which tenant, what each acked.

Every routing table publishes through one :class:`FleetHub`. Each gateway that serves traffic is
a replica of the hub: the in-process gateway of ``relgate serve`` (``local``, fed by a direct
call) and every ``relgate gateway`` process (fed by its watch stream, see
``relgate.service.servicers.routing``). A replica gets the latest snapshot of each of its tenants
when it connects, then every publication, and acks the (epoch, version) it serves.

:meth:`FleetHub.wait_acked` is how a swap completes: it returns when every replica live at the
publication (and any that connected since) has acked that version or a later one, or at the
deadline, with who acked, how long each took from publication, and who did not
(:class:`~relgate.routing.FleetAcks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from relgate.errors import NotFoundError
from relgate.routing import FleetAcks, RoutingSnapshot

#: deliver(epoch, snapshot): hand one snapshot to a replica (must not block).
Deliver = Callable[[int, RoutingSnapshot], None]

__all__ = ["Deliver", "FleetHub", "Replica"]


@dataclass(eq=False)
class Replica:
    """One gateway serving some tenants (``tenants`` empty: every tenant; the local one)."""

    id: str
    name: str
    key_sha256: str
    tenants: frozenset[str]
    deliver: Deliver
    local: bool = False
    acked: dict[str, tuple[int, int]] = field(default_factory=dict)
    ack_at: dict[tuple[str, int], float] = field(default_factory=dict)

    def serves(self, tenant: str) -> bool:
        """True when this replica serves the tenant."""
        return not self.tenants or tenant in self.tenants


class FleetHub:
    """Snapshots out, acks in. Thread-safe (controllers publish from worker threads, acks
    arrive on the service loop, the local gateway acks on the publisher's thread)."""

    def __init__(self, *, epoch: int | None = None, ack_history: int = 1024) -> None:
        self.epoch = epoch if epoch is not None else time.time_ns() // 1_000_000
        self._lock = threading.Lock()
        self._latest: dict[str, RoutingSnapshot] = {}
        self._published: dict[tuple[str, int], tuple[float, frozenset[str]]] = {}
        self._replicas: dict[str, Replica] = {}
        self._ids = itertools.count(1)
        self._history = ack_history
        self._wakers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    # -- replicas --------------------------------------------------------------------------

    def connect(
        self,
        name: str,
        tenants: frozenset[str],
        deliver: Deliver,
        *,
        key_sha256: str = "",
        local: bool = False,
    ) -> Replica:
        """Add a replica and deliver the latest snapshot of each of its tenants to it."""
        with self._lock:
            rid = f"{name}#{next(self._ids)}"
            replica = Replica(rid, name, key_sha256, tenants, deliver, local=local)
            self._replicas[rid] = replica
            first = [s for t, s in sorted(self._latest.items()) if replica.serves(t)]
        for snap in first:
            deliver(self.epoch, snap)
        return replica

    def disconnect(self, replica_id: str) -> None:
        """The replica's stream ended: it is no longer waited for."""
        with self._lock:
            self._replicas.pop(replica_id, None)
        self._wake()

    def replicas(self, tenant: str | None = None) -> list[Replica]:
        """The connected replicas (serving ``tenant`` if given)."""
        with self._lock:
            return [r for r in self._replicas.values() if tenant is None or r.serves(tenant)]

    def remote_replicas(self, tenant: str) -> int:
        """How many replica processes (not the in-process gateway) serve the tenant."""
        return sum(1 for r in self.replicas(tenant) if not r.local)

    def session(self, replica_id: str, key_sha256: str) -> Replica:
        """The connected replica with this id opened under this key (NotFoundError otherwise)."""
        with self._lock:
            r = self._replicas.get(replica_id)
        if r is None or r.key_sha256 != key_sha256:
            raise NotFoundError(f"no routing session {replica_id!r} (ended, or another key's)")
        return r

    # -- snapshots and acks ----------------------------------------------------------------

    def publish(self, snapshot: RoutingSnapshot) -> None:
        """Make ``snapshot`` the tenant's latest and deliver it to every replica serving it."""
        tenant = snapshot.tenant
        with self._lock:
            self._latest[tenant] = snapshot
            targets = [r for r in self._replicas.values() if r.serves(tenant)]
            self._published[(tenant, snapshot.version)] = (
                time.perf_counter(),
                frozenset(r.id for r in targets),
            )
            while len(self._published) > self._history:
                self._published.pop(next(iter(self._published)))
        for r in targets:
            r.deliver(self.epoch, snapshot)

    def latest(self, tenant: str) -> RoutingSnapshot | None:
        """The tenant's last published snapshot."""
        with self._lock:
            return self._latest.get(tenant)

    def ack(self, replica: Replica, tenant: str, epoch: int, version: int) -> None:
        """The replica serves the tenant at (epoch, version). Acks of another epoch (a previous
        control plane's) or older than the replica's last ack change nothing."""
        now = time.perf_counter()
        with self._lock:
            if epoch != self.epoch or not replica.serves(tenant):
                return
            if replica.acked.get(tenant, (0, 0)) >= (epoch, version):
                return
            replica.acked[tenant] = (epoch, version)
            replica.ack_at[(tenant, version)] = now
            while len(replica.ack_at) > self._history:
                replica.ack_at.pop(next(iter(replica.ack_at)))
        self._wake()

    def acks(self, tenant: str, version: int, deadline_s: float = 0.0) -> FleetAcks:
        """Who has acked the tenant's ``version`` (or later) so far."""
        with self._lock:
            t0, targets = self._published.get((tenant, version), (time.perf_counter(), frozenset()))
            live = {r.id: r for r in self._replicas.values() if r.serves(tenant)}
            acked: list[tuple[str, float]] = []
            missing: list[str] = []
            for rid in sorted(targets | set(live)):
                r = live.get(rid)
                if r is not None and r.acked.get(tenant, (0, 0)) >= (self.epoch, version):
                    at = r.ack_at.get((tenant, version))
                    # Acked a later version first (publications in quick succession): the time
                    # is when it acked that one.
                    if at is None:
                        later = [a for (t, v), a in r.ack_at.items() if t == tenant and v > version]
                        at = min(later, default=time.perf_counter())
                    acked.append((r.name, max(0.0, at - t0)))
                else:
                    missing.append(r.name if r is not None else rid.rsplit("#", 1)[0])
        return FleetAcks(
            tenant, version, tuple(acked), tuple(missing), deadline_s, time.perf_counter() - t0
        )

    async def wait_acked(self, tenant: str, version: int, deadline_s: float) -> FleetAcks:
        """Wait until every replica has acked the tenant's ``version`` or the deadline passes."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        waker = (loop, event)
        end = time.perf_counter() + deadline_s
        with self._lock:
            self._wakers.add(waker)
        try:
            while True:
                result = self.acks(tenant, version, deadline_s)
                left = end - time.perf_counter()
                if result.complete or left <= 0:
                    return result
                event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), left)
        finally:
            with self._lock:
                self._wakers.discard(waker)

    def _wake(self) -> None:
        with self._lock:
            wakers = list(self._wakers)
        for loop, event in wakers:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                event.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(event.set)
