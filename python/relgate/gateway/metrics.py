"""The gateway's Prometheus metrics (docs/metrics.md): requests, latency, 5xx and in-flight.

Labels are bounded: ``tenant`` (one per API tenant), ``release`` (the first 12 hex digits of the
release's sha256, ``none`` before a release was chosen), ``slice`` (client-supplied, so capped:
after :data:`MAX_SLICES` distinct values per gateway every new one is counted as ``other``),
``endpoint`` (the route's path, ``unmatched`` for unknown paths) and ``code`` (the HTTP status).
No session, trace or prompt ever becomes a label. The registry is the host's (``relgate serve``
exposes it on its web port's ``/metrics``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["MAX_SLICES", "GatewayMetrics", "RequestLabels", "release_label"]

#: Distinct ``slice`` label values one gateway reports before folding new ones into ``other``.
MAX_SLICES = 64

# Model latencies: tens of milliseconds (cached, tiny models) to minutes (long generations).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def release_label(sha256: str | None) -> str:
    """The ``release`` label of a release: the first 12 hex digits (``none``: not chosen)."""
    return sha256[:12] if sha256 else "none"


@dataclass(slots=True)
class RequestLabels:
    """What a handler learned: the caller's tenant, the release chosen and the slice."""

    tenant: str = "none"
    release: str = "none"
    slice: str = "none"


#: Where a handler leaves what it learned about the request, for the metrics middleware.
REQUEST_KEY = web.RequestKey("relgate_labels", RequestLabels)


class GatewayMetrics:
    """The gateway's metrics in ``registry``; :meth:`middleware` records every request."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ("tenant", "release", "slice", "endpoint", "code")
        self.requests = Counter(
            "relgate_gateway_requests",
            "Requests answered by the gateway, by tenant, release, slice, endpoint and status.",
            labels,
            registry=self.registry,
        )
        self.server_errors = Counter(
            "relgate_gateway_server_errors",
            "Requests answered with a 5xx status, by tenant, release and slice.",
            ("tenant", "release", "slice"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "relgate_gateway_request_duration_seconds",
            "Time from arrival to the last byte of the answer (seconds), streaming included.",
            ("tenant", "release", "slice"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "relgate_gateway_in_flight_requests",
            "Requests being served right now, by endpoint.",
            ("endpoint",),
            registry=self.registry,
        )
        self._slices: set[str] = set()
        self._lock = threading.Lock()

    def slice_label(self, name: str) -> str:
        """``name``, or ``other`` once :data:`MAX_SLICES` distinct slices were seen."""
        with self._lock:
            if name in self._slices:
                return name
            if len(self._slices) < MAX_SLICES:
                self._slices.add(name)
                return name
        return "other"

    def observe(self, labels: RequestLabels, endpoint: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        sl = labels.slice if labels.slice == "none" else self.slice_label(labels.slice)
        key = (labels.tenant, labels.release, sl)
        self.requests.labels(*key, endpoint, str(status)).inc()
        if status >= 500:
            self.server_errors.labels(*key).inc()
        if labels.release != "none":
            self.latency.labels(*key).observe(seconds)

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        """An aiohttp middleware recording every ``/v1/`` request (after the error middleware
        has shaped the answer, so 404s and 405s are counted with their status)."""

        @web.middleware
        async def record(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            if not request.path.startswith("/v1/"):
                return await handler(request)
            info = request.match_info.route.resource
            endpoint = info.canonical if info is not None else "unmatched"
            labels = RequestLabels()
            request[REQUEST_KEY] = labels
            t0 = time.perf_counter()
            status = 499  # the client went away (the handler was cancelled)
            gauge = self.in_flight.labels(endpoint)
            gauge.inc()
            try:
                resp = await handler(request)
                status = resp.status
                return resp
            finally:
                gauge.dec()
                self.observe(labels, endpoint, status, time.perf_counter() - t0)

        return record
