"""Control-plane failover: how long a store is without a deciding leader after the leader dies.

Two ``relgate serve`` processes on one PostgreSQL (shared data directory: keys and clock). Each
round ends the leader, SIGKILL (a crash: the lease is left to expire) or SIGTERM (a clean stop:
the lease is handed back), and polls the store's lease row every 5 ms until the other process
holds it; the ended one is started again as the next follower. The anchor is the lease's TTL
(``--lease-ttl``): a crash costs between 2/3 of it and all of it (the leader renews every
TTL/3), plus the follower's poll (``--rollout-tick``); a clean stop costs one poll.

    python benches/bench_failover.py --store postgresql+psycopg://... [--rounds 10] [--ttl 2]

(``--store`` defaults to ``RELGATE_TEST_POSTGRES_URL``; a fresh database is created and
dropped.)
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from relgate.store import Store
from relgate.store.control import CONTROL_PLANE_LEASE
from relgate.testing.postgres import scratch_database

_SERVING = re.compile(r"relgate serving grpc=(\S+)")


def _start(data: Path, url: str, ttl: float, tick: float) -> subprocess.Popen[str]:
    argv = [
        sys.executable, "-m", "relgate", "serve", "--data-dir", str(data), "--store", url,
        "--grpc-port", "0", "--web-port", "0", "--gateway-port", "0",
        "--lease-ttl", str(ttl), "--rollout-tick", str(tick), "--log-level", "WARNING",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    if not line or not _SERVING.search(line[0]):
        proc.kill()
        raise SystemExit(f"serve did not start: {line}")
    return proc


def _holder(store: Store) -> str | None:
    lease = store.control.lease(CONTROL_PLANE_LEASE)
    return None if lease is None else lease.holder


def _wait_new_holder(store: Store, old: str | None, timeout: float = 60.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        holder = _holder(store)
        if holder is not None and holder != old:
            return time.monotonic() - t0
        time.sleep(0.005)
    raise SystemExit("no takeover within the timeout")


def _pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


def run(url: str, rounds: int, ttl: float, tick: float) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"SIGKILL": [], "SIGTERM": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        store = Store.open(url, data_dir=Path(tmp) / "bench")
        procs = {}
        try:
            first = _start(data, url, ttl, tick)
            procs[first.pid] = first
            _wait_new_holder(store, None)
            second = _start(data, url, ttl, tick)
            procs[second.pid] = second
            for i in range(2 * rounds):
                how = signal.SIGKILL if i % 2 == 0 else signal.SIGTERM
                holder = _holder(store)
                assert holder is not None
                leader = procs.pop(_pid_of(holder))
                time.sleep(ttl)  # a steady state: the follower has polled, the leader renewed
                leader.send_signal(how)
                took = _wait_new_holder(store, holder)
                out[how.name].append(took)
                ms = took * 1000
                print(f"round {i + 1}: {how.name} -> new leader in {ms:.0f} ms", flush=True)
                leader.wait(30)
                again = _start(data, url, ttl, tick)
                procs[again.pid] = again
        finally:
            for p in procs.values():
                p.send_signal(signal.SIGTERM)
                p.wait(30)
            store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default=os.environ.get("RELGATE_TEST_POSTGRES_URL"))
    ap.add_argument("--rounds", type=int, default=10, help="kills (and as many clean stops)")
    ap.add_argument("--ttl", type=float, default=2.0, help="--lease-ttl of both servers")
    ap.add_argument("--tick", type=float, default=0.05, help="--rollout-tick (follower poll)")
    args = ap.parse_args()
    if not args.store:
        raise SystemExit("--store (a PostgreSQL URL) or RELGATE_TEST_POSTGRES_URL is needed")
    with scratch_database(args.store, "relgate_bench") as url:
        out = run(url, args.rounds, args.ttl, args.tick)
    ttl_ms, tick_ms = args.ttl * 1000, args.tick * 1000
    print(f"\nlease ttl (anchor): {ttl_ms:.0f} ms, follower poll {tick_ms:.0f} ms")
    for how, xs in out.items():
        xs = sorted(xs)
        p50 = statistics.median(xs)
        print(
            f"{how:8s} n={len(xs):3d}  min {xs[0] * 1000:6.0f} ms  p50 {p50 * 1000:6.0f} ms  "
            f"max {xs[-1] * 1000:6.0f} ms   p50/ttl {p50 / args.ttl:.2f}  max/ttl "
            f"{xs[-1] / args.ttl:.2f}"
        )


if __name__ == "__main__":
    main()
