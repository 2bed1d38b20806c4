"""The gateway's OpenAI surface beyond chat: pass-through completions, embeddings and responses
(traced where there is an answer), models/{id}, OpenAI-shaped errors on every path, the rule on
the request's ``model``, health and readiness, and the per-release metrics."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from relgate.gateway.metrics import MAX_SLICES
from relgate.gateway.server import Gateway, start_gateway
from relgate.manifest import PromptTemplate
from relgate.routing import ReleaseRoute, RoutingSnapshot

SHA_A = "a" * 64
SHA_B = "b" * 64


class EchoBackend:
    """An OpenAI-compatible server for the three pass-through endpoints; remembers bodies."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/{endpoint}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.match_info["endpoint"]
        body = await request.json()
        self.bodies.append((endpoint, body))
        model = body["model"]
        if endpoint == "completions":
            if body.get("stream"):
                out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await out.prepare(request)
                for part in ("echo: ", str(body["prompt"])):
                    chunk = {"choices": [{"index": 0, "text": part}], "model": model}
                    await out.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await out.write(b"data: [DONE]\n\n")
                await out.write_eof()
                return out
            text = f"echo: {body['prompt']}"
            return web.json_response({"object": "text_completion", "model": model,
                                      "choices": [{"index": 0, "text": text}]})  # fmt: skip
        if endpoint == "embeddings":
            data = [{"index": 0, "embedding": [0.5, 0.25]}]
            return web.json_response({"object": "list", "model": model, "data": data})
        if endpoint == "responses":
            return web.json_response({"object": "response", "model": model,
                                      "output": [{"type": "message", "content": [
                                          {"type": "output_text", "text": "resp: " +
                                           str(body["input"])}]}]})  # fmt: skip
        return web.json_response({"error": "no such endpoint"}, status=404)


def route(backend: EchoBackend, sha: str, model: str) -> ReleaseRoute:
    return ReleaseRoute(
        release_sha256=sha,
        endpoint=f"http://127.0.0.1:{backend.port}/v1",
        model=model,
        prompt_template=PromptTemplate(
            ref="t/1", system="s", template="{input}", variables=("input",)
        ),
    )


@asynccontextmanager
async def stack(
    snapshot: bool = True,
) -> AsyncIterator[tuple[Gateway, EchoBackend, aiohttp.ClientSession]]:
    backend = EchoBackend()
    await backend.start()
    snap = RoutingSnapshot(1, route(backend, SHA_A, "model-a")) if snapshot else None
    gw = await start_gateway(snap)
    try:
        async with aiohttp.ClientSession() as http:
            yield gw, backend, http
    finally:
        await gw.stop()
        await backend.stop()


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def url(gw: Gateway, path: str) -> str:
    return f"http://127.0.0.1:{gw.port}{path}"


