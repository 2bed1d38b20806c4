"""Rollback through the whole stack: decision -> swap -> first request served by the previous
release, and the drain, under steady load (docs/design.md §5 targets: swap visible within
100 ms, drain bounded by the longest request).

A real ``relgate serve`` stack in process (gRPC, gateway, controller, SQLite) on the wall
clock, two TEST BACKENDS, the bounded load generator at a fixed rate. Each round starts a 50%
canary of v2 over v1, lets traffic flow, then aborts it: the controller's decision (the
manual_rollback receipt's ``at``), the gateway's swap record, and the first trace admitted after
the swap give the timings. Printed as percentiles over rounds, against the 100 ms goal.

By default the two backends and the load generator run in a second process, as clients and
model servers do in production; ``--client-in-process`` runs them on threads of the server's
own process (the anchor, and how this bench measured before): there they share its
interpreter lock, and the decision's ~2 ms of store work waits tens of ms for it.

    python benches/bench_rollback.py [--rounds 20] [--rate 300] [--profile] [--replicas N]
        [--client-in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
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
from relgate.testing.loadgen import LoadSpec, run_load

GOAL_S = 0.100


def _manifest(tag: str, url: str, previous: str | None) -> bytes:
    return json.dumps(
        {
            "model": {"kind": "api", "provider": "bench", "model": f"m-{tag}", "endpoint": url},
            "prompt_template": {
                "ref": tag,
                "system": tag,
                "template": "{input}",
                "variables": ["input"],
            },
            "routing": [{}],
            "dataset": {"ref": "none", "sha256": "ab" * 32},
            "previous_release": previous,
        }
    ).encode()


def _gate(srv: Any, sha: str) -> None:
    # The result names the judge the server's quality monitor scores with (a rollout refuses a
    # release gated with another judge).
    judge = srv.rollouts.options.judge()
    result = {
        "verdict": "pass",
        "gate_result_sha256": "cd" * 32,
        "judge_sha256": judge.judge_sha256,
    }
    store = srv.store
    store.record_decision(
        tenant="default",
        release_sha=sha,
        kind="gate_pass",
        evidence=result,
        actor="bench",
        reason="bench",
        facts=[("gate_result", result)],
    )


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _instrument(marks: dict[str, list[float]]) -> None:
    """Wrap the steps between a decision and its swap with wall-clock marks (--profile)."""
    import functools

    from relgate.app.probes import RolloutProbe
    from relgate.app.routing import RoutingTable
    from relgate.rollout.controller import RolloutController
    from relgate.store import Store

    def mark(name: str) -> None:
        marks.setdefault(name, []).append(time.time())

    def wrap_async(cls: Any, attr: str) -> None:
        orig = getattr(cls, attr)

        @functools.wraps(orig)
        async def w(*a: Any, **k: Any) -> Any:
            mark(f"{attr}:start")
            try:
                return await orig(*a, **k)
            finally:
                mark(f"{attr}:end")

        setattr(cls, attr, w)

    def wrap(cls: Any, attr: str) -> None:
        orig = getattr(cls, attr)

        @functools.wraps(orig)
        def w(*a: Any, **k: Any) -> Any:
            mark(f"{attr}:start")
            try:
                return orig(*a, **k)
            finally:
                mark(f"{attr}:end")

        setattr(cls, attr, w)

    import gc

    gc_start: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_start.append(time.perf_counter())
        elif gc_start:
            pause = time.perf_counter() - gc_start.pop()
            marks.setdefault(f"gc{info['generation']}", []).append(pause)

    gc.callbacks.append(on_gc)
    wrap_async(RolloutProbe, "refresh")
    wrap(RolloutController, "tick")
    wrap(Store, "record_decision")
    wrap(RoutingTable, "_publish")


PROFILE: dict[str, list[float]] = {}


def _profile_round(
    marks: dict[str, list[float]], decided: float, published: float, first: float | None
) -> None:
    """The marks from the decision to the first request served, each as an offset from the
    one before (ms), and the receipts' commit after the swap."""

    def first_after(name: str, t: float) -> float | None:
        xs = [x for x in marks.get(name, []) if x >= t - 1e-6]
        return xs[0] if xs else None

    # The tick took `now` (the decision's `at`), refreshed the readings, then ran the
    # controller on a worker thread, which published the swap (a rollback acts first) and then
    # recorded the command's and the decision's receipts.
    points = {
        "refresh:end": first_after("refresh:end", decided),
        "tick:start": first_after("tick:start", decided),
        "_publish:start": first_after("_publish:start", decided),
        "published": published,
        "first_served": first,
    }
    prev = decided
    for name, t in points.items():
        if t is None or t < decided - 1:
            continue
        PROFILE.setdefault(name, []).append(t - prev)
        prev = t
    # The receipts, committed after the swap: the tick ends when they are.
    tick_end = first_after("tick:end", published)
    if tick_end is not None:
        PROFILE.setdefault("receipts committed (after the swap)", []).append(tick_end - published)


