"""`relgate gateway`: one data-plane replica, fed by the control plane (docs/scale-out-gateway.md).

    relgate gateway --control HOST:PORT [--tenant T ...] [--port 8080] [--health-port 8082]

It serves the OpenAI-compatible gateway on ``--port``, watches its tenants' routing snapshots on
the control plane's RoutingService (full snapshots on connect, then changes), acks each version
once it is live, and ships its traces back (batched, bounded, sampled per slice). When the
control plane is gone it keeps serving its last snapshots and says so on ``/healthz`` (status
"stale") and in ``relgate_gateway_control_plane_connected``; it re-syncs on reconnect and never
goes back to a snapshot older than one it acked. An admin key of its tenants (RELGATE_API_KEY;
an operator key for several) authenticates it. Stops on SIGTERM / SIGINT, draining in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from pathlib import Path
from typing import Annotated

import typer
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from relgate.cli._common import ApiKeyOpt, handle_errors
from relgate.client.routing import RoutingWatcher
from relgate.errors import AuthError
from relgate.gateway.feed import SnapshotFeed
from relgate.gateway.server import Gateway
from relgate.gateway.shipping import TraceShipper
from relgate.routing import RoutingSnapshot
from relgate.traces import TraceStore

log = logging.getLogger("relgate.gateway")


class _Metrics:
    def __init__(self, feed: SnapshotFeed, shipper: TraceShipper, watcher: RoutingWatcher) -> None:
        self.registry = r = CollectorRegistry()
        self._feed, self._shipper, self._watcher = feed, shipper, watcher
        self.connected = Gauge(
            "relgate_gateway_control_plane_connected",
            "1 while the watch stream to the control plane is open, else 0 (serving the last "
            "snapshot).",
            registry=r,
        )
        self.disconnected = Gauge(
            "relgate_gateway_control_plane_disconnected_seconds",
            "How long the control plane has been gone (0 when connected).",
            registry=r,
        )
        self.version = Gauge(
            "relgate_gateway_snapshot_version", "Routing version served.", ["tenant"], registry=r
        )
        self.traces = Counter(
            "relgate_gateway_traces_shipped", "Traces sent to the control plane.", registry=r
        )
        self.dropped = Counter(
            "relgate_gateway_traces_dropped", "Traces dropped (queue full).", registry=r
        )
        self.reconnects = Counter(
            "relgate_gateway_reconnects", "Watch streams lost and reopened.", registry=r
        )
        self._last = (0, 0, 0)

    def refresh(self) -> bytes:
        st = self._feed.state()
        self.connected.set(1 if st.connected else 0)
        self.disconnected.set(st.disconnected_for_s or 0.0)
        for tenant, (_, version) in st.served.items():
            self.version.labels(tenant=tenant).set(version)
        s = self._shipper.stats()
        shipped, dropped, reconnects = self._last
        self.traces.inc(s.shipped - shipped)
        self.dropped.inc(s.dropped - dropped)
        self.reconnects.inc(self._watcher.reconnects - reconnects)
        self._last = (s.shipped, s.dropped, self._watcher.reconnects)
        return generate_latest(self.registry)


async def run_replica(
    control: str,
    api_key: str,
    *,
    name: str,
    tenants: list[str],
    host: str = "127.0.0.1",
    port: int = 8080,
    health_port: int = 0,
    tls_ca: Path | None = None,
    tls: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve one replica until ``stop`` is set (or the task is cancelled)."""
    traces = TraceStore()
    gateway = Gateway(None, traces=traces)
    feed = SnapshotFeed(gateway)

    def offer(epoch: int, snap: RoutingSnapshot) -> None:
        if not feed.offer(epoch, snap):
            log.warning("refused snapshot %s v%d: older than the one served", snap.tenant,
                        snap.version)  # fmt: skip

    watcher = RoutingWatcher(
        control, api_key=api_key, replica=name, tenants=tenants, offer=offer,
        connection=feed.connection, tls_ca=tls_ca, tls=tls,
    )  # fmt: skip
    feed.set_ack(watcher.ack)
    shipper = TraceShipper(watcher.push_traces)
    traces.add_sink(shipper)
    metrics = _Metrics(feed, shipper, watcher)

    async def healthz(request: web.Request) -> web.Response:
        body = feed.health()
        body["replica"] = name
        body["traces"] = _stats(shipper)
        return web.json_response(body, status=200 if feed.state().served else 503)

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(body=metrics.refresh(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    health = web.Application()
    health.router.add_get("/healthz", healthz)
    health.router.add_get("/metrics", metrics_page)
    runner = web.AppRunner(health, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, health_port).start()
    hport = int(runner.addresses[0][1])
    await gateway.start(host, port)
    print(f"relgate gateway {name} serving on http://{host}:{gateway.port} "
          f"(health http://{host}:{hport}/healthz, control {control})", flush=True)  # fmt: skip
    tasks = [asyncio.create_task(watcher.run()), asyncio.create_task(shipper.run())]
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await gateway.stop(5.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(shipper.flush(), 2.0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()


def _stats(shipper: TraceShipper) -> dict[str, int]:
    s = shipper.stats()
    return {"queued": s.queued, "shipped": s.shipped, "events_only": s.events_only,
            "dropped": s.dropped, "failed_pushes": s.failed_pushes}  # fmt: skip


@handle_errors
def gateway_cmd(
    control: Annotated[
        str, typer.Option("--control", help="gRPC address of the control plane (HOST:PORT).")
    ],
    tenant: Annotated[
        list[str] | None,
        typer.Option(
            "--tenant",
            metavar="TENANT",
            help="A tenant to serve (repeat for several).",
            show_default="the key's own",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Gateway port (0: any free).")
    ] = 8080,
    health_port: Annotated[
        int,
        typer.Option("--health-port", min=0, max=65535, help="/healthz and /metrics (0: any)."),
    ] = 8082,
    name: Annotated[
        str | None, typer.Option("--name", help="Replica name (default: host name and port).")
    ] = None,
    api_key: ApiKeyOpt = None,
    tls: Annotated[bool, typer.Option("--tls", help="Connect with TLS (system CAs).")] = False,
    tls_ca: Annotated[
        Path | None, typer.Option("--tls-ca", help="CA bundle of the control plane's cert.")
    ] = None,
) -> None:
    """Serve one gateway replica until interrupted."""
    if not api_key:
        raise AuthError("a gateway replica needs an API key: RELGATE_API_KEY (role admin)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    replica = name or f"{socket.gethostname()}-{port}"

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_replica(
            control, api_key, name=replica, tenants=list(tenant or []), host=host, port=port,
            health_port=health_port, tls_ca=tls_ca, tls=tls, stop=stop,
        )  # fmt: skip

    asyncio.run(main())
