"""The gateway: an OpenAI-compatible HTTP front door that routes live traffic to releases.

Per request: parse, read the routing snapshot reference once (admission: the snapshot is
pinned), classify (traffic class, slice, session bucket), choose the release, render that
release's prompt template into the messages, forward to that release's endpoint (the pooled
client in :mod:`relgate.gateway.upstream`), answer with ``x-relgate-release: <sha256>``
(streaming: SSE bytes passed through as they arrive), record a :class:`~relgate.traces.Trace`.

Hosting. ``relgate serve`` runs the gateway inside its own event loop::

    gw = await start_gateway(snapshot, host="127.0.0.1", port=8080)
    gw.swap(snapshot.with_weight(500))        # atomic; visible to the next admission
    result = await gw.drain(deadline_s=30)    # wait for requests pinned to older snapshots
    gw.traces.p95(sha, 60.0)                  # monitors read the TraceStore
    await gw.stop()

Synchronous callers (a controller on its own thread, benches) use
:class:`relgate.gateway.hosting.GatewayThread`, which
runs the same :class:`Gateway` on a private loop in a daemon thread and offers the same verbs.

Swap. :meth:`Gateway.swap` replaces one attribute; CPython makes that a single atomic store, so
it is safe from any thread and needs no lock on the request path. Versions must increase, so a
stale writer cannot reinstate an old snapshot. Drain waits for the requests admitted under older
versions; at the deadline it can cut the stragglers off (they are recorded with status 503).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry

from relgate.access import DEFAULT_TENANT
from relgate.errors import AuthError, InvalidInputError, InvalidTransitionError, NotFoundError
from relgate.gateway.metrics import REQUEST_KEY, GatewayMetrics, release_label
from relgate.gateway.openai import (
    PASS_THROUGH,
    Endpoint,
    chat_delta,
    error_middleware,
    health_routes,
    json_object,
    model_error,
    model_object,
    openai_error,
)
from relgate.gateway.upstream import Completion, Exchange, Upstream, answer_of, error_response
from relgate.manifest import last_user_text
from relgate.routing import (
    Classification,
    DrainResult,
    ReleaseRoute,
    RoutingSnapshot,
    SwapRecord,
)
from relgate.traces import Trace, TraceStore, shadow_trace_id

T = TypeVar("T")

# Fields that steer relgate and mean nothing to a model server.
_STRIP_FIELDS = ("metadata",)


@dataclass(slots=True)
class _Admission:
    tenant: str
    version: int
    task: asyncio.Task[Any] | None
    done: asyncio.Future[None]
    cut_off: bool = False


class Gateway:
    """The data plane. Create it, then ``await start(host, port)`` on the loop that will run it.

    The gateway holds one snapshot per tenant; a request is served by its tenant's snapshot
    (``await tenant_of(request)``, which may raise ``AuthError`` for a 401; by default every
    request is the default tenant's); feedback reaches only traces of the caller's tenant.
    ``snapshot``
    may be None: requests then get 503 until their tenant's first :meth:`swap`.
    ``backend_timeout_s`` bounds one forwarded request; ``max_shadow_in_flight`` bounds mirrored
    shadow requests (extra mirrors are skipped, never queued). ``credentials(route)`` returns
    extra headers for a release's endpoint (``{"Authorization": "Bearer ..."}`` for a provider
    API): secrets stay with the host, out of the hashed manifest. ``registry`` receives the
    gateway's Prometheus metrics (default: a private one, ``gateway.metrics.registry``).
    """

    def __init__(
        self,
        snapshot: RoutingSnapshot | None,
        *,
        traces: TraceStore | None = None,
        backend_timeout_s: float = 300.0,
        max_connections: int = 512,
        max_shadow_in_flight: int = 64,
        credentials: Callable[[ReleaseRoute], Mapping[str, str]] | None = None,
        tenant_of: Callable[[web.Request], Awaitable[str]] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        #: Requests, latency, 5xx and in-flight, in ``registry`` (docs/metrics.md).
        self.metrics = GatewayMetrics(registry)
        self._snapshots: dict[str, RoutingSnapshot] = {}
        if snapshot is not None:
            self._snapshots[snapshot.tenant] = snapshot
        self._tenant_of = tenant_of or _default_tenant
        self.traces = traces if traces is not None else TraceStore()
        self._upstream = Upstream(
            timeout_s=backend_timeout_s, max_connections=max_connections, credentials=credentials
        )
        self._max_shadow = max_shadow_in_flight
        self._swap_lock = threading.Lock()
        self._closing = False
        self._site: web.TCPSite | None = None
        self._inflight: dict[int, _Admission] = {}
        self._seq = 0
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self.host = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (routes only; :meth:`start` also opens the client pool)."""
        app = web.Application(
            client_max_size=4 * 1024 * 1024,
            middlewares=[self.metrics.middleware(), error_middleware],
        )
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        app.router.add_post(
            "/v1/{endpoint:completions|embeddings|responses}", self._handle_pass_through
        )
        app.router.add_post("/v1/traces/{trace_id}/feedback", self._handle_feedback)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/v1/models/{model}", self._handle_model)
        health_routes(app, lambda: self._snapshots, lambda: not self._closing)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and serve on ``host:port`` (port 0: any free port, read it from ``.port``)."""
        self._loop = asyncio.get_running_loop()
        await self._upstream.open()
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = self._site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        # The runner's bound addresses, so port 0 resolves to the port the OS chose.
        self.host, self.port = host, int(self._runner.addresses[0][1])

    async def stop(self, drain_deadline_s: float = 5.0) -> DrainResult:
        """Stop accepting, drain every in-flight request (bounded by the deadline), then close.

        Requests that still reach the gateway on open keep-alive connections get 503.
        """
        t0 = time.perf_counter()
        self._closing = True
        if self._site is not None:
            await self._site.stop()
        result = await self._drain_where(lambda a: True, -1, drain_deadline_s, cut_off=True)
        # Mirrored shadow requests get what is left of the deadline, then are cancelled.
        if self._shadow_tasks:
            left = max(0.0, drain_deadline_s - (time.perf_counter() - t0))
            _, late = await asyncio.wait(list(self._shadow_tasks), timeout=left)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        await self._upstream.close()
        return result

    # -- routing state -----------------------------------------------------------------------

    @property
    def snapshot(self) -> RoutingSnapshot | None:
        """The default tenant's live snapshot (what its next request will pin)."""
        return self._snapshots.get(DEFAULT_TENANT)

    def snapshot_of(self, tenant: str) -> RoutingSnapshot | None:
        """A tenant's live snapshot (None: nothing is live for it)."""
        return self._snapshots.get(tenant)

    @property
    def accepting(self) -> bool:
        """False once :meth:`stop` has begun (the listener is closed, new requests get 503)."""
        return not self._closing

    def swap(self, snapshot: RoutingSnapshot) -> SwapRecord:
        """Make ``snapshot`` live for every request of its tenant admitted from now on.
        Thread-safe.

        Raises InvalidTransitionError unless ``snapshot.version`` is higher than the tenant's
        live one (a stale writer cannot reinstate an old snapshot).
        """
        with self._swap_lock:
            old = self._snapshots.get(snapshot.tenant)
            if old is not None and snapshot.version <= old.version:
                raise InvalidTransitionError(
                    f"snapshot version {snapshot.version} of tenant {snapshot.tenant!r} is not "
                    f"newer than live {old.version}"
                )
            self._snapshots[snapshot.tenant] = snapshot
            # Taken after the store: any admission stamped later than `at` has read the new one.
            return SwapRecord(
                snapshot.tenant,
                None if old is None else old.version,
                snapshot.version,
                self.traces.clock(),
            )

    def in_flight(self, version: int | None = None, *, tenant: str = DEFAULT_TENANT) -> int:
        """The tenant's requests being served (pinned to ``version`` if given)."""
        return sum(
            1
            for a in list(self._inflight.values())
            if a.tenant == tenant and (version is None or a.version == version)
        )

    async def drain(
        self,
        deadline_s: float,
        before_version: int | None = None,
        *,
        cut_off: bool = True,
        tenant: str = DEFAULT_TENANT,
    ) -> DrainResult:
        """Wait until the tenant's requests pinned to snapshots older than ``before_version``
        finish.

        ``before_version`` defaults to the live version. Requests still running at the deadline
        are cancelled when ``cut_off`` (recorded with status 503, error "drain deadline"), else
        left running and counted in ``cut_off`` all the same.
        """
        snap = self._snapshots.get(tenant)
        if before_version is None:
            before_version = snap.version if snap is not None else 0
        bv = before_version
        return await self._drain_where(
            lambda a: a.tenant == tenant and a.version < bv, bv, deadline_s, cut_off=cut_off
        )

    async def _drain_where(
        self, pred: Callable[[_Admission], bool], bv: int, deadline_s: float, *, cut_off: bool
    ) -> DrainResult:
        t0 = time.perf_counter()
        pending = [a for a in list(self._inflight.values()) if pred(a)]
        futs = [a.done for a in pending]
        finished = len(futs)
        late: list[_Admission] = []
        if futs:
            _, still = await asyncio.wait(futs, timeout=max(deadline_s, 0.0))
            late = [a for a in pending if a.done in still]
            finished -= len(late)
            if cut_off and late:
                for a in late:
                    a.cut_off = True
                    if a.task is not None:
                        a.task.cancel()
                await asyncio.wait([a.done for a in late], timeout=1.0)
        return DrainResult(bv, len(futs), finished, len(late), time.perf_counter() - t0)

    # -- forwarding --------------------------------------------------------------------------

    def _forward_body(
        self, body: Mapping[str, Any], route: ReleaseRoute, attrs: Mapping[str, str]
    ) -> dict[str, Any]:
        """The body sent to ``route``: the client's, with the release's rendering of the
        messages and its generation settings (those of the class ``attrs`` selects) winning
        over the client's fields of the same name."""
        out = {k: v for k, v in body.items() if k not in _STRIP_FIELDS}
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidInputError("messages: expected a non-empty list")
        meta = body.get("metadata")
        rendered = route.render(messages, meta if isinstance(meta, Mapping) else None, attrs)
        out.update(rendered.generation)
        out["messages"] = rendered.messages
        out["model"] = route.model
        return out

    async def complete(
        self,
        route: ReleaseRoute,
        prompt: str,
        *,
        variables: Mapping[str, str] | None = None,
        slice: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> Completion:
        """Ask one release for a non-streaming answer, outside the routing split.

        The release's own template is applied. This is how the replay monitor runs a recorded
        trace through the candidate; nothing is recorded as a trace.
        """
        body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}], **(extra or {})}
        if variables:
            body["metadata"] = dict(variables)
        attrs = {**(variables or {}), "slice": slice} if slice else dict(variables or {})
        fwd = self._forward_body(body, route, attrs)
        fwd["stream"] = False
        return await self._upstream.complete(route, fwd, slice)

    async def _caller(self, request: web.Request) -> str | web.Response:
        """The tenant of the request, or the 401 response that refuses it."""
        try:
            return await self._tenant_of(request)
        except AuthError as e:
            return error_response(401, str(e), "authentication_error")

    async def _handle_models(self, request: web.Request) -> web.Response:
        tenant = await self._caller(request)
        if isinstance(tenant, web.Response):
            return tenant
        snap = self._snapshots.get(tenant)
        routes = snap.routes() if snap is not None else ()
        return web.json_response({"object": "list", "data": [model_object(r) for r in routes]})

    async def _handle_model(self, request: web.Request) -> web.Response:
        tenant = await self._caller(request)
        if isinstance(tenant, web.Response):
            return tenant
        wanted = request.match_info["model"]
        snap = self._snapshots.get(tenant)
        for r in snap.routes() if snap is not None else ():
            if wanted in (r.model, r.release_sha256):
                return web.json_response(model_object(r))
        return openai_error(
            404,
            f"model {wanted[:100]!r} is not served by this routing",
            code="model_not_found",
            param="model",
        )

    async def _handle_feedback(self, request: web.Request) -> web.Response:
        trace_id = request.match_info["trace_id"]
        tenant = await self._caller(request)
        if isinstance(tenant, web.Response):
            return tenant
        try:
            body = await request.json()
            grade = body.get("grade") if isinstance(body, dict) else None
            trace = self.traces.set_feedback(trace_id, grade, tenant=tenant)
        except (ValueError, InvalidInputError) as e:
            return error_response(400, str(e), "invalid_request_error")
        except NotFoundError as e:
            return error_response(404, str(e), "not_found_error")
        return web.json_response({"id": trace.id, "feedback_grade": trace.feedback_grade})

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, None)

    async def _handle_pass_through(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, PASS_THROUGH[request.match_info["endpoint"]])

    async def _serve(self, request: web.Request, ep: Endpoint | None) -> web.StreamResponse:
        """Serve one request: chat (``ep`` None: the release's template renders the messages)
        or a pass-through endpoint (the body is forwarded as sent)."""
        t0 = time.perf_counter()
        tenant = await self._caller(request)
        if isinstance(tenant, web.Response):
            return tenant
        labels = request.get(REQUEST_KEY)
        if labels is not None:
            labels.tenant = tenant
        body = json_object(await request.read())
        if isinstance(body, web.Response):
            return body
        clock = self.traces.clock
        # Admission: stamp first, then read the reference once (see SwapRecord.at).
        admitted_at = clock()
        snap = self._snapshots.get(tenant)
        if snap is None or self._closing:
            msg = "gateway is shutting down" if self._closing else "no release is live"
            return error_response(503, msg)
        refused = model_error(body, snap)
        if refused is not None:
            return refused
        cls = snap.classify(request.headers, body, request.remote or "")
        route, role = snap.choose(cls)
        if labels is not None:
            labels.release, labels.slice = release_label(route.release_sha256), cls.slice
        try:
            if ep is None:
                fwd = self._forward_body(body, route, _class_attrs(cls))
            elif ep.required not in body:
                raise InvalidInputError(f"{ep.required}: required")
            else:
                fwd = ep.forward_body(body, route)
        except InvalidInputError as e:
            return error_response(400, str(e))
        trace_id = "tr_" + uuid.uuid4().hex
        prompt = last_user_text(body["messages"]) if ep is None else ep.prompt_of(body)
        meta = body.get("metadata")
        variables = (
            tuple(sorted((k, v) for k, v in meta.items() if isinstance(v, str) and k != "slice"))
            if isinstance(meta, dict)
            else ()
        )
        mirror = snap.mirror_target(cls) if ep is None else None
        if mirror is not None:
            self._start_shadow(mirror, body, cls, snap, prompt, variables, trace_id)

        loop = asyncio.get_running_loop()
        self._seq += 1
        seq = self._seq
        stream = bool(fwd.get("stream"))
        ex = Exchange()
        # aiohttp runs each request in its own task: a drain deadline cancels that task, and the
        # handler turns exactly that cancellation into a 503 answer (uncancel, as asyncio.timeout
        # does) instead of adding a task hop to every request.
        me = asyncio.current_task()
        adm = _Admission(tenant, snap.version, me, loop.create_future())
        self._inflight[seq] = adm
        up = self._upstream
        url = None if ep is None else ep.url(route)
        try:
            try:
                if stream:
                    delta = chat_delta if ep is None else ep.delta_of
                    return await up.forward_stream(
                        request, route, fwd, cls.slice, trace_id, ex, url=url, delta=delta
                    )
                answer = answer_of if ep is None else ep.answer_of
                return await up.forward_json(
                    route, fwd, cls.slice, trace_id, ex, url=url, answer=answer
                )
            except asyncio.CancelledError:
                if not (adm.cut_off and me is not None and me.cancelling() == 1):
                    ex.status, ex.error = 499, "client closed request"
                    raise
                me.uncancel()
                ex.status, ex.error = 503, "drain deadline"
                if ex.out is not None:
                    return ex.out
                return up.backend_error(503, ex.error, route, trace_id)
            except Exception as e:
                ex.status, ex.error = 500, f"gateway error: {e.__class__.__name__}"
                raise
        finally:
            del self._inflight[seq]
            if not adm.done.done():
                adm.done.set_result(None)
            if ep is None or ep.traced:
                self._record(
                    trace_id, snap, cls, route, prompt, variables, admitted_at, t0, ex,
                    role=role, stream=stream,
                )  # fmt: skip

    def _record(
        self,
        trace_id: str,
        snap: RoutingSnapshot,
        cls: Classification,
        route: ReleaseRoute,
        prompt: str,
        variables: tuple[tuple[str, str], ...],
        admitted_at: float,
        t0: float,
        ex: Exchange,
        *,
        role: str,
        stream: bool = False,
        shadow: bool = False,
    ) -> None:
        """Record one finished request (served or mirrored) as a trace."""
        self.traces.record(
            Trace(
                id=trace_id,
                time=self.traces.clock(),
                slice=cls.slice,
                traffic_class=cls.traffic_class,
                prompt=prompt,
                answer=ex.answer,
                latency_s=time.perf_counter() - t0,
                status=ex.status,
                release_sha256=route.release_sha256,
                session_bucket=cls.bucket,
                admitted_at=admitted_at,
                snapshot_version=snap.version,
                tenant=snap.tenant,
                role=role,
                shadow=shadow,
                stream=stream,
                variables=variables,
                error=ex.error,
            )
        )

    # -- shadow ------------------------------------------------------------------------------

    def _start_shadow(
        self,
        route: ReleaseRoute,
        body: Mapping[str, Any],
        cls: Classification,
        snap: RoutingSnapshot,
        prompt: str,
        variables: tuple[tuple[str, str], ...],
        served_id: str,
    ) -> None:
        if len(self._shadow_tasks) >= self._max_shadow:
            return
        mirror = self._shadow(route, body, cls, snap, prompt, variables, served_id)
        task = asyncio.create_task(mirror)
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(
        self,
        route: ReleaseRoute,
        body: Mapping[str, Any],
        cls: Classification,
        snap: RoutingSnapshot,
        prompt: str,
        variables: tuple[tuple[str, str], ...],
        served_id: str,
    ) -> None:
        clock = self.traces.clock
        admitted = clock()
        # Linked to the served request's trace: shadow scoring pairs the two answers.
        trace_id = shadow_trace_id(served_id)
        try:
            fwd = self._forward_body(body, route, _class_attrs(cls))
        except InvalidInputError:
            return
        fwd["stream"] = False
        t0 = time.perf_counter()
        ex = Exchange()
        await self._upstream.forward_json(route, fwd, cls.slice, trace_id, ex)
        self._record(
            trace_id, snap, cls, route, prompt, variables, admitted, t0, ex,
            role="candidate", shadow=True,
        )  # fmt: skip


def _class_attrs(cls: Classification) -> dict[str, str]:
    """The labels a release's per-class settings are selected by: the request's string
    metadata and the slice it was classified into."""
    return {**cls.attrs, "slice": cls.slice}


async def _default_tenant(request: web.Request) -> str:
    return DEFAULT_TENANT


async def start_gateway(
    snapshot: RoutingSnapshot | None,
    host: str = "127.0.0.1",
    port: int = 0,
    **options: Any,
) -> Gateway:
    """Create a :class:`Gateway` on the running loop and start serving; ``.port`` is bound."""
    gw = Gateway(snapshot, **options)
    await gw.start(host, port)
    return gw


__all__ = ["Gateway", "start_gateway"]
