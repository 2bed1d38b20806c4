"""Atomic swap under load: nothing lost, nothing admitted after a swap reaches the old target,
and requests in flight finish on the release they were admitted to (drain with a deadline)."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from relgate.gateway.server import start_gateway
from relgate.routing import RoutingSnapshot
from relgate.testing.backends import BackendKnobs, TestBackend, release_route_for
from relgate.testing.loadgen import LoadSpec, RequestRecord, run_load


def test_swap_under_load_loses_nothing_and_cuts_over_at_admission() -> None:
    async def go() -> None:
        a = TestBackend("A", BackendKnobs(base_latency_s=0.01))
        b = TestBackend("B", BackendKnobs(base_latency_s=0.01))
        await a.start()
        await b.start()
        stable, cand = release_route_for(a, "v1"), release_route_for(b, "v2")
        by_sha = {stable.release_sha256: (stable, "A"), cand.release_sha256: (cand, "B")}
        gw = await start_gateway(RoutingSnapshot(1, stable, cand, 5000))
        swap_at: list[float] = []

        def on_response(rec: RequestRecord) -> None:
            # Roll back (candidate out) in the middle of the run, from the loop, like a controller.
            if rec.index >= 100 and not swap_at:
                swap_at.append(gw.swap(RoutingSnapshot(2, stable)).at)

        spec = LoadSpec(
            url=f"http://127.0.0.1:{gw.port}/v1/chat/completions",
            rate_per_s=250,
            max_requests=400,
            max_seconds=30,
            sessions=10_000,
            # Above max_requests: a slow shared machine may queue, but never skips a request.
            max_in_flight=500,
        )
        result = await run_load(spec, on_response=on_response)
        drain = await gw.drain(deadline_s=5)
        await gw.stop()
        await a.stop()
        await b.stop()

        # No request lost: every one sent, answered 200, and traced.
        assert len(result.records) == 400
        assert [r.status for r in result.records] == [200] * 400
        traces = {t.id: t for t in gw.traces.all_traces()}
        assert len(traces) == 400 and {r.trace_id for r in result.records} == set(traces)
        assert drain.complete
        (t_swap,) = swap_at
        before = [t for t in traces.values() if t.admitted_at <= t_swap]
        after = [t for t in traces.values() if t.admitted_at > t_swap]
        assert len(after) > 50 and len(before) > 100
        # Nothing admitted after the swap reached the candidate; the new snapshot was pinned.
        assert {t.release_sha256 for t in after} == {stable.release_sha256}
        assert {t.snapshot_version for t in after} == {2}
        assert {t.release_sha256 for t in before if t.snapshot_version == 1} == set(by_sha)
        # No response mixes releases: the answer echoes the template, model and backend of the
        # release named in its header.
        for r in result.records:
            route, name = by_sha[r.release]
            assert r.answer == (
                f"[backend={name} model={route.model} system={route.prompt_template.system!r}] "
                f"[{route.prompt_template.ref[5:]}] {r.prompt}"
            )
            assert traces[r.trace_id].release_sha256 == r.release

    asyncio.run(go())


def test_in_flight_requests_finish_on_the_release_they_were_admitted_to() -> None:
    async def go() -> None:
        a, b = TestBackend("A"), TestBackend("B")
        await a.start()
        await b.start()
        stable, cand = release_route_for(a, "v1"), release_route_for(b, "v2")
        gw = await start_gateway(RoutingSnapshot(1, stable, cand, 10_000))
        chat = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
        async with aiohttp.ClientSession() as http:

            async def ask(i: int) -> tuple[str, str]:
                msg = {"messages": [{"role": "user", "content": f"q{i}"}], "user": f"u{i}"}
                async with http.post(chat, json=msg) as r:
                    assert r.status == 200
                    return r.headers["x-relgate-release"], (await r.json())["model"]

            b.pause()
            old = [asyncio.create_task(ask(i)) for i in range(5)]
            await b.wait_arrivals(5)
            gw.swap(RoutingSnapshot(2, stable))
            assert gw.in_flight(version=1) == 5
            # New requests go to the stable release and complete while the old ones are held.
            new = await asyncio.gather(*(ask(i) for i in range(5, 10)))
            assert new == [(stable.release_sha256, stable.model)] * 5
            drain = asyncio.create_task(gw.drain(deadline_s=10))
            assert not any(t.done() for t in old) and not drain.done()
            b.resume()
            result = await drain
            assert [t.result() for t in old] == [(cand.release_sha256, cand.model)] * 5
        assert (result.waited_for, result.finished, result.cut_off) == (5, 5, 0)
        assert result.before_version == 2 and gw.in_flight() == 0
        await gw.stop()
        await a.stop()
        await b.stop()

    asyncio.run(go())


def test_drain_deadline_cuts_off_stragglers_with_503() -> None:
    async def go() -> None:
        a, b = TestBackend("A"), TestBackend("B")
        await a.start()
        await b.start()
        stable, cand = release_route_for(a, "v1"), release_route_for(b, "v2")
        gw = await start_gateway(RoutingSnapshot(1, cand))
        chat = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
        async with aiohttp.ClientSession() as http:

            async def ask(stream: bool) -> int:
                msg = {"messages": [{"role": "user", "content": "slow"}], "stream": stream}
                async with http.post(chat, json=msg) as r:
                    await r.read()
                    return r.status

            b.pause()
            stuck = [asyncio.create_task(ask(s)) for s in (False, True)]
            await b.wait_arrivals(2)
            gw.swap(RoutingSnapshot(2, stable))
            result = await gw.drain(deadline_s=0.2)
            assert (result.waited_for, result.finished, result.cut_off) == (2, 0, 2)
            assert not result.complete
            assert sorted(await asyncio.gather(*stuck)) == [503, 503]
        cut = gw.traces.recent("default", 10, status=503)
        assert len(cut) == 2 and {t.error for t in cut} == {"drain deadline"}
        assert {t.release_sha256 for t in cut} == {cand.release_sha256}
        await gw.stop()
        await a.stop()
        await b.stop()

    asyncio.run(go())


def test_shadow_mirrors_to_candidate_and_serves_only_stable() -> None:
    async def go() -> None:
        a, b = TestBackend("A"), TestBackend("B")
        await a.start()
        await b.start()
        stable, cand = release_route_for(a, "v1"), release_route_for(b, "v2")
        gw = await start_gateway(RoutingSnapshot(1, stable, cand, 10_000, shadow=True))
        spec = LoadSpec(
            url=f"http://127.0.0.1:{gw.port}/v1/chat/completions",
            rate_per_s=200,
            max_requests=40,
            max_seconds=10,
            slices=("Law", "Health"),
        )
        result = await run_load(spec)
        await b.wait_arrivals(40)
        await gw.stop(drain_deadline_s=10)
        await a.stop()
        await b.stop()
        assert {r.release for r in result.records} == {stable.release_sha256}
        shadow = gw.traces.recent("Law", 100, shadow=True) + gw.traces.recent(
            "Health", 100, shadow=True
        )
        assert len(shadow) == 40
        assert {t.release_sha256 for t in shadow} == {cand.release_sha256}
        assert all(t.answer.startswith("[backend=B model=model-v2") for t in shadow)
        assert gw.traces.recent("Law", 100, release=cand.release_sha256) == []

    asyncio.run(go())


def test_drain_deadline_ends_a_stream_that_already_started() -> None:
    async def go() -> None:
        a = TestBackend("A", BackendKnobs(stream_chunks=4, stream_chunk_delay_s=0.5))
        b = TestBackend("B")
        await a.start()
        await b.start()
        old, new = release_route_for(a, "v1"), release_route_for(b, "v2")
        gw = await start_gateway(RoutingSnapshot(1, old))
        chat = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
        got_first = asyncio.Event()
        async with aiohttp.ClientSession() as http:

            async def ask() -> tuple[int, str, bytes]:
                msg = {"messages": [{"role": "user", "content": "long answer"}], "stream": True}
                async with http.post(chat, json=msg) as r:
                    first = await r.content.readany()
                    got_first.set()
                    rest = b""
                    with contextlib.suppress(aiohttp.ClientPayloadError):
                        rest = await r.content.read()
                    return r.status, r.headers["x-relgate-release"], first + rest

            task = asyncio.create_task(ask())
            await got_first.wait()
            gw.swap(RoutingSnapshot(2, new))
            result = await gw.drain(deadline_s=0.2)
            status, release, raw = await task
        assert result.cut_off == 1
        # Headers were out already: the client saw 200 from the old release and a cut stream.
        assert (status, release) == (200, old.release_sha256)
        assert raw.startswith(b"data: ") and b"[DONE]" not in raw
        (cut,) = gw.traces.recent("default", 5, status=503)
        assert cut.error == "drain deadline" and cut.stream and cut.answer
        full = "[backend=A model=model-v1 system='system of v1'] [v1] long answer"
        assert full.startswith(cut.answer) and 0 < len(cut.answer) < len(full)
        await gw.stop()
        await a.stop()
        await b.stop()

    asyncio.run(go())
