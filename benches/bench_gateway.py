"""Gateway benchmark (loopback only, bounded): added latency, swap visibility, drain time.

Processes: TEST BACKENDS each in their own process, the load generator in its own process, the
gateway on a thread of this process (so swaps are timed where they happen). Three measurements:

1. Added latency at a fixed rate: the same load generator run against the backend directly
   (the anchor), through the plainest aiohttp proxy (second anchor: the framework's own cost)
   and through the gateway; p50/p99 of each, differences and ratios, and the gateway's CPU
   time per request.
   Goal (docs/design.md §8): added p50 < 1 ms, p99 < 5 ms at 500 req/s.
2. Swap visibility under load: time from a swap decision to the first request admitted on the
   new snapshot and to the first response served by the new target. Goal: <= 100 ms p99.
3. Drain: requests in flight on a slow release (fixed backend latency L) when the snapshot is
   swapped away; time until all of them finished, against L (the longest request: the anchor).

Run: ``.venv/bin/python benches/bench_gateway.py [--rate 500] [--seconds 10] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from relgate.gateway.hosting import GatewayThread
from relgate.manifest import PromptTemplate
from relgate.routing import ReleaseRoute, RoutingSnapshot
from relgate.traces import TraceStore

PY = sys.executable


def q(values: list[float], p: float) -> float:
    """Nearest-rank quantile."""
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-int(p * len(v) * 1000) // 1000) - 1))] if v else float("nan")


@contextmanager
def backend(name: str, latency: float = 0.0) -> Iterator[str]:
    """A TEST BACKEND process; yields its base URL; stops when this block exits."""
    cmd = [PY, "-m", "relgate.testing.backends", "--name", name, "--latency", str(latency)]
    with subprocess.Popen(
        [*cmd, "--stop-on-stdin-eof"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            yield str(json.loads(proc.stdout.readline())["base_url"])
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


def route(tag: str, base_url: str) -> ReleaseRoute:
    import hashlib

    sha = hashlib.sha256(tag.encode()).hexdigest()
    return ReleaseRoute(
        sha,
        base_url,
        f"model-{tag}",
        PromptTemplate(ref=tag, system=f"system {tag}", template="{input}", variables=("input",)),
    )


def loadgen_cmd(url: str, rate: float, n: int, seconds: float, out: str) -> list[str]:
    return [
        PY,
        "-m",
        "relgate.testing.loadgen",
        "--url",
        url,
        "--rate",
        str(rate),
        "--max-requests",
        str(n),
        "--max-seconds",
        str(seconds),
        "--out",
        out,
    ]


def run_loadgen(url: str, rate: float, seconds: float) -> list[dict[str, object]]:
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as f:
        out = f.name
    try:
        n = int(rate * seconds)
        subprocess.run(loadgen_cmd(url, rate, n, seconds + 5, out), check=True, capture_output=True)
        return [json.loads(line) for line in Path(out).read_text().splitlines()]
    finally:
        os.unlink(out)


def lat_ms(records: list[dict[str, object]]) -> list[float]:
    return [float(r["latency_s"]) * 1e3 for r in records if r["status"] == 200]  # type: ignore[arg-type]


def wait_for_traffic(gw: GatewayThread, n: int, timeout_s: float = 30.0) -> None:
    """Block until the gateway has finished ``n`` more requests (bench pacing, polled)."""
    start, deadline = gw.traces.recorded, time.monotonic() + timeout_s
    while gw.traces.recorded < start + n:
        if time.monotonic() > deadline:
            raise TimeoutError("no traffic reached the gateway")
        time.sleep(0.01)


async def start_bare_proxy(backend_url: str) -> web.AppRunner:
    """Second anchor: the plainest aiohttp proxy (bytes in, bytes out, pooled client, no
    routing, templates or traces), i.e. what the framework alone costs on this machine."""
    session = aiohttp.ClientSession()
    target = backend_url + "/chat/completions"

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        hdrs = {"Content-Type": "application/json"}
        async with session.post(target, data=body, headers=hdrs) as r:
            raw = await r.read()
        return web.Response(body=raw, status=r.status, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", forward)
    app.on_cleanup.append(lambda _: session.close())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def bench_added_latency(
    gw: GatewayThread, direct_url: str, rate: float, seconds: float, rounds: int
) -> dict[str, float]:
    via = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
    direct_chat = direct_url + "/chat/completions"
    # The bare proxy shares the gateway's loop; each is idle while the other is measured.
    bare_runner = gw.call(start_bare_proxy(direct_url))
    bare = f"http://127.0.0.1:{bare_runner.addresses[0][1]}/v1/chat/completions"
    for url in (direct_chat, bare, via):
        run_loadgen(url, rate, 1.0)  # warm every path
    d_all: list[float] = []
    b_all: list[float] = []
    g_all: list[float] = []
    lost = 0
    cpu_s = 0.0
    for _ in range(rounds):  # alternate so drift on a shared machine hits both sides alike
        d = run_loadgen(direct_chat, rate, seconds)
        bp = run_loadgen(bare, rate, seconds)
        # This process hosts only the gateway (the main thread just waits on the load
        # generator), so its CPU time over the run is the gateway's.
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        g = run_loadgen(via, rate, seconds)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s += (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        lost += sum(1 for r in d + bp + g if r["status"] != 200)
        d_all += lat_ms(d)
        b_all += lat_ms(bp)
        g_all += lat_ms(g)
    gw.call(bare_runner.cleanup())
    res = {
        "rate_per_s": rate,
        "n_each": len(d_all),
        "non_200": lost,
        "direct_p50_ms": q(d_all, 0.50),
        "direct_p99_ms": q(d_all, 0.99),
        "bare_proxy_p50_ms": q(b_all, 0.50),
        "bare_proxy_p99_ms": q(b_all, 0.99),
        "gateway_p50_ms": q(g_all, 0.50),
        "gateway_p99_ms": q(g_all, 0.99),
        "gateway_cpu_us_per_request": cpu_s / max(1, len(g_all)) * 1e6,
    }
    # CPU share of one core the gateway needs at this rate: near or above the share the
    # scheduler gives it on a busy machine, requests queue and latency explodes.
    res["gateway_core_share_at_rate"] = res["gateway_cpu_us_per_request"] * rate / 1e6
    res["added_p50_ms"] = res["gateway_p50_ms"] - res["direct_p50_ms"]
    res["added_p99_ms"] = res["gateway_p99_ms"] - res["direct_p99_ms"]
    res["ratio_p50"] = res["gateway_p50_ms"] / res["direct_p50_ms"]
    res["ratio_p99"] = res["gateway_p99_ms"] / res["direct_p99_ms"]
    res["vs_bare_p50"] = res["gateway_p50_ms"] / res["bare_proxy_p50_ms"]
    res["vs_bare_p99"] = res["gateway_p99_ms"] / res["bare_proxy_p99_ms"]
    return res


def bench_swap(
    gw: GatewayThread, ra: ReleaseRoute, rb: ReleaseRoute, rate: float, swaps: int
) -> dict[str, float]:
    via = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
    seconds = swaps * 0.1 + 1.5
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as f:
        proc = subprocess.Popen(
            loadgen_cmd(via, rate, int(rate * seconds), seconds, f.name), stdout=subprocess.DEVNULL
        )
        wait_for_traffic(gw, 100)  # the load generator's start-up is not part of any swap
        swap_us: list[float] = []
        decisions: list[tuple[float, int, str]] = []
        for i in range(swaps):
            snap = gw.gateway.snapshot
            assert snap is not None
            target = rb if i % 2 == 0 else ra
            new = RoutingSnapshot(snap.version + 1, target)
            t = time.perf_counter()
            gw.swap(new)
            swap_us.append((time.perf_counter() - t) * 1e6)
            decisions.append((t, snap.version + 1, target.release_sha256))
            time.sleep(0.1)  # pacing between swap decisions
        proc.wait(timeout=seconds + 30)
    traces = list(gw.traces.all_traces())
    admit: list[float] = []
    served: list[float] = []
    for t0, version, sha in decisions:
        mine = [
            t
            for t in traces
            if t.snapshot_version == version and t.release_sha256 == sha and t.status == 200
        ]
        if mine:
            admit.append((min(t.admitted_at for t in mine) - t0) * 1e3)
            served.append((min(t.time for t in mine) - t0) * 1e3)
    return {
        "swaps": swaps,
        "swaps_observed": len(served),
        "swap_call_p50_us": q(swap_us, 0.5),
        "swap_call_max_us": max(swap_us),
        "to_first_admission_p50_ms": q(admit, 0.5),
        "to_first_admission_p99_ms": q(admit, 0.99),
        "to_first_served_p50_ms": q(served, 0.5),
        "to_first_served_p99_ms": q(served, 0.99),
        "to_first_served_max_ms": max(served) if served else float("nan"),
    }


def bench_drain(
    gw: GatewayThread, slow: ReleaseRoute, fast: ReleaseRoute, latency: float, reps: int
) -> dict[str, float]:
    via = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
    rate = 100.0
    seconds = reps * (latency * 4 + 0.3) + 1.0
    drains: list[float] = []
    waited: list[int] = []
    cut = 0
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as f:
        proc = subprocess.Popen(
            loadgen_cmd(via, rate, int(rate * seconds), seconds, f.name), stdout=subprocess.DEVNULL
        )
        wait_for_traffic(gw, 20)
        for _ in range(reps):
            snap = gw.gateway.snapshot
            assert snap is not None
            gw.swap(RoutingSnapshot(snap.version + 1, slow))
            time.sleep(latency * 2)  # pacing: fill the slow release with in-flight requests
            gw.swap(RoutingSnapshot(snap.version + 2, fast))
            r = gw.drain(deadline_s=latency * 10 + 5)
            drains.append(r.elapsed_s * 1e3)
            waited.append(r.waited_for)
            cut += r.cut_off
            time.sleep(latency)
        proc.wait(timeout=seconds + 30)
    return {
        "slow_release_latency_ms": latency * 1e3,
        "in_flight_at_swap_mean": sum(waited) / len(waited),
        "drain_p50_ms": q(drains, 0.5),
        "drain_max_ms": max(drains),
        "drain_max_over_longest_request": max(drains) / (latency * 1e3),
        "cut_off": cut,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--seconds", type=float, default=10.0, help="per latency round and side")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--swaps", type=int, default=40)
    p.add_argument("--quick", action="store_true", help="short smoke run")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args()
    if a.quick:
        a.seconds, a.rounds, a.swaps = 2.0, 1, 10
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load} at start; loopback only; "
        "load generator and backends in their own processes"
    )
    results: dict[str, dict[str, float]] = {}
    with backend("A") as url_a, backend("B") as url_b, backend("SLOW", 0.2) as url_slow:
        ra, rb, rslow = route("A", url_a), route("B", url_b), route("SLOW", url_slow)
        store = TraceStore(per_slice=200_000, clock=time.perf_counter)
        gw = GatewayThread.start(RoutingSnapshot(1, ra), traces=store)
        try:
            results["added_latency"] = r = bench_added_latency(
                gw, url_a, a.rate, a.seconds, a.rounds
            )
            print(
                f"added latency @ {a.rate:.0f} req/s, n={r['n_each']:.0f} each: "
                f"direct p50 {r['direct_p50_ms']:.2f} ms p99 {r['direct_p99_ms']:.2f} ms | "
                f"gateway p50 {r['gateway_p50_ms']:.2f} ms p99 {r['gateway_p99_ms']:.2f} ms | "
                f"added p50 {r['added_p50_ms']:.2f} ms p99 {r['added_p99_ms']:.2f} ms | "
                f"ratio p50 {r['ratio_p50']:.2f}x p99 {r['ratio_p99']:.2f}x | "
                f"bare aiohttp proxy p50 {r['bare_proxy_p50_ms']:.2f} ms "
                f"p99 {r['bare_proxy_p99_ms']:.2f} ms (gateway/bare p50 {r['vs_bare_p50']:.2f}x "
                f"p99 {r['vs_bare_p99']:.2f}x) | "
                f"non-200 {r['non_200']:.0f} "
                "(goal: added p50 < 1 ms, p99 < 5 ms)"
            )
            print(
                f"gateway CPU {r['gateway_cpu_us_per_request']:.0f} us/request = "
                f"{r['gateway_core_share_at_rate']:.2f} of a core at {a.rate:.0f} req/s"
            )
            results["swap"] = s = bench_swap(gw, ra, rb, a.rate, a.swaps)
            print(
                f"swap call p50 {s['swap_call_p50_us']:.1f} us max {s['swap_call_max_us']:.1f} us; "
                f"swap -> first admission p50 {s['to_first_admission_p50_ms']:.2f} ms "
                f"p99 {s['to_first_admission_p99_ms']:.2f} ms; -> first served by new target "
                f"p50 {s['to_first_served_p50_ms']:.2f} ms "
                f"p99 {s['to_first_served_p99_ms']:.2f} ms "
                f"max {s['to_first_served_max_ms']:.2f} ms "
                f"over {s['swaps_observed']:.0f}/{s['swaps']:.0f} "
                "swaps (goal: <= 100 ms p99)"
            )
            results["drain"] = d = bench_drain(gw, rslow, ra, 0.2, 3 if a.quick else 8)
            print(
                f"drain of ~{d['in_flight_at_swap_mean']:.0f} in-flight requests on a "
                f"{d['slow_release_latency_ms']:.0f} ms release: p50 {d['drain_p50_ms']:.1f} ms "
                f"max {d['drain_max_ms']:.1f} ms = {d['drain_max_over_longest_request']:.2f}x the "
                f"longest request; cut off {d['cut_off']:.0f}"
            )
        finally:
            gw.stop()
    print("load average at end: " + "/".join(f"{x:.1f}" for x in os.getloadavg()))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
