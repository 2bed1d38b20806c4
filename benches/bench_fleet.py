"""The gateway fleet: swap-to-all-acked latency with 1, 3 and 8 ``relgate gateway`` replicas
under load, requests lost or mixed across the fleet during the swaps, and the latency a replica
adds over the in-process gateway (docs/scale-out-gateway.md).

A real ``relgate serve`` in process (gRPC, in-process gateway, SQLite, wall clock), two TEST
BACKENDS, N replica processes on loopback. For each N: traffic spread over the replicas at a
fixed total rate while the routing table swaps between v1 and v2 (each swap: publish, then wait
for every replica's ack; the time to the last ack is the sample; ``swap_acked`` receipts are
written as in production). Every response is checked against its ``x-relgate-release``: the
answer must come from that release's backend, model and system prompt (else "mixed"); any
non-200 is "lost". Then, with one replica, the same load against the in-process gateway (the
anchor) and the replica: the added latency.

    python benches/bench_fleet.py [--replicas 1,3,8] [--swaps 100] [--rate 150]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from relgate.app.rollouts import RolloutOptions
from relgate.client import RelgateClient
from relgate.service.server import BackgroundServer
from relgate.testing.backends import BackendKnobs, TestBackend
from relgate.testing.fleet import Replica, start_replicas, stop_replicas
from relgate.testing.loadgen import LoadResult, LoadSpec, run_load


def _manifest(tag: str, url: str, previous: str | None) -> bytes:
    return json.dumps(
        {
            "model": {"kind": "api", "provider": "bench", "model": f"m-{tag}", "endpoint": url},
            "prompt_template": {"ref": tag, "system": tag, "template": "{input}",
                                "variables": ["input"]},
            "routing": [{}],
            "dataset": {"ref": "none", "sha256": "ab" * 32},
            "previous_release": previous,
        }
    ).encode()  # fmt: skip


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _row(name: str, xs: list[float], anchor: float | None = None) -> None:
    if not xs:
        print(f"{name:<44} no samples")
        return
    p50, p99 = statistics.median(xs), _pct(xs, 0.99)
    ratio = f"  p50 x{p50 / anchor:5.2f} of anchor" if anchor else ""
    print(f"{name:<44} p50 {p50 * 1e3:8.2f} ms  p99 {p99 * 1e3:8.2f} ms  "
          f"max {max(xs) * 1e3:8.2f} ms  (n={len(xs)}){ratio}")  # fmt: skip


def _load(urls: list[str], rate: float, seconds: float, tag: str) -> list[LoadResult]:
    """``rate`` req/s in total, split evenly over ``urls``, for ``seconds``."""

    async def all_of() -> list[LoadResult]:
        specs = [
            LoadSpec(url=u + "/v1/chat/completions", rate_per_s=rate / len(urls),
                     max_requests=max(1, int(rate / len(urls) * seconds)),
                     max_seconds=seconds + 30, sessions=100_000,
                     session_prefix=f"{tag}{i}-", timeout_s=30)
            for i, u in enumerate(urls)
        ]  # fmt: skip
        return list(await asyncio.gather(*(run_load(s) for s in specs)))

    return asyncio.run(all_of())


def _check(results: list[LoadResult], tags: dict[str, str]) -> tuple[int, int, int]:
    """(requests, lost, mixed) over every record."""
    n = lost = mixed = 0
    for res in results:
        for r in res.records:
            if r.skipped:
                continue
            n += 1
            if r.status != 200:
                lost += 1
            elif r.release not in tags or f"model=m-{tags[r.release]} system='{tags[r.release]}'"\
                    not in r.answer:  # fmt: skip
                mixed += 1
    return n, lost, mixed


def main() -> None:
    """Run every fleet size and print the numbers."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--replicas", default="1,3,8")
    ap.add_argument("--swaps", type=int, default=100)
    ap.add_argument("--rate", type=float, default=150.0, help="total req/s over the fleet")
    ap.add_argument("--gap", type=float, default=0.05, help="pause between swaps (s)")
    ap.add_argument("--latency", type=float, default=0.02, help="backend latency (s)")
    args = ap.parse_args()

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def on_loop(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    knobs = BackendKnobs(base_latency_s=args.latency)
    b1, b2 = TestBackend("b1", knobs), TestBackend("b2", knobs)
    on_loop(b1.start())
    on_loop(b2.start())
    options = RolloutOptions(tick_interval_s=0.05, judge=None, ack_deadline_s=5.0)
    print(f"fleet bench: {args.swaps} swaps per fleet size, {args.rate:g} req/s over the fleet, "
          f"backend {args.latency * 1e3:.0f} ms")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, BackgroundServer(Path(tmp), rollout=options) as srv:
        assert srv.admin_key_path is not None
        key = srv.admin_key_path.read_text().strip()
        c = RelgateClient(srv.address, api_key=key)
        v1 = c.register_release(_manifest("v1", b1.base_url, None)).release.sha256
        v2 = c.register_release(_manifest("v2", b2.base_url, v1)).release.sha256
        tags = {v1: "v1", v2: "v2"}
        table = srv.rollouts.routing("default")
        table.serve_only(v1)
        for n in [int(x) for x in args.replicas.split(",")]:
            replicas = start_replicas(srv.address, key, n, prefix=f"n{n}")
            try:
                _fleet_round(table, replicas, v1, v2, tags, args)
                if n == 1:
                    _added_latency(srv.gateway_url, replicas[0], b1.base_url, args)
            finally:
                stop_replicas(replicas)
        c.close()
    on_loop(b1.stop())
    on_loop(b2.stop())


def _fleet_round(
    table: Any, replicas: list[Replica], v1: str, v2: str, tags: dict[str, str], args: Any
) -> None:
    end = time.monotonic() + 30
    while not all(r.health().get("serving") for r in replicas):
        if time.monotonic() > end:
            raise RuntimeError("replicas did not sync")
        time.sleep(0.05)
    seconds = args.swaps * (args.gap + 0.05) + 2
    results: list[LoadResult] = []
    loader = threading.Thread(
        target=lambda: results.extend(
            _load([r.url for r in replicas], args.rate, seconds, f"n{len(replicas)}-")
        )
    )
    loader.start()
    time.sleep(0.5)
    all_acked: list[float] = []
    incomplete = 0
    per_replica: list[float] = []
    for i in range(args.swaps):
        change = table.serve_only(v2 if i % 2 == 0 else v1)
        deadline = time.monotonic() + 10
        acks = None
        while acks is None and time.monotonic() < deadline:
            acks = next((h.acks for h in table.history
                         if h.version == change.version and h.acks is not None), None)  # fmt: skip
            if acks is None:
                time.sleep(0.002)
        if acks is None or not acks.complete:
            incomplete += 1
            continue
        remote = [s for name, s in acks.acked if name != "in-process"]
        all_acked.append(max(remote))
        per_replica.extend(remote)
        time.sleep(args.gap)
    loader.join()
    n, lost, mixed = _check(results, tags)
    label = f"{len(replicas)} replica(s)"
    _row(f"{label}: swap -> all acked", all_acked)
    _row(f"{label}: swap -> one replica's ack", per_replica)
    print(f"{label}: {n} requests during the swaps, lost {lost}, mixed {mixed}, "
          f"swaps not acked by all within the deadline {incomplete}")  # fmt: skip


def _added_latency(in_process: str, replica: Replica, backend: str, args: Any) -> None:
    """The same load, from a load generator in its own process (so it does not share the
    control plane's interpreter), against the in-process gateway (the anchor) and a replica."""
    lat: dict[str, list[float]] = {}
    n = int(args.rate * 4)
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in (("in-process", in_process), ("replica", replica.url)):
            out = Path(tmp) / f"{name}.jsonl"
            subprocess.run(
                [sys.executable, "-m", "relgate.testing.loadgen", "--url",
                 url + "/v1/chat/completions", "--rate", str(args.rate), "--max-requests", str(n),
                 "--max-seconds", "60", "--sessions", "10000", "--out", str(out)],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            records = [json.loads(line) for line in out.read_text().splitlines()]
            lat[name] = [r["latency_s"] for r in records if r["status"] == 200]
    anchor = statistics.median(lat["in-process"])
    _row("latency via the in-process gateway (anchor)", lat["in-process"], anchor)
    _row("latency via one replica process", lat["replica"], anchor)
    added = statistics.median(lat["replica"]) - anchor
    print(f"replica adds p50 {added * 1e3:+.2f} ms over the in-process gateway")


if __name__ == "__main__":
    main()
