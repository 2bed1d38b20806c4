"""The web port of `relgate serve`: `/healthz` and Prometheus `/metrics` (docs/metrics.md).

A small aiohttp server bound to 127.0.0.1 by default. Whoever starts the server may hand it more
routes (``extend``: the read-only dashboard of ``relgate.dashboard`` is mounted this way), so the
service does not depend on its faces.
Metrics live in a per-server `CollectorRegistry` (not the process-global one) so that several
servers in one process (tests, benchmarks) do not collide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from relgate.service.state_metrics import StateCollector
from relgate.store import Store

if TYPE_CHECKING:
    from relgate.app.rollouts import RolloutManager

# gRPC latencies span sub-millisecond reads to multi-second registers (attestation).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


@dataclass
class Metrics:
    """The server's Prometheus metrics."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.rpc_requests = Counter(
            "relgate_grpc_requests",
            "gRPC calls by method and status code.",
            ("method", "code"),
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "relgate_grpc_request_seconds",
            "gRPC call latency by method (seconds).",
            ("method",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Receipts, gate verdicts, rollout state and anchoring lag are read from the state at
        # scrape time (``watch``: relgate.service.state_metrics), so no writer is missed.
        self.judge_rows = Counter(
            "relgate_judge_rows_scored",
            "Rows scored by the server's judges, by judge backend (rate(): rows/s).",
            ("judge",),
            registry=self.registry,
        )
        self.anchors = Counter(
            "relgate_tree_head_anchors",
            "Signed tree heads anchored, by outcome.",
            ("outcome",),
            registry=self.registry,
        )

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        """Record one finished call."""
        self.rpc_requests.labels(method=method, code=code).inc()
        self.rpc_seconds.labels(method=method).observe(seconds)

    def watch(self, store: Store, rollouts: RolloutManager | None = None) -> None:
        """Export the store's and the rollout manager's state (read at each scrape)."""
        self.registry.register(StateCollector(store, rollouts))

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)


WebExtension = Callable[[web.Application], None]


def build_app(
    metrics: Metrics, is_serving: Callable[[], bool], extend: WebExtension | None = None
) -> web.Application:
    """The aiohttp application: `/healthz` (503 once shutdown began), `/metrics`, and what
    `extend` adds (the dashboard's pages)."""

    async def healthz(_: web.Request) -> web.Response:
        if is_serving():
            return web.json_response({"status": "serving"})
        return web.json_response({"status": "shutting down"}, status=503)

    async def metrics_view(_: web.Request) -> web.Response:
        # A scrape reads the store (state_metrics): off the event loop.
        resp = web.Response(body=await asyncio.to_thread(metrics.exposition))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    if extend is not None:
        extend(app)
    return app


@dataclass
class WebServer:
    """A started web server; `port` is the bound port (useful with port 0)."""

    runner: web.AppRunner
    host: str
    port: int

    async def stop(self) -> None:
        """Close the listening socket and finish open requests."""
        await self.runner.cleanup()


async def start_web(
    metrics: Metrics,
    is_serving: Callable[[], bool],
    *,
    host: str = "127.0.0.1",
    port: int = 8081,
    extend: WebExtension | None = None,
) -> WebServer:
    """Start the web server on `host:port` (0 picks a free port)."""
    runner = web.AppRunner(build_app(metrics, is_serving, extend), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return WebServer(runner=runner, host=host, port=int(bound))


__all__ = ["Metrics", "WebExtension", "WebServer", "build_app", "start_web"]
