"""The relgate server: gRPC API (grpc.aio), health, reflection, web port, anchoring.

`create_server` starts everything and returns a `RunningServer` that knows its bound ports
(tests pass port 0). `BackgroundServer` runs one on its own event-loop thread for tests,
benchmarks and embedding; `run_until_signal` is what `relgate serve` runs (SIGTERM and
SIGINT stop it gracefully: health turns NOT_SERVING, new calls are refused, calls in flight
get `grace` seconds to finish, then the store closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import importlib
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from relgate.access import DEFAULT_TENANT
from relgate.app.fleet import FleetHub
from relgate.app.gate_runs import GateRunBook
from relgate.app.gates import GateOptions, GateRunner
from relgate.app.jobs import Dispatcher
from relgate.app.probes import CountingTraceStore, dataset_anchors
from relgate.app.receipts import AnchorSchedule
from relgate.app.remote_judge import with_workers
from relgate.app.rollouts import RolloutManager, RolloutOptions
from relgate.app.routing import local_hub
from relgate.app.trace_log import TraceLog
from relgate.errors import InvalidInputError
from relgate.gateway.server import Gateway
from relgate.judge import make_judge
from relgate.receipts import TreeHeadSigner
from relgate.receipts.anchors import (
    AnchorRecord,
    AnchorSink,
    CommandSink,
    DirectorySink,
    Rfc3161Sink,
)
from relgate.receipts.model import TENANT_SUBJECT, ReceiptKind
from relgate.rollout.clock import ScaledClock
from relgate.service.auth import (
    Authenticator,
    Principal,
    bootstrap_admin_key,
    gateway_tenant,
)
from relgate.service.rpc import RpcEnv, build_handler
from relgate.service.servicers.attestation import AttestationServicer
from relgate.service.servicers.gate import GateServicer
from relgate.service.servicers.key import KeyServicer
from relgate.service.servicers.receipt import ReceiptServicer
from relgate.service.servicers.release import ReleaseServicer
from relgate.service.servicers.rollout import RolloutServicer
from relgate.service.servicers.routing import RoutingServicer
from relgate.service.servicers.worker import WorkerServicer
from relgate.service.state_metrics import CountingJudge, counting_judges
from relgate.service.web import Metrics, WebExtension, WebServer, start_web
from relgate.store import Store

log = logging.getLogger("relgate.service")

# A manifest may be up to 4 MiB (relgate.manifest.MAX_MANIFEST_BYTES); the envelope around
# it is small. Anything larger is refused by gRPC itself with RESOURCE_EXHAUSTED before a
# byte of it reaches Python.
DEFAULT_MAX_MESSAGE_BYTES = 5 * 1024 * 1024
# Replies may be larger (a long receipt list); this bounds what the server sends, while the
# receive limit above is what protects it from clients. Bundles are streamed in chunks.
MAX_SEND_BYTES = 64 * 1024 * 1024


class _AioHealth(Protocol):
    """The asyncio health servicer of grpcio-health-checking (untyped upstream)."""

    async def set(self, service: str, status: Any) -> None: ...
    async def enter_graceful_shutdown(self) -> None: ...


def _aio_health() -> _AioHealth:
    servicer: _AioHealth = importlib.import_module("grpc_health.v1._async").HealthServicer()
    return servicer


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


@dataclass(frozen=True)
class ServerParts:
    """What a web extension (the dashboard) is handed: the server's store, key lookup, tree-head
    signer, gate runner, rollout manager and clock."""

    store: Store
    authenticator: Authenticator
    signer: TreeHeadSigner
    gates: GateRunner
    rollouts: RolloutManager
    clock: Callable[[], float]


#: Builds extra routes for the web port from the server's parts (``relgate.dashboard.mount``).
WebExtensionFactory = Callable[[ServerParts], WebExtension]


@dataclass
class RunningServer:
    """A started server. `grpc_port` and `web_port` are the bound ports."""

    data_dir: Path
    host: str
    grpc_port: int
    web_port: int
    admin_key_path: Path | None
    store: Store
    metrics: Metrics
    tls: bool
    _grpc: grpc.aio.Server
    _health: _AioHealth
    _web: WebServer
    _anchor: AnchorSchedule | None
    rollouts: RolloutManager
    gateway: Gateway | None = None
    gates: GateRunner | None = None
    workers: Dispatcher | None = None
    gate_runs: GateRunBook | None = None
    _resuming: asyncio.Task[None] | None = None
    trace_log: TraceLog | None = None
    _serving: list[bool] = field(default_factory=lambda: [True])
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> str:
        """`host:port` of the gRPC API, as clients dial it."""
        return _hostport(self.host, self.grpc_port)

    @property
    def web_url(self) -> str:
        """Base URL of the web port."""
        return f"http://{_hostport(self.host, self.web_port)}"

    @property
    def gateway_port(self) -> int:
        """The gateway's bound port (0 when no gateway runs)."""
        return self.gateway.port if self.gateway is not None else 0

    @property
    def gateway_url(self) -> str:
        """Base URL of the gateway (OpenAI-compatible: ``/v1/chat/completions``)."""
        return f"http://{_hostport(self.host, self.gateway_port)}"

    @property
    def anchor(self) -> AnchorSchedule | None:
        """The anchoring schedule, when one is configured."""
        return self._anchor

    async def stop(self, grace: float = 5.0) -> None:
        """Graceful shutdown; safe to call twice."""
        if not self._serving[0]:
            await self._stopped.wait()
            return
        self._serving[0] = False
        await self._health.enter_graceful_shutdown()
        if self._anchor is not None:
            await self._anchor.stop()
        await self.rollouts.stop()
        await self._grpc.stop(grace)
        if self.gateway is not None:
            # Stop accepting, then let requests in flight finish (bounded by the grace).
            await self.gateway.stop(grace)
        await self._web.stop()
        if self._resuming is not None:
            self._resuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resuming
        if self.gate_runs is not None:
            # Before the score cache closes: a run in flight stays running (resumed later).
            await asyncio.to_thread(self.gate_runs.close)
        if self.trace_log is not None:
            await asyncio.to_thread(self.trace_log.stop)
        if self.gates is not None:
            await asyncio.to_thread(self.gates.close)
        await asyncio.to_thread(self.store.close)
        self._stopped.set()
        log.info("relgate server stopped")

    async def wait_stopped(self) -> None:
        """Return once `stop` has finished."""
        await self._stopped.wait()


