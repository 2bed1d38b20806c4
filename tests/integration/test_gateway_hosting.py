"""Hosting the gateway: the blocking GatewayThread API, and a stop that drains first."""

from __future__ import annotations

import asyncio
import threading
import urllib.request

import aiohttp
import pytest
from relgate.gateway.hosting import GatewayThread
from relgate.gateway.server import start_gateway
from relgate.routing import RoutingSnapshot
from relgate.testing.backends import TestBackend, release_route_for
from relgate.testing.loadgen import LoadSpec, run_load


def post(port: int, text: str) -> tuple[int, str]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=b'{"messages": [{"role": "user", "content": "%s"}]}' % text.encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers["x-relgate-release"]


def test_gateway_thread_serves_swaps_and_drains_from_a_synchronous_caller() -> None:
    gt = GatewayThread.start(None)
    try:
        a, b = TestBackend("A"), TestBackend("B")
        # The test backends live on the gateway's loop; the test itself stays synchronous.
        gt.call(a.start())
        gt.call(b.start())
        ra, rb = release_route_for(a, "v1"), release_route_for(b, "v2")
        gt.swap(RoutingSnapshot(1, ra))
        assert post(gt.port, "one") == (200, ra.release_sha256)
        # A swap from another thread is visible to the very next request.
        t = threading.Thread(target=gt.swap, args=(RoutingSnapshot(2, rb),))
        t.start()
        t.join()
        assert post(gt.port, "two") == (200, rb.release_sha256)
        result = gt.drain(deadline_s=1.0)
        assert (result.waited_for, result.cut_off, result.before_version) == (0, 0, 2)
        assert [tr.release_sha256 for tr in gt.traces.recent("default", 5)] == [
            rb.release_sha256,
            ra.release_sha256,
        ]
        gt.call(a.stop())
        gt.call(b.stop())
    finally:
        final = gt.stop()
    assert final.cut_off == 0


def test_stop_lets_in_flight_requests_finish_and_refuses_new_ones() -> None:
    async def go() -> None:
        a = TestBackend("A")
        await a.start()
        ra = release_route_for(a, "v1")
        gw = await start_gateway(RoutingSnapshot(1, ra))
        url = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
        a.pause()
        spec = LoadSpec(url=url, rate_per_s=100, max_requests=3, max_seconds=5)
        load = asyncio.create_task(run_load(spec))
        await a.wait_arrivals(3)
        stopping = asyncio.create_task(gw.stop(drain_deadline_s=10))
        while gw.accepting:  # yield until stop() has begun (no timed sleep)
            await asyncio.sleep(0)
        # The listener is closed before the drain waits: a new connection is refused.
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientConnectorError):
                await http.post(url, json={"messages": [{"role": "user", "content": "late"}]})
        assert not stopping.done()
        a.resume()
        result = await stopping
        records = (await load).records
        assert (result.waited_for, result.finished, result.cut_off) == (3, 3, 0)
        assert [r.status for r in records] == [200, 200, 200]
        assert {r.release for r in records} == {ra.release_sha256}
        await a.stop()

    asyncio.run(go())
