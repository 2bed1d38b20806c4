"""Hosting the gateway from synchronous code: :class:`GatewayThread` runs a
:class:`~relgate.gateway.server.Gateway` on a private event loop in a daemon thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from concurrent.futures import Future as ThreadFuture
from typing import Any, TypeVar

from relgate.access import DEFAULT_TENANT
from relgate.gateway.server import Gateway, start_gateway
from relgate.routing import DrainResult, RoutingSnapshot, SwapRecord
from relgate.traces import TraceStore

T = TypeVar("T")


class GatewayThread:
    """A :class:`Gateway` on a private event loop in a daemon thread, with blocking verbs.

    For synchronous hosts (a controller thread, benchmarks). ``swap`` does not hop threads: it
    is the same atomic store as :meth:`Gateway.swap`.
    """

    def __init__(
        self, gateway: Gateway, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self.gateway = gateway
        self._loop = loop
        self._thread = thread

    @classmethod
    def start(
        cls,
        snapshot: RoutingSnapshot | None,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> GatewayThread:
        """Start the loop thread and the gateway on it; returns once the port is bound."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="relgate-gateway", daemon=True)
        thread.start()
        fut = asyncio.run_coroutine_threadsafe(start_gateway(snapshot, host, port, **options), loop)
        try:
            gw = fut.result(timeout=30)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            raise
        return cls(gw, loop, thread)

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self.gateway.port

    @property
    def traces(self) -> TraceStore:
        """The gateway's trace store."""
        return self.gateway.traces

    def swap(self, snapshot: RoutingSnapshot) -> SwapRecord:
        """Atomic snapshot swap (see :meth:`Gateway.swap`)."""
        return self.gateway.swap(snapshot)

    def call(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run a coroutine on the gateway's loop and wait for its result."""

        async def wrap() -> T:
            return await coro

        fut: ThreadFuture[T] = asyncio.run_coroutine_threadsafe(wrap(), self._loop)
        return fut.result(timeout)

    def drain(
        self,
        deadline_s: float,
        before_version: int | None = None,
        *,
        cut_off: bool = True,
        tenant: str = DEFAULT_TENANT,
    ) -> DrainResult:
        """Blocking :meth:`Gateway.drain`."""
        return self.call(
            self.gateway.drain(deadline_s, before_version, cut_off=cut_off, tenant=tenant)
        )

    def stop(self, drain_deadline_s: float = 5.0) -> DrainResult:
        """Drain, close the gateway and end the loop thread."""
        try:
            return self.call(self.gateway.stop(drain_deadline_s))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()


__all__ = ["GatewayThread"]