async def create_server(
    data_dir: Path | str,
    *,
    store_url: str | None = None,
    host: str = "127.0.0.1",
    grpc_port: int = 50051,
    web_port: int = 8081,
    tls_cert: Path | str | None = None,
    tls_key: Path | str | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    anchor_dir: Path | str | None = None,
    anchor_command: Sequence[str] | None = None,
    anchor_interval: float = 300.0,
    anchor_tsa: str | None = None,
    weights_root: Path | str | None = None,
    gateway_port: int | None = 8080,
    gateway_anonymous_tenant: str | None = DEFAULT_TENANT,
    time_scale: float = 1.0,
    rollout: RolloutOptions | None = None,
    gate: GateOptions | None = None,
    workers: Dispatcher | None = None,
    web_extension: WebExtensionFactory | None = None,
) -> RunningServer:
    """Open the store, issue the bootstrap admin key, and start gRPC, the web port and the
    anchoring schedule. Ports may be 0 (the bound ones are on the result).

    `weights_root` resolves relative weight paths of manifests (default: the working
    directory). The store attests reachable open weights at register time; decisions
    spot-check them and a background task re-checks them fully (relgate.store.weights).

    The gateway (data plane) listens on `gateway_port` (None: no gateway) and serves each
    tenant's live release: a request with a gateway key is its tenant's; one without is
    `gateway_anonymous_tenant`'s (None: refused with 401, for a deployment of several
    tenants). `time_scale` > 1 runs the rollout clock (holds,
    deadlines, observer minutes, trace windows) that many times faster than wall time, from an
    anchor kept in the data directory; `rollout.clock` replaces that clock entirely (tests).

    `gate` sets where suites are found (`suites_dir`), the default judge and the score cache.
    `workers` is the judge-worker dispatcher (default: a fresh one; one built without a queue
    keeps its jobs in the store, ``relgate.app.jobs``); a gate judge of backend
    ``worker`` (options ``judge_sha256``, ``timeout``) is scored by its workers.
    `web_extension` adds routes to the web port from the server's parts (the CLI and the demo
    pass ``relgate.dashboard.mount``).
    """
    if (tls_cert is None) != (tls_key is None):
        raise InvalidInputError("TLS needs both a certificate and a key file")
    credentials = None
    if tls_cert is not None and tls_key is not None:
        credentials = grpc.ssl_server_credentials(
            [(Path(tls_key).read_bytes(), Path(tls_cert).read_bytes())]
        )
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = await asyncio.to_thread(
        functools.partial(
            Store.open,
            store_url,
            data_dir=root,
            weights_root=Path(weights_root) if weights_root is not None else None,
            recheck_weights=True,
        )
    )
    try:
        options = rollout or RolloutOptions()
        if rollout is None or rollout.clock is RolloutOptions().clock:
            clock = ScaledClock(time_scale, root / "clock.json" if time_scale != 1.0 else None)
            options = dataclasses.replace(options, clock=clock)
        return await _start(
            root, store, host, grpc_port, web_port, credentials, max_message_bytes,
            anchor_dir, anchor_command, anchor_interval, anchor_tsa,
            (gateway_port, gateway_anonymous_tenant), options,
            gate or GateOptions(), workers or Dispatcher(), web_extension,
        )  # fmt: skip
    except BaseException:
        await asyncio.to_thread(store.close)
        raise


