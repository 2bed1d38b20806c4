"""The gateway's side toward model servers: one pooled aiohttp client to release endpoints.

:class:`Upstream` forwards a rendered chat request to one release's OpenAI-compatible endpoint
and turns the answer into the gateway's response: JSON relayed as is, SSE bytes passed through
as they arrive while the answer text is collected for the trace, and backend failures turned
into 502/504 answers. Every response carries ``x-relgate-release`` and ``x-relgate-trace-id``.
What happened is written into an :class:`Exchange` as it happens, so the caller can record a
trace however the forward ends (finished, failed, cut off by a drain, or abandoned by the
client).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from relgate.errors import InvalidTransitionError
from relgate.gateway.openai import chat_delta, openai_error
from relgate.routing import RELEASE_HEADER, SLICE_HEADER, TRACE_HEADER, ReleaseRoute

_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Completion:
    """A non-streaming answer from one release (used to replay traces through a release)."""

    status: int
    answer: str
    latency_s: float
    release_sha256: str
    error: str = ""


@dataclass(slots=True)
class Exchange:
    """What one forward produced so far; the handler records it whatever way the forward ends."""

    status: int = 502
    answer: str = ""
    error: str = ""
    out: web.StreamResponse | None = None


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes (pre-encoded bytes skip aiohttp's JSON payload machinery)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(status: int, message: str, kind: str | None = None) -> web.Response:
    """An OpenAI-shaped error body (string ``code``; ``relgate.gateway.openai.openai_error``)."""
    return openai_error(status, message, kind)


def answer_of(payload: Mapping[str, Any]) -> str:
    """``choices[0].message.content`` of a chat completion ("" when absent)."""
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        msg = choices[0].get("message")
        if isinstance(msg, Mapping) and isinstance(msg.get("content"), str):
            return str(msg["content"])
    return ""


class SseText:
    """Collects the answer text (``delta``: chat's ``choices[0].delta.content`` by default) from
    SSE bytes split at arbitrary points."""

    __slots__ = ("_buf", "_delta", "parts")

    def __init__(self, delta: Callable[[Mapping[str, Any]], str | None] = chat_delta) -> None:
        self._buf = b""
        self._delta = delta
        self.parts: list[str] = []

    def feed(self, chunk: bytes) -> None:
        """Consume the next bytes of the stream."""
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]" or not data:
                continue
            try:
                obj = json.loads(data)
            except ValueError:
                continue
            content = self._delta(obj) if isinstance(obj, Mapping) else None
            if isinstance(content, str):
                self.parts.append(content)

    @property
    def text(self) -> str:
        """The answer text collected so far."""
        return "".join(self.parts)


class Upstream:
    """A pooled HTTP client to release endpoints. ``open()`` on the loop that will use it."""

    def __init__(
        self,
        *,
        timeout_s: float = 300.0,
        max_connections: int = 512,
        credentials: Callable[[ReleaseRoute], Mapping[str, str]] | None = None,
    ) -> None:
        # Secrets (an API key for a closed-weight endpoint) never live in a manifest, which is
        # hashed and shared: the host supplies them per route through `credentials`.
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the connection pool."""
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
        )

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()

    def _auth(self, route: ReleaseRoute) -> Mapping[str, str]:
        return self._credentials(route) if self._credentials is not None else {}

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session (InvalidTransitionError before :meth:`open`)."""
        if self._session is None:
            raise InvalidTransitionError("upstream client not open")
        return self._session

    async def complete(
        self, route: ReleaseRoute, fwd: dict[str, Any], slice: str = ""
    ) -> Completion:
        """Post a rendered non-streaming request; never raises for backend trouble."""
        headers = {**self._auth(route), "Content-Type": _JSON}
        if slice:
            headers[SLICE_HEADER] = slice
        t0 = time.perf_counter()
        try:
            async with self.session.post(
                route.completions_url, data=dumps(fwd), headers=headers
            ) as r:
                raw = await r.read()
                status = r.status
        except (aiohttp.ClientError, TimeoutError) as e:
            return Completion(502, "", time.perf_counter() - t0, route.release_sha256, repr(e))
        answer, err = "", ""
        if status == 200:
            try:
                answer = answer_of(json.loads(raw))
            except ValueError:
                status, err = 502, "backend sent invalid JSON"
        else:
            err = raw[:500].decode("utf-8", "replace")
        return Completion(status, answer, time.perf_counter() - t0, route.release_sha256, err)

    @staticmethod
    def headers(route: ReleaseRoute, trace_id: str) -> dict[str, str]:
        """The headers every gateway response carries."""
        return {RELEASE_HEADER: route.release_sha256, TRACE_HEADER: trace_id}

    async def forward_json(
        self,
        route: ReleaseRoute,
        fwd: dict[str, Any],
        slice: str,
        trace_id: str,
        ex: Exchange,
        *,
        url: str | None = None,
        answer: Callable[[Mapping[str, Any]], str] = answer_of,
    ) -> web.StreamResponse:
        """Post ``fwd`` to ``url`` (default: the release's chat completions) and relay the
        answer; ``answer`` reads the answer text for the trace."""
        hdrs = {
            **self._auth(route),
            SLICE_HEADER: slice,
            TRACE_HEADER: trace_id,
            "Content-Type": _JSON,
        }
        target = url or route.completions_url
        try:
            async with self.session.post(target, data=dumps(fwd), headers=hdrs) as r:
                raw = await r.read()
                status = r.status
                ctype = r.headers.get("Content-Type", _JSON)
        except TimeoutError:
            return self._fail(ex, 504, "backend timed out", route, trace_id)
        except aiohttp.ClientError as e:
            return self._fail(
                ex, 502, f"backend unreachable: {e.__class__.__name__}", route, trace_id
            )
        if status == 200:
            try:
                payload = json.loads(raw)
                ex.answer = answer(payload) if isinstance(payload, Mapping) else ""
            except ValueError:
                return self._fail(ex, 502, "backend sent invalid JSON", route, trace_id)
        else:
            ex.error = raw[:500].decode("utf-8", "replace")
        ex.status = status
        resp = web.Response(body=raw, status=status, headers=self.headers(route, trace_id))
        resp.content_type = ctype.split(";")[0]
        return resp

    def backend_error(
        self, status: int, msg: str, route: ReleaseRoute, trace_id: str
    ) -> web.Response:
        """An error answer that still names the release and the trace."""
        resp = error_response(status, msg, "backend_error")
        resp.headers.update(self.headers(route, trace_id))
        return resp

    def _fail(
        self, ex: Exchange, status: int, msg: str, route: ReleaseRoute, trace_id: str
    ) -> web.Response:
        ex.status, ex.error = status, msg
        return self.backend_error(status, msg, route, trace_id)

    async def forward_stream(
        self,
        request: web.Request,
        route: ReleaseRoute,
        fwd: dict[str, Any],
        slice: str,
        trace_id: str,
        ex: Exchange,
        *,
        url: str | None = None,
        delta: Callable[[Mapping[str, Any]], str | None] = chat_delta,
    ) -> web.StreamResponse:
        """Post ``fwd`` to ``url`` (default: chat completions) and stream the SSE answer
        through; ``delta`` reads each event's answer text for the trace."""
        hdrs = {
            **self._auth(route),
            SLICE_HEADER: slice,
            TRACE_HEADER: trace_id,
            "Content-Type": _JSON,
        }
        sse = SseText(delta)
        target = url or route.completions_url
        try:
            async with self.session.post(target, data=dumps(fwd), headers=hdrs) as r:
                if r.status != 200:
                    raw = await r.read()
                    ex.status, ex.error = r.status, raw[:500].decode("utf-8", "replace")
                    resp = web.Response(
                        body=raw, status=r.status, headers=self.headers(route, trace_id)
                    )
                    resp.content_type = r.headers.get("Content-Type", _JSON).split(";")[0]
                    return resp
                out = web.StreamResponse(
                    status=200,
                    headers={
                        **self.headers(route, trace_id),
                        "Content-Type": "text/event-stream",
                        "Cache-Control": "no-cache",
                    },
                )
                ex.out = out
                try:
                    try:
                        await out.prepare(request)
                    except ConnectionError:
                        ex.status, ex.error = 499, "client closed request"
                        return out
                    async for chunk in r.content.iter_any():
                        sse.feed(chunk)
                        try:
                            await out.write(chunk)
                        except ConnectionError:
                            # Raised by the write to the client (aiohttp's reset error is also
                            # a ClientError, so it must not reach the backend-failure branch).
                            ex.status, ex.error = 499, "client closed request"
                            return out
                finally:
                    ex.answer = sse.text
            try:
                await out.write_eof()
            except ConnectionError:
                ex.status, ex.error = 499, "client closed request"
                return out
            ex.status = 200
            return out
        except (TimeoutError, aiohttp.ClientError) as e:
            status = 504 if isinstance(e, TimeoutError) else 502
            err = f"backend failed: {e.__class__.__name__}"
            if ex.out is None:
                return self._fail(ex, status, err, route, trace_id)
            # Headers already went out with 200: the stream just ends; the trace keeps the truth.
            ex.status, ex.error = status, err
            with contextlib.suppress(ConnectionError):
                await ex.out.write_eof()
            return ex.out


__all__ = ["Completion", "Exchange", "SseText", "Upstream", "answer_of", "dumps", "error_response"]
