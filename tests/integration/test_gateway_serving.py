"""The real gateway on a loopback port in front of TEST BACKENDS: routing, templates, streaming,
backend failures and feedback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from relgate.gateway.server import Gateway, start_gateway
from relgate.manifest import Routing
from relgate.routing import ReleaseRoute, RoutingSnapshot
from relgate.testing.backends import BackendKnobs, TestBackend, release_route_for


@asynccontextmanager
async def stack(
    make_snapshot: Callable[[TestBackend, TestBackend], RoutingSnapshot | None],
    knobs_a: BackendKnobs | None = None,
    knobs_b: BackendKnobs | None = None,
) -> AsyncIterator[tuple[Gateway, TestBackend, TestBackend, aiohttp.ClientSession]]:
    a, b = TestBackend("A", knobs_a), TestBackend("B", knobs_b)
    await a.start()
    await b.start()
    gw = await start_gateway(make_snapshot(a, b))
    try:
        async with aiohttp.ClientSession() as http:
            yield gw, a, b, http
    finally:
        await gw.stop()
        await a.stop()
        await b.stop()


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def url(gw: Gateway, path: str = "/v1/chat/completions") -> str:
    return f"http://127.0.0.1:{gw.port}{path}"


def body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "relgate", "messages": [{"role": "user", "content": text}], **extra}


def expected_echo(route: ReleaseRoute, backend: str, text: str) -> str:
    t = route.prompt_template
    return (
        f"[backend={backend} model={route.model} system={t.system!r}] {t.render({'input': text})}"
    )


def test_each_response_comes_whole_from_the_release_it_names() -> None:
    async def go() -> None:
        routes: dict[str, tuple[ReleaseRoute, str]] = {}

        def snap(a: TestBackend, b: TestBackend) -> RoutingSnapshot:
            ra, rb = release_route_for(a, "v1"), release_route_for(b, "v2")
            routes.update({ra.release_sha256: (ra, "A"), rb.release_sha256: (rb, "B")})
            return RoutingSnapshot(1, ra, rb, 5000)

        async with stack(snap) as (gw, a, b, http):
            seen: set[str] = set()
            for i in range(60):
                text = f"question {i}"
                async with http.post(url(gw), json=body(text, user=f"user-{i}")) as r:
                    assert r.status == 200
                    sha = r.headers["x-relgate-release"]
                    payload = await r.json()
                route, backend = routes[sha]
                seen.add(backend)
                # Model, endpoint (backend name) and system+template all belong to `sha`.
                assert payload["model"] == route.model
                assert payload["choices"][0]["message"]["content"] == expected_echo(
                    route, backend, text
                )
            assert seen == {"A", "B"}
            for backend, route in (
                (a, release_route_for(a, "v1")),
                (b, release_route_for(b, "v2")),
            ):
                assert backend.received
                for req in backend.received:
                    assert req.model == route.model and req.system == route.prompt_template.system
            traces = list(gw.traces.all_traces())
            assert len(traces) == 60
            assert all(t.status == 200 and t.answer.startswith("[backend=") for t in traces)

    run(go())


def test_streaming_passes_sse_through_and_records_the_answer() -> None:
    async def go() -> None:
        async with stack(lambda a, b: RoutingSnapshot(1, release_route_for(a, "v1"))) as (
            gw,
            a,
            _,
            http,
        ):
            route = release_route_for(a, "v1")
            async with http.post(url(gw), json=body("stream me", stream=True)) as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/event-stream")
                assert r.headers["x-relgate-release"] == route.release_sha256
                trace_id = r.headers["x-relgate-trace-id"]
                raw = await r.read()
            events = [ln[6:] for ln in raw.decode().split("\n") if ln.startswith("data: ")]
            assert events[-1] == "[DONE]" and len(events) > 2
            text = "".join(json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1])
            assert text == expected_echo(route, "A", "stream me")
            trace = gw.traces.get(trace_id)
            assert (trace.stream, trace.status, trace.answer) == (True, 200, text)
            assert trace.prompt == "stream me" and trace.release_sha256 == route.release_sha256
            assert a.received[-1].stream

    run(go())


def test_backend_5xx_and_unreachable_backends_are_returned_and_recorded() -> None:
    async def go() -> None:
        knobs = BackendKnobs(error_probability=1.0)
        async with stack(lambda a, b: RoutingSnapshot(1, release_route_for(a, "v1")), knobs) as (
            gw,
            a,
            b,
            http,
        ):
            sha = release_route_for(a, "v1").release_sha256
            for stream in (False, True):
                async with http.post(url(gw), json=body("x", stream=stream)) as r:
                    assert r.status == 500
                    assert r.headers["x-relgate-release"] == sha
            assert gw.traces.counts(sha, 60).server_errors == 2
            assert gw.traces.error_rate(sha, 60) == 1.0
            # Point the gateway at a backend that is gone: 502, recorded against that release.
            gone = release_route_for(b, "v3")
            await b.stop()
            gw.swap(RoutingSnapshot(2, gone))
            async with http.post(url(gw), json=body("x")) as r:
                assert r.status == 502
                assert r.headers["x-relgate-release"] == gone.release_sha256
                assert (await r.json())["error"]["type"] == "backend_error"
            last = gw.traces.recent("default", 1, status=None)[0]
            assert (last.status, last.release_sha256) == (502, gone.release_sha256)
            assert "unreachable" in last.error

    run(go())


def test_feedback_by_trace_id() -> None:
    async def go() -> None:
        async with stack(lambda a, b: RoutingSnapshot(1, release_route_for(a, "v1"))) as (
            gw,
            _,
            __,
            http,
        ):
            async with http.post(url(gw), json=body("grade me")) as r:
                trace_id = r.headers["x-relgate-trace-id"]
            fb = url(gw, f"/v1/traces/{trace_id}/feedback")
            async with http.post(fb, json={"grade": 0.2}) as r:
                assert r.status == 200
                assert (await r.json())["feedback_grade"] == 0.2
            assert gw.traces.get(trace_id).feedback_grade == 0.2
            assert gw.traces.recent("default", 1)[0].feedback_grade == 0.2
            async with http.post(url(gw, "/v1/traces/tr_nope/feedback"), json={"grade": 1}) as r:
                assert r.status == 404
            for bad in ({"grade": 2}, {"grade": True}, {"nope": 1}, [1]):
                async with http.post(fb, json=bad) as r:
                    assert r.status == 400
            async with http.post(fb, data=b"{") as r:
                assert r.status == 400

    run(go())


def test_bad_requests_and_no_live_release() -> None:
    async def go() -> None:
        async with stack(lambda a, b: None) as (gw, a, _, http):
            async with http.post(url(gw), json=body("x")) as r:
                assert r.status == 503
            gw.swap(RoutingSnapshot(1, release_route_for(a, "v1")))
            async with http.post(url(gw), data=b"not json") as r:
                assert r.status == 400
            for bad in (
                [1, 2],
                {"messages": []},
                {"messages": ["hi"]},
                {"messages": [{"role": "system", "content": "s"}]},
            ):
                async with http.post(url(gw), json=bad) as r:
                    assert r.status == 400, bad
                    assert "error" in await r.json()
            assert a.arrived == 0
            async with http.get(url(gw, "/v1/models")) as r:
                assert [m["id"] for m in (await r.json())["data"]] == ["model-v1"]

    run(go())


def test_slice_reaches_backends_and_a_degraded_slice_hedges() -> None:
    async def go() -> None:
        knobs = BackendKnobs(degraded_slices=frozenset({"Law"}), answers={"capital": "Paris."})
        routing = Routing(matchers=({"domain": "legal"},))

        def snap(a: TestBackend, b: TestBackend) -> RoutingSnapshot:
            return RoutingSnapshot(1, release_route_for(a, "v1", routing=routing))

        async with stack(snap, knobs) as (gw, a, _, http):
            async with http.post(
                url(gw), json=body("capital of France?"), headers={"x-relgate-slice": "Law"}
            ) as r:
                law = (await r.json())["choices"][0]["message"]["content"]
            meta = {"metadata": {"domain": "legal"}}
            async with http.post(url(gw), json=body("capital of France?", **meta)) as r:
                legal = (await r.json())["choices"][0]["message"]["content"]
            async with http.post(url(gw), json=body("capital of France?")) as r:
                plain = (await r.json())["choices"][0]["message"]["content"]
            assert law.startswith("I can't give legal advice") and plain == legal == "Paris."
            assert [q.slice for q in a.received] == ["Law", "legal", "default"]
            by_slice = {t.slice: t for t in gw.traces.all_traces()}
            assert by_slice["legal"].traffic_class == "domain=legal"
            assert by_slice["default"].traffic_class == "unmatched"

    run(go())


def test_complete_runs_a_prompt_through_one_release_for_replay() -> None:
    async def go() -> None:
        def snap(a: TestBackend, b: TestBackend) -> RoutingSnapshot:
            return RoutingSnapshot(1, release_route_for(a, "v1"))

        async with stack(snap) as (gw, _, b, __):
            cand = release_route_for(b, "v2")
            done = await gw.complete(cand, "replayed prompt", slice="Law")
            assert (done.status, done.release_sha256) == (200, cand.release_sha256)
            assert done.answer == expected_echo(cand, "B", "replayed prompt")
            assert b.received[-1].slice == "Law"
            assert gw.traces.recorded == 0  # replays are not production traces

    run(go())


def test_a_client_that_leaves_mid_stream_is_recorded_as_499() -> None:
    async def go() -> None:
        knobs = BackendKnobs(stream_chunks=4, stream_chunk_delay_s=0.2)
        async with stack(lambda a, b: RoutingSnapshot(1, release_route_for(a, "v1")), knobs) as (
            gw,
            _,
            __,
            http,
        ):
            r = await http.post(url(gw), json=body("long", stream=True))
            assert r.status == 200
            trace_id = r.headers["x-relgate-trace-id"]
            assert (await r.content.readany()).startswith(b"data: ")
            r.close()  # the client goes away with the answer half sent
            # Wait for the request to finish on the gateway (drain of everything admitted so far).
            done = await gw.drain(deadline_s=10, before_version=2, cut_off=False)
            assert done.complete
            trace = gw.traces.get(trace_id)
            assert (trace.status, trace.error) == (499, "client closed request")
            assert trace.answer and trace.stream

    run(go())


def test_backend_dying_mid_stream_and_backend_timeouts_are_recorded() -> None:
    async def go() -> None:
        knobs = BackendKnobs(stream_chunks=4, stream_abort_after=2)
        a = TestBackend("A", knobs)
        await a.start()
        route = release_route_for(a, "v1")
        gw = await start_gateway(RoutingSnapshot(1, route), backend_timeout_s=0.3)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.post(url(gw), json=body("x", stream=True)) as r:
                    assert r.status == 200  # headers were out before the backend died
                    trace_id = r.headers["x-relgate-trace-id"]
                    raw = await r.read()
                assert raw.startswith(b"data: ") and b"[DONE]" not in raw
                died = gw.traces.get(trace_id)
                assert died.status == 502 and died.error.startswith("backend failed")
                assert died.answer  # the part that did arrive
                a.pause()
                async with http.post(url(gw), json=body("y")) as r:
                    assert r.status == 504
                    assert r.headers["x-relgate-release"] == route.release_sha256
                a.resume()
            assert gw.traces.counts(route.release_sha256, 60).server_errors == 2
        finally:
            await gw.stop()
            await a.stop()

    run(go())


def test_credentials_reach_only_their_release_endpoint() -> None:
    async def go() -> None:
        a, b = TestBackend("A"), TestBackend("B")
        await a.start()
        await b.start()
        ra, rb = release_route_for(a, "v1"), release_route_for(b, "v2")
        keys = {rb.release_sha256: {"Authorization": "Bearer key-for-v2"}}
        gw = await start_gateway(
            RoutingSnapshot(1, ra, rb, 5000), credentials=lambda r: keys.get(r.release_sha256, {})
        )
        try:
            async with aiohttp.ClientSession() as http:
                for i in range(20):
                    async with http.post(url(gw), json=body("q", user=f"u{i}")) as r:
                        assert r.status == 200
            assert (await gw.complete(rb, "replay")).status == 200
            assert a.received and b.received
            assert {q.authorization for q in a.received} == {""}
            assert {q.authorization for q in b.received} == {"Bearer key-for-v2"}
        finally:
            await gw.stop()
            await a.stop()
            await b.stop()

    run(go())