def _counted(options: GateOptions, metrics: Metrics) -> GateOptions:
    """Gate options whose judges count the rows they score (``relgate_judge_rows_scored``)."""
    inner = options.judge_factory or (lambda c: make_judge(c.backend, **dict(c.options)))
    return dataclasses.replace(options, judge_factory=counting_judges(inner, metrics.judge_rows))


async def _start(
    root: Path,
    store: Store,
    host: str,
    grpc_port: int,
    web_port: int,
    credentials: grpc.ServerCredentials | None,
    max_message_bytes: int,
    anchor_dir: Path | str | None,
    anchor_command: Sequence[str] | None,
    anchor_interval: float,
    anchor_tsa: str | None,
    gateway_at: tuple[int | None, str | None],
    options: RolloutOptions,
    gate: GateOptions,
    workers: Dispatcher,
    web_extension: WebExtensionFactory | None,
) -> RunningServer:
    if workers.bindable:
        # Jobs in the store: they survive a restart and reach workers of every replica.
        workers.bind(store.jobs)
    admin_key_path = await asyncio.to_thread(bootstrap_admin_key, store.keys, root)
    # Created (mode 0600) on first start; its public key is pinned when the server verifies.
    signer = await asyncio.to_thread(TreeHeadSigner, root)
    metrics = Metrics()
    authenticator = Authenticator(store.keys)
    env = RpcEnv(
        authenticator=authenticator,
        metrics=metrics,
        audit=functools.partial(_operator_access, store),
    )
    servicers: list[Any] = [
        ReleaseServicer(store, metrics),
        ReceiptServicer(
            store,
            signer.public_key_b64,
            anchor_dirs=[Path(anchor_dir)] if anchor_dir is not None else [],
        ),
        KeyServicer(store.keys, authenticator),
        AttestationServicer(store.weights_root),
        GateServicer(
            gates := GateRunner(store, _counted(with_workers(gate, workers), metrics)),
            book := GateRunBook(store, gates),
        ),
        WorkerServicer(workers),
    ]
    if options.judge is None:
        # The quality monitor scores with the gate's own (default) judge: one loaded model.
        options = dataclasses.replace(options, judge=lambda: gates.judges.get(gate.judge))
    else:
        # A host's own monitor judge counts its rows too (the gate's are counted by the pool).
        own = options.judge
        options = dataclasses.replace(
            options, judge=lambda: CountingJudge(own(), metrics.judge_rows, "monitor")
        )
    if options.anchors is None:
        # The replay's negative anchors come from the release's own suite, as the gate's.
        manifest_of = store.manifest
        options = dataclasses.replace(options, anchors=dataset_anchors(manifest_of, gates.suites))
    traces = CountingTraceStore(clock=options.clock)
    # The replay's traces outlive the process (bounded): reloaded now, written off the path.
    trace_log = TraceLog(store.traces, clock=options.clock, registry=metrics.registry)
    await asyncio.to_thread(trace_log.restore, traces)
    traces.add_sink(trace_log)
    gateway = None
    gateway_port, anonymous = gateway_at
    if gateway_port is not None:
        gateway = Gateway(
            None,
            traces=traces,
            tenant_of=functools.partial(gateway_tenant, authenticator, anonymous=anonymous),
            registry=metrics.registry,
        )
    # One hub feeds every gateway: this server's own (a replica fed in process) and each
    # `relgate gateway` process watching the RoutingService (docs/scale-out-gateway.md).
    hub = FleetHub() if gateway is None else local_hub(gateway)
    rollouts = RolloutManager(
        store,
        gateway=gateway,
        traces=traces,
        options=options,
        hub=hub,
    )
    metrics.watch(store, rollouts)
    # The routing (every tenant's live release, a rollout's split) is in place before the
    # gateway accepts its first request: no window that serves nothing after a restart.
    await rollouts.start()
    if gateway is not None and gateway_port is not None:
        try:
            await gateway.start(host, gateway_port)
        except OSError as exc:
            await rollouts.stop()
            raise InvalidInputError(
                f"cannot bind the gateway to {host}:{gateway_port}: {exc}"
            ) from None
        except BaseException:
            await rollouts.stop()
            raise
    servicers.append(RolloutServicer(rollouts))
    servicers.append(RoutingServicer(hub, traces, store.manifest))
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max(MAX_SEND_BYTES, max_message_bytes)),
            # Without this a second server on the same port would silently share it.
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers([build_handler(s.descriptor, s.rpcs(), env) for s in servicers])
    health_servicer = _aio_health()
    add_health: Any = health_pb2_grpc.add_HealthServicer_to_server
    add_health(health_servicer, server)
    names = [s.descriptor.full_name for s in servicers]
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    target = _hostport(host, grpc_port)
    try:
        if credentials is not None:
            bound = server.add_secure_port(target, credentials)
        else:
            bound = server.add_insecure_port(target)
    except RuntimeError as exc:
        await _stop_data_plane(rollouts, gateway)
        raise InvalidInputError(f"cannot bind gRPC to {target}: {exc}") from None
    if bound == 0:
        await _stop_data_plane(rollouts, gateway)
        raise InvalidInputError(f"cannot bind gRPC to {target}")
    await server.start()
    serving = [True]
    try:
        parts = ServerParts(
            store=store,
            authenticator=env.authenticator,
            signer=signer,
            gates=gates,
            rollouts=rollouts,
            clock=options.clock,
        )
        extend = web_extension(parts) if web_extension is not None else None
        web = await start_web(metrics, lambda: serving[0], host=host, port=web_port, extend=extend)
    except OSError as exc:
        await server.stop(None)
        await _stop_data_plane(rollouts, gateway)
        raise InvalidInputError(f"cannot bind the web port {web_port} on {host}: {exc}") from None
    anchor = None
    if anchor_dir is not None or anchor_command or anchor_tsa:
        sinks: list[AnchorSink] = []
        if anchor_dir is not None:
            sinks.append(DirectorySink(Path(anchor_dir)))
        if anchor_command:
            sinks.append(CommandSink(list(anchor_command)))
        if anchor_tsa:
            sinks.append(Rfc3161Sink(anchor_tsa))

        def on_anchor(record: AnchorRecord | None) -> None:
            ok = record is not None and record.ok
            metrics.anchors.labels(outcome="ok" if ok else "error").inc()

        anchor = AnchorSchedule(store, signer, sinks, interval=anchor_interval, on_anchor=on_anchor)
        anchor.start()
    trace_log.start()
    running = RunningServer(
        data_dir=root,
        host=host,
        grpc_port=bound,
        web_port=web.port,
        admin_key_path=admin_key_path,
        store=store,
        metrics=metrics,
        tls=credentials is not None,
        _grpc=server,
        _health=health_servicer,
        _web=web,
        _anchor=anchor,
        rollouts=rollouts,
        gateway=gateway,
        gates=gates,
        workers=workers,
        gate_runs=book,
        # The leader resumes the gate runs whose server stopped (app/gate_runs.py).
        _resuming=asyncio.create_task(
            book.watch(lambda: rollouts.leadership.leading), name="relgate-gate-runs"
        ),
        trace_log=trace_log,
        _serving=serving,
    )
    # Everything loaded so far lives as long as the server: out of the collector's sight, a full
    # collection no longer walks it (measured: full collections of ~330 ms that landed on
    # rollbacks in flight; docs/scale-out-gateway.md, "The rollback tail"). Collected first, so
    # no garbage is frozen with it (a process that starts several servers does not keep theirs).
    gc.collect()
    gc.freeze()
    log.info("relgate server on %s (web %s)", running.address, running.web_url)
    return running