def assert_openai_error(payload: Any, code: str) -> None:
    err = payload["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["code"], str) and err["code"] == code, err
    assert err["message"] and isinstance(err["type"], str)


def test_completions_pass_through_to_the_release_and_are_traced() -> None:
    async def go() -> None:
        async with stack() as (gw, backend, http):
            body = {"model": "relgate", "prompt": "hello", "metadata": {"slice": "Law"}}
            async with http.post(url(gw, "/v1/completions"), json=body) as r:
                assert r.status == 200
                assert r.headers["x-relgate-release"] == SHA_A
                payload = await r.json()
            assert payload["choices"][0]["text"] == "echo: hello"
            endpoint, sent = backend.bodies[-1]
            assert endpoint == "completions" and sent["model"] == "model-a"
            assert "metadata" not in sent
            (trace,) = list(gw.traces.all_traces())
            assert (trace.prompt, trace.answer, trace.status) == ("hello", "echo: hello", 200)
            assert trace.slice == "Law" and trace.release_sha256 == SHA_A

            body = {"prompt": "streamed", "stream": True}
            async with http.post(url(gw, "/v1/completions"), json=body) as r:
                assert r.status == 200 and r.content_type == "text/event-stream"
                raw = await r.read()
            assert b"[DONE]" in raw
            last = list(gw.traces.all_traces())[-1]
            assert (last.answer, last.stream) == ("echo: streamed", True)

    run(go())


def test_embeddings_pass_through_untraced_and_responses_traced() -> None:
    async def go() -> None:
        async with stack() as (gw, backend, http):
            async with http.post(url(gw, "/v1/embeddings"), json={"input": "x"}) as r:
                assert r.status == 200 and r.headers["x-relgate-release"] == SHA_A
                assert (await r.json())["data"][0]["embedding"] == [0.5, 0.25]
            assert list(gw.traces.all_traces()) == []  # no answer to judge
            body = {"model": "model-a", "input": "why?"}
            async with http.post(url(gw, "/v1/responses"), json=body) as r:
                assert r.status == 200
                assert (await r.json())["output"][0]["content"][0]["text"] == "resp: why?"
            (trace,) = list(gw.traces.all_traces())
            assert (trace.prompt, trace.answer) == ("why?", "resp: why?")
            # A pass-through body lacking its required field is refused before any forward.
            n = len(backend.bodies)
            async with http.post(url(gw, "/v1/embeddings"), json={"model": "relgate"}) as r:
                assert r.status == 400
                assert_openai_error(await r.json(), "invalid_request")
            assert len(backend.bodies) == n

    run(go())


def test_models_by_id_and_the_model_rule() -> None:
    async def go() -> None:
        async with stack() as (gw, backend, http):
            for ident in ("model-a", SHA_A):
                async with http.get(url(gw, f"/v1/models/{ident}")) as r:
                    assert r.status == 200
                    got = await r.json()
                    assert got["id"] == "model-a" and got["relgate_release"] == SHA_A
            async with http.get(url(gw, "/v1/models/gpt-4")) as r:
                assert r.status == 404
                assert_openai_error(await r.json(), "model_not_found")
            # Accepted: no model, the alias, the served model name, the release sha.
            for model in (None, "", "relgate", "model-a", SHA_A):
                body: dict[str, Any] = {"prompt": "p"}
                if model is not None:
                    body["model"] = model
                async with http.post(url(gw, "/v1/completions"), json=body) as r:
                    assert r.status == 200, model
            n = len(backend.bodies)
            # Refused: a model this routing does not serve (another routing's, a typo)...
            for model in ("gpt-4", SHA_B, "model-b"):
                body = {"model": model, "messages": [{"role": "user", "content": "q"}]}
                async with http.post(url(gw, "/v1/chat/completions"), json=body) as r:
                    assert r.status == 404
                    payload = await r.json()
                    assert_openai_error(payload, "model_not_found")
                    assert payload["error"]["param"] == "model"
                    assert "model-a" in payload["error"]["message"]
            # ... and a model that is not a string.
            async with http.post(url(gw, "/v1/completions"), json={"model": 7, "prompt": "p"}) as r:
                assert r.status == 400
                assert_openai_error(await r.json(), "invalid_request")
            assert len(backend.bodies) == n  # nothing refused reached a release

    run(go())


def test_every_path_answers_openai_shaped_errors() -> None:
    async def go() -> None:
        async with stack() as (gw, _, http):
            cases = [
                ("GET", "/v1/nope", 404, "unknown_url"),
                ("POST", "/nothing/here", 404, "unknown_url"),
                ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
                ("DELETE", "/v1/models", 405, "method_not_allowed"),
                ("GET", "/v1/embeddings", 405, "method_not_allowed"),
            ]
            for method, path, status, code in cases:
                async with http.request(method, url(gw, path)) as r:
                    assert r.status == status, path
                    assert r.content_type == "application/json"
                    assert_openai_error(await r.json(), code)
            async with http.post(url(gw, "/v1/chat/completions"), data=b"{not json") as r:
                assert r.status == 400
                assert_openai_error(await r.json(), "invalid_request")
            async with http.post(
                url(gw, "/v1/completions"), data=io.BytesIO(b"x" * (5 * 1024 * 1024))
            ) as r:
                assert r.status == 413
                assert_openai_error(await r.json(), "request_too_large")

    run(go())


def test_healthz_is_liveness_and_readyz_needs_a_snapshot() -> None:
    async def go() -> None:
        async with stack(snapshot=False) as (gw, backend, http):
            async with http.get(url(gw, "/healthz")) as r:
                assert r.status == 200 and (await r.json())["status"] == "ok"
            async with http.get(url(gw, "/readyz")) as r:
                assert r.status == 503
                assert_openai_error(await r.json(), "not_ready")
            async with http.post(url(gw, "/v1/completions"), json={"prompt": "p"}) as r:
                assert r.status == 503
                assert_openai_error(await r.json(), "service_unavailable")
            gw.swap(RoutingSnapshot(1, route(backend, SHA_A, "model-a")))
            async with http.get(url(gw, "/readyz")) as r:
                assert r.status == 200
                assert await r.json() == {"status": "ready", "tenants": 1, "releases": 1}

    run(go())


def _samples(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(gw.metrics.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_per_release_and_slice_with_bounded_labels() -> None:
    async def go() -> None:
        async with stack() as (gw, _, http):
            for _ in range(3):
                body = {"prompt": "p", "metadata": {"slice": "Law"}}
                async with http.post(url(gw, "/v1/completions"), json=body) as r:
                    assert r.status == 200
            async with http.get(url(gw, "/v1/nope")) as r:
                assert r.status == 404
            # A hostile client inventing slices cannot grow the label set without bound.
            for i in range(MAX_SLICES + 10):
                body = {"prompt": "p", "metadata": {"slice": f"s{i}"}}
                async with http.post(url(gw, "/v1/completions"), json=body) as r:
                    assert r.status == 200
            s = _samples(gw)
            law = (("code", "200"), ("endpoint", "/v1/{endpoint}"), ("release", SHA_A[:12]),
                   ("slice", "Law"), ("tenant", "default"))  # fmt: skip
            assert s[("relgate_gateway_requests_total", law)] == 3
            lat = (("release", SHA_A[:12]), ("slice", "Law"), ("tenant", "default"))
            assert s[("relgate_gateway_request_duration_seconds_count", lat)] == 3
            unknown = (("code", "404"), ("endpoint", "unmatched"), ("release", "none"),
                       ("slice", "none"), ("tenant", "none"))  # fmt: skip
            assert s[("relgate_gateway_requests_total", unknown)] == 1
            slices = {
                dict(labels)["slice"]
                for (name, labels) in s
                if name == "relgate_gateway_requests_total"
            }
            assert len(slices) <= MAX_SLICES + 2 and "other" in slices  # + "none", "other"
            flights = [v for (n, _), v in s.items() if n == "relgate_gateway_in_flight_requests"]
            assert flights and all(v == 0 for v in flights)

    run(go())
