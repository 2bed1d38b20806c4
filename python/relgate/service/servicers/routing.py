"""RoutingService: ``relgate gateway`` replicas watch routing snapshots, ack them, ship traces.

Every method needs an admin key of each tenant the replica serves (an operator key for several
tenants; its cross-tenant use is audited once, when the watch opens). Ack and PushTraces name the
watch's session and must come with the key that opened it. A replica is live for as long as its
watch stream is open: the hub waits for its acks only then (docs/scale-out-gateway.md).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from relgate._proto.relgate.v1 import routing_pb2
from relgate.access import Role
from relgate.app.fleet import FleetHub
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.routing import RoutingSnapshot
from relgate.service.rpc import Call, Rpc
from relgate.traces import TraceStore
from relgate.wire.routing import snapshot_message, trace_of

#: The most traces one push may carry, and the tenants one watch may name.
MAX_PUSH_TRACES = 2048
MAX_WATCH_TENANTS = 256
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


class RoutingServicer:
    """relgate.v1.RoutingService over the server's fleet hub and trace store.

    ``heartbeat_s``: an empty update this often keeps idle streams (and their proxies) open.
    ``ingest_per_s``: the traces per second the control plane takes from the whole fleet before
    it asks replicas to slow down (``retry_after_ms``).
    """

    descriptor = routing_pb2.DESCRIPTOR.services_by_name["RoutingService"]

    def __init__(
        self,
        hub: FleetHub,
        traces: TraceStore,
        manifest_of: Callable[[str], ReleaseManifest],
        *,
        heartbeat_s: float = 2.0,
        ingest_per_s: float = 20_000.0,
    ) -> None:
        self.hub = hub
        self._traces = traces
        self._manifest_of = manifest_of
        self._manifests: OrderedDict[str, bytes] = OrderedDict()
        self._heartbeat_s = heartbeat_s
        self._rate = ingest_per_s
        self._budget = ingest_per_s
        self._budget_at = time.monotonic()

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation."""
        return {
            "Watch": Rpc(Role.ADMIN, stream=self.watch),
            "Ack": Rpc(Role.ADMIN, unary=self.ack),
            "PushTraces": Rpc(Role.ADMIN, unary=self.push_traces),
        }

    async def _manifest_json(self, sha: str) -> bytes:
        cached = self._manifests.get(sha)
        if cached is None:
            manifest = await asyncio.to_thread(self._manifest_of, sha)
            cached = self._manifests[sha] = manifest.canonical_bytes()
            while len(self._manifests) > 256:
                self._manifests.popitem(last=False)
        return cached

    async def _message(self, epoch: int, snap: RoutingSnapshot) -> routing_pb2.RoutingUpdate:
        for route in snap.routes():
            await self._manifest_json(route.release_sha256)
        msg = snapshot_message(epoch, snap, self._manifests.__getitem__)
        return routing_pb2.RoutingUpdate(snapshot=msg)

    async def watch(
        self, request: routing_pb2.WatchRequest, call: Call
    ) -> AsyncIterator[routing_pb2.RoutingUpdate]:
        """The snapshots of the replica's tenants, then each change, until the stream ends."""
        if not _NAME.fullmatch(request.replica):
            raise InvalidInputError(
                "replica: 1-128 characters of letters, digits and _.:- (starting alphanumeric)"
            )
        if len(request.tenants) > MAX_WATCH_TENANTS:
            raise InvalidInputError(f"tenants: at most {MAX_WATCH_TENANTS}")
        tenants = {await call.tenant(t) for t in request.tenants} or {await call.tenant("")}
        loop = asyncio.get_running_loop()
        # Only the newest snapshot of each tenant matters: a slow stream coalesces, never grows.
        pending: dict[str, tuple[int, RoutingSnapshot]] = {}
        ready = asyncio.Event()

        def put(epoch: int, snap: RoutingSnapshot) -> None:
            pending[snap.tenant] = (epoch, snap)
            ready.set()

        def deliver(epoch: int, snap: RoutingSnapshot) -> None:
            loop.call_soon_threadsafe(put, epoch, snap)

        replica = self.hub.connect(
            request.replica,
            frozenset(tenants),
            deliver,
            key_sha256=call.principal.key_sha256,
        )
        try:
            yield routing_pb2.RoutingUpdate(session_id=replica.id, lease_s=self._heartbeat_s * 3)
            while True:
                if not pending:
                    ready.clear()
                    try:
                        await asyncio.wait_for(ready.wait(), self._heartbeat_s)
                    except TimeoutError:
                        yield routing_pb2.RoutingUpdate()
                        continue
                for tenant in sorted(pending):
                    epoch, snap = pending.pop(tenant)
                    yield await self._message(epoch, snap)
        finally:
            self.hub.disconnect(replica.id)

    async def ack(self, request: routing_pb2.AckRequest, call: Call) -> routing_pb2.AckResponse:
        """The replica serves the tenant at (epoch, version)."""
        replica = self.hub.session(request.session_id, call.principal.key_sha256)
        if not replica.serves(request.tenant):
            raise InvalidInputError(
                f"session {request.session_id} does not serve {request.tenant!r}"
            )
        self.hub.ack(replica, request.tenant, int(request.epoch), int(request.version))
        return routing_pb2.AckResponse()

    async def push_traces(
        self, request: routing_pb2.PushTracesRequest, call: Call
    ) -> routing_pb2.PushTracesResponse:
        """Record a replica's traces in the control plane's store (the monitors' source)."""
        replica = self.hub.session(request.session_id, call.principal.key_sha256)
        if len(request.traces) > MAX_PUSH_TRACES:
            raise InvalidInputError(f"traces: at most {MAX_PUSH_TRACES} per push")
        traces = [(trace_of(m), m.event_only) for m in request.traces]
        for t, _ in traces:
            if not replica.serves(t.tenant):
                raise InvalidInputError(f"trace {t.id}: tenant {t.tenant!r} is not this session's")
        for t, event_only in traces:
            if event_only:
                self._traces.record_event(t)
            else:
                self._traces.record(t)
        now = time.monotonic()
        self._budget = min(self._rate, self._budget + (now - self._budget_at) * self._rate)
        self._budget_at = now
        self._budget -= len(traces)
        wait_ms = 0 if self._budget >= 0 else int(-self._budget / self._rate * 1e3) + 1
        return routing_pb2.PushTracesResponse(accepted=len(traces), retry_after_ms=wait_ms)