def _operator_access(store: Store, principal: Principal, tenant: str, method: str) -> None:
    """An operator key acted on another tenant: a receipt in that tenant's chain says who,
    when and through which method (before the request touches anything)."""
    store.record_decision(
        tenant=tenant,
        release_sha=TENANT_SUBJECT,
        kind=ReceiptKind.OPERATOR_ACCESS,
        evidence={
            "key_sha256": principal.key_sha256,
            "key_tenant": principal.tenant,
            "method": method,
        },
        actor=principal.actor,
        reason=f"operator key of tenant {principal.tenant!r} called {method}",
    )


async def _stop_data_plane(rollouts: RolloutManager, gateway: Gateway | None) -> None:
    await rollouts.stop()
    if gateway is not None:
        await gateway.stop(0)


async def run_until_signal(running: RunningServer, *, grace: float = 10.0) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("signal received; shutting down (grace %.1fs)", grace)
        await running.stop(grace)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


class BackgroundServer:
    """A server on its own event-loop thread: `with BackgroundServer(dir, ...) as s:`.

    Takes the keyword arguments of `create_server` (ports default to 0 here).
    """

    def __init__(self, data_dir: Path | str, **kwargs: Any) -> None:
        kwargs.setdefault("grpc_port", 0)
        kwargs.setdefault("web_port", 0)
        kwargs.setdefault("gateway_port", 0)
        self._data_dir = data_dir
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.server: RunningServer | None = None

    def _submit(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def start(self) -> RunningServer:
        """Start and return the running server."""
        self._thread.start()
        try:
            self.server = self._submit(create_server(self._data_dir, **self._kwargs)).result()
        except BaseException:
            self._shutdown_loop()
            raise
        return self.server

    def stop(self, grace: float = 5.0) -> None:
        """Stop the server and its thread."""
        if self.server is not None:
            self._submit(self.server.stop(grace)).result()
            self.server = None
        self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        with contextlib.suppress(RuntimeError):
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "BackgroundServer",
    "RunningServer",
    "ServerParts",
    "WebExtensionFactory",
    "create_server",
    "run_until_signal",
]