def _wait_synced(fleet: list[Replica]) -> None:
    end = time.monotonic() + 30
    while not all(r.health().get("serving") for r in fleet):
        if time.monotonic() > end:
            raise RuntimeError("replicas did not sync")
        time.sleep(0.05)


def _serve_clients(latency: float) -> None:
    """The client process (``--serve-clients``): two backends, then one load run per stdin
    line (a LoadSpec as JSON), answering ``started`` when it begins and ``done`` when over."""

    async def run() -> None:
        knobs = BackendKnobs(base_latency_s=latency)
        b1, b2 = TestBackend("b1", knobs), TestBackend("b2", knobs)
        await b1.start()
        await b2.start()
        print(json.dumps([b1.base_url, b2.base_url]), flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            task = asyncio.create_task(run_load(LoadSpec(**json.loads(line))))
            print("started", flush=True)
            await task
            print("done", flush=True)
        await b1.stop()
        await b2.stop()

    asyncio.run(run())


class _Clients:
    """Backends and load, in this process (the anchor) or in a client process."""

    def __init__(self, latency: float, in_process: bool) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.runner: threading.Thread | None = None
        if in_process:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True).start()
            knobs = BackendKnobs(base_latency_s=latency)
            self.backends = [TestBackend("b1", knobs), TestBackend("b2", knobs)]
            for b in self.backends:
                asyncio.run_coroutine_threadsafe(b.start(), self.loop).result(30)
            self.urls = [b.base_url for b in self.backends]
            return
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-clients", "--latency", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.urls = json.loads(self.proc.stdout.readline())

    def start_load(self, spec: LoadSpec) -> None:
        if self.proc is None:
            self.runner = threading.Thread(target=lambda: asyncio.run(run_load(spec)))
            self.runner.start()
            return
        assert self.proc.stdin is not None and self.proc.stdout is not None
        fields = {k: getattr(spec, k) for k in spec.__dataclass_fields__}
        self.proc.stdin.write(json.dumps(fields) + "\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "started":
            raise RuntimeError("the client process did not start the load")

    def wait_load(self) -> None:
        if self.proc is None:
            assert self.runner is not None
            self.runner.join()
            return
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "done":
            raise RuntimeError("the client process did not finish the load")

    def close(self) -> None:
        if self.proc is None:
            for b in self.backends:
                asyncio.run_coroutine_threadsafe(b.stop(), self.loop).result(30)
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main() -> None:
    """Run the rounds and print the timings."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--latency", type=float, default=0.02, help="backend latency (s)")
    ap.add_argument("--profile", action="store_true", help="break the decision->swap time down")
    ap.add_argument("--replicas", type=int, default=0, help="serve through N replica processes")
    ap.add_argument(
        "--unfreeze-half",
        action="store_true",
        help="run the second half of the rounds with the heap unfrozen (the pre-fix anchor)",
    )
    ap.add_argument(
        "--client-in-process",
        action="store_true",
        help="backends and load generator on threads of the server's process (the anchor)",
    )
    ap.add_argument("--serve-clients", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_clients:
        _serve_clients(args.latency)
        return
    marks: dict[str, list[float]] = {}
    if args.profile:
        _instrument(marks)

    clients = _Clients(args.latency, args.client_in_process)
    atexit.register(clients.close)
    url1, url2 = clients.urls
    # Wall clock (time.time) everywhere, so trace times and the decision time compare.
    options = RolloutOptions(tick_interval_s=0.05, judge=None)
    with tempfile.TemporaryDirectory() as tmp, BackgroundServer(Path(tmp), rollout=options) as srv:
        assert srv.admin_key_path is not None
        key = srv.admin_key_path.read_text().strip()
        c = RelgateClient(srv.address, api_key=key)
        v1 = c.register_release(_manifest("v1", url1, None)).release.sha256
        v2 = c.register_release(_manifest("v2", url2, v1)).release.sha256
        _gate(srv, v1)
        _gate(srv, v2)
        boot = c.start_rollout(v1, overrides={"shadow_s": 0})
        c.control("Promote", boot.rollout_id, "bench")
        spec = {
            "steps": [
                {"weight_bp": 5000, "dwell_s": 3600, "deadline_s": 7200},
                {"weight_bp": 10000},
            ]
        }
        gw = srv.gateway
        assert gw is not None
        decision_to_swap: list[float] = []
        decision_to_served: list[float] = []
        drains: list[float] = []
        acked_all: list[float] = []
        # With --replicas, the load goes to `relgate gateway` processes (round i to replica
        # i mod N); their traces reach the control plane's store through PushTraces.
        fleet = start_replicas(srv.address, key, args.replicas) if args.replicas else []
        atexit.register(stop_replicas, fleet)  # stopped even when a round fails
        if fleet:
            _wait_synced(fleet)
        served_round: list[int] = []
        for i in range(args.rounds):
            if args.unfreeze_half and i == args.rounds // 2:
                import gc

                gc.unfreeze()  # the anchor: the second half runs as before the fix
            ro = c.start_rollout(v2, overrides=spec)
            load = LoadSpec(
                url=(fleet[i % len(fleet)].url if fleet else srv.gateway_url)
                + "/v1/chat/completions",
                rate_per_s=args.rate,
                max_requests=int(args.rate * 1.2),
                max_seconds=1.2,
                sessions=10_000,
                session_prefix=f"r{i}-",
            )
            clients.start_load(load)
            time.sleep(0.5)  # a bench, not a test: let the canary carry traffic first
            c.control("Abort", ro.rollout_id, "bench")
            clients.wait_load()
            if fleet:
                time.sleep(0.5)  # the replica's last trace batch (sent every 200 ms)
            # The abort decision (with replicas, swap_acked receipts follow it in the chain).
            receipt = [r for r in srv.store.list_receipts(release_sha=v2) if "at" in r.evidence][-1]
            decided = float(receipt.evidence["at"])
            history = list(srv.rollouts.routing("default").history)
            swap = history[-1]
            first = min(
                (
                    t.time
                    for t in gw.traces.all_traces()
                    if t.release_sha256 == v1 and t.snapshot_version >= swap.version
                ),
                default=None,
            )
            drained = [h.drain for h in history if h.version == swap.version and h.drain]
            if args.profile:
                _profile_round(marks, decided, swap.published_at, first)
            decision_to_swap.append(swap.published_at - decided)
            if first is not None:
                decision_to_served.append(first - decided)
                served_round.append(i)
            if drained and drained[0] is not None:
                drains.append(drained[0].elapsed_s)
            if fleet:
                acks = [h.acks for h in history if h.version == swap.version and h.acks]
                if acks and acks[0] is not None and acks[0].complete:
                    acked_all.append(max(t for n, t in acks[0].acked if n != "in-process"))
        stop_replicas(fleet)
        c.close()
    clients.close()

    def row(name: str, xs: list[float]) -> None:
        if not xs:
            print(f"{name:<36} no samples")
            return
        p50, p99 = statistics.median(xs), _pct(xs, 0.99)
        print(
            f"{name:<36} p50 {p50 * 1e3:8.2f} ms  p99 {p99 * 1e3:8.2f} ms  "
            f"max {max(xs) * 1e3:8.2f} ms  p99/goal {p99 / GOAL_S:5.2f}  (n={len(xs)})"
        )

    where = "in the server's process" if args.client_in_process else "in a client process"
    print(
        f"rollback bench: {args.rounds} rounds at {args.rate:g} req/s, backend {args.latency}s, "
        f"backends and load {where}"
    )
    row("decision -> swap visible", decision_to_swap)
    row("decision -> first served by previous", decision_to_served)
    if args.unfreeze_half:
        half = args.rounds // 2
        frozen = [x for x, i in zip(decision_to_served, served_round, strict=True) if i < half]
        thawed = [x for x, i in zip(decision_to_served, served_round, strict=True) if i >= half]
        row("  first half, start-up heap frozen", frozen)
        row("  second half, unfrozen (anchor)", thawed)
        if frozen and thawed:
            print(f"  p99 frozen / unfrozen: {_pct(frozen, 0.99) / _pct(thawed, 0.99):.2f}")
    row("drain of the canary snapshot", drains)
    if args.replicas:
        row(f"swap -> all {args.replicas} replicas acked", acked_all)
    for name, xs in PROFILE.items():
        row(f"  step to {name}", xs)
    if args.profile:
        import gc

        print(f"  heap: {len(gc.get_objects())} tracked objects, {gc.get_freeze_count()} frozen")
    for gen in ("gc0", "gc1", "gc2"):
        if marks.get(gen):
            row(f"  {gen} pauses (n={len(marks[gen])})", marks[gen])
    print(f"(goal: swap visible and first served within {GOAL_S * 1e3:.0f} ms; drain bounded by "
          f"the longest request, here ~{args.latency * 1e3:.0f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
