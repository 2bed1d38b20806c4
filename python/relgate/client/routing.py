"""A gateway replica's connection to the control plane (``relgate.v1.RoutingService``).

:class:`RoutingWatcher` keeps one watch stream open, reconnecting with backoff when it breaks:
each snapshot it receives goes to ``offer(epoch, snapshot)`` (the replica's feed, which swaps and
then calls :meth:`RoutingWatcher.ack`), each connect and loss to ``connection(bool)``.
:meth:`RoutingWatcher.push_traces` ships a batch of traces on the same session and returns how
long the control plane asks the replica to wait before the next push.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from relgate._proto.relgate.v1 import routing_pb2, routing_pb2_grpc
from relgate.errors import RelgateError
from relgate.routing import RoutingSnapshot
from relgate.traces import Trace
from relgate.wire.routing import snapshot_of, trace_message

__all__ = ["RoutingWatcher"]

log = logging.getLogger("relgate.gateway.watch")


class RoutingWatcher:
    """One replica's watch stream, acks and trace pushes, on the running event loop."""

    def __init__(
        self,
        server: str,
        *,
        api_key: str,
        replica: str,
        tenants: Sequence[str],
        offer: Callable[[int, RoutingSnapshot], object],
        connection: Callable[[bool], None],
        tls_ca: Path | str | None = None,
        tls: bool = False,
        backoff_s: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self.server = server
        self._metadata = (("authorization", f"Bearer {api_key.strip()}"),)
        self._replica = replica
        self._tenants = list(tenants)
        self._offer = offer
        self._connection = connection
        self._tls = tls or tls_ca is not None
        self._tls_ca = tls_ca
        self._backoff = backoff_s
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self.session_id = ""
        self._acks: set[asyncio.Task[None]] = set()
        self.reconnects = 0

    def _open(self) -> None:
        if self._tls:
            ca = Path(self._tls_ca).read_bytes() if self._tls_ca is not None else None
            creds = grpc.ssl_channel_credentials(root_certificates=ca)
            self._channel = grpc.aio.secure_channel(self.server, creds)
        else:
            self._channel = grpc.aio.insecure_channel(self.server)
        self._stub = routing_pb2_grpc.RoutingServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def run(self) -> None:
        """Watch until cancelled: snapshots to ``offer``; reconnect (backoff) when it breaks."""
        self._open()
        delay = self._backoff[0]
        try:
            while True:
                try:
                    await self._watch_once()
                    delay = self._backoff[0]
                except grpc.aio.AioRpcError as exc:
                    if exc.code() in (grpc.StatusCode.UNAUTHENTICATED,
                                      grpc.StatusCode.PERMISSION_DENIED):  # fmt: skip
                        log.error("control plane refused the watch: %s", exc.details())
                    else:
                        log.warning("control plane unreachable (%s); serving the last snapshot",
                                    exc.code().name)  # fmt: skip
                except RelgateError as exc:
                    log.error("bad snapshot from the control plane: %s", exc)
                self.session_id = ""
                self._connection(False)
                self.reconnects += 1
                await asyncio.sleep(delay)
                delay = min(self._backoff[1], delay * 2)
        finally:
            if self._channel is not None:
                await self._channel.close(None)

    async def _watch_once(self) -> None:
        request = routing_pb2.WatchRequest(replica=self._replica, tenants=self._tenants)
        stream = self._stub.Watch(request, metadata=self._metadata)
        async for update in stream:
            if update.session_id:
                self.session_id = update.session_id
                self._connection(True)
            if update.HasField("snapshot"):
                epoch, snap = snapshot_of(update.snapshot)
                self._offer(epoch, snap)

    def ack(self, tenant: str, epoch: int, version: int) -> None:
        """Tell the control plane this replica serves (epoch, version) (sent in the background;
        a lost ack is repaired by the full snapshot a reconnect delivers)."""
        if not self.session_id or self._stub is None:
            return
        request = routing_pb2.AckRequest(
            session_id=self.session_id, tenant=tenant, epoch=epoch, version=version
        )
        task = asyncio.get_running_loop().create_task(self._send_ack(request))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _send_ack(self, request: routing_pb2.AckRequest) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self._stub.Ack(request, metadata=self._metadata, timeout=10)

    async def push_traces(
        self, batch: Sequence[tuple[Trace, bool]], dropped: int, timeout_s: float = 10.0
    ) -> float:
        """Ship (trace, event_only) pairs; returns the wait the control plane asks for (s).
        Raises ``ConnectionError`` when there is no session or the push failed."""
        if not self.session_id or self._stub is None:
            raise ConnectionError("no routing session")
        request = routing_pb2.PushTracesRequest(
            session_id=self.session_id,
            traces=[trace_message(t, event_only=e) for t, e in batch],
            dropped=dropped,
        )
        try:
            reply = await self._stub.PushTraces(request, metadata=self._metadata, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise ConnectionError(f"trace push failed: {exc.code().name}") from None
        return float(reply.retry_after_ms) / 1e3
