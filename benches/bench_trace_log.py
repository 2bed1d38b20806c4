"""Trace persistence benchmark (loopback only, bounded): the gateway latency it adds.

One TEST BACKEND process, the load generator in its own process, the gateway on a thread of this
process, its trace store feeding a ``relgate.app.trace_log.TraceLog`` (bounded queue, batched
background writer into a SQLite store in a temporary directory). The anchor is the same gateway
with the trace log switched off; rounds alternate off / on in the same run, so drift on a shared
machine hits both sides alike
(in the order off, on, on, off, ...). Reported: p50/p99 of each side, the difference and the ratio,
traces persisted, and traces dropped because the queue was full.

Run: ``.venv/bin/python benches/bench_trace_log.py [--rate 300] [--seconds 5] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry
from relgate.app.trace_log import TraceLog
from relgate.gateway.hosting import GatewayThread
from relgate.routing import RoutingSnapshot
from relgate.store import Store
from relgate.traces import Trace, TraceStore

sys.path.insert(0, str(Path(__file__).parent))
from bench_gateway import backend, lat_ms, q, route, run_loadgen


class Switch:
    """A trace sink that hands traces to the trace log only while ``on``."""

    def __init__(self, target: TraceLog) -> None:
        self.target = target
        self.on = False

    def __call__(self, trace: Trace) -> None:
        if self.on:
            self.target(trace)


def bench(rate: float, seconds: float, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, backend("stable") as url:
        store = Store.open(data_dir=Path(tmp))
        reg = CollectorRegistry()
        tlog = TraceLog(store.traces, registry=reg)
        traces = TraceStore()
        switch = Switch(tlog)
        traces.add_sink(switch)
        tlog.start()
        gw = GatewayThread.start(RoutingSnapshot(1, route("a", url)), traces=traces)
        via = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
        try:
            run_loadgen(via, rate, 1.0)  # warm
            off: list[float] = []
            on: list[float] = []
            lost = 0
            for i in range(2 * rounds):
                # off, on, on, off, ...: neither side always runs first (a loaded machine
                # treats the first and the second run of a pair differently).
                switch.on = i % 4 in (1, 2)
                r = run_loadgen(via, rate, seconds)
                lost += sum(1 for x in r if x["status"] != 200)
                (on if switch.on else off).extend(lat_ms(r))
        finally:
            gw.stop()
            tlog.stop()
            stored = store.traces.count()
            store.close()
    dropped = reg.get_sample_value("relgate_traces_persist_dropped_total", {"reason": "queue_full"})
    res = {
        "rate_per_s": rate,
        "n_each": min(len(off), len(on)),
        "non_200": lost,
        "off_p50_ms": q(off, 0.50),
        "off_p99_ms": q(off, 0.99),
        "on_p50_ms": q(on, 0.50),
        "on_p99_ms": q(on, 0.99),
        "persisted": reg.get_sample_value("relgate_traces_persisted_total") or 0.0,
        "rows_kept": stored,
        "dropped_queue_full": dropped or 0.0,
    }
    res["added_p50_ms"] = res["on_p50_ms"] - res["off_p50_ms"]
    res["added_p99_ms"] = res["on_p99_ms"] - res["off_p99_ms"]
    res["ratio_p50"] = res["on_p50_ms"] / res["off_p50_ms"]
    res["ratio_p99"] = res["on_p99_ms"] / res["off_p99_ms"]
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rate", type=float, default=300.0)
    p.add_argument("--seconds", type=float, default=5.0, help="per round and side")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args()
    res = bench(a.rate, a.seconds, a.rounds)
    print(
        f"trace log at {res['rate_per_s']:.0f} req/s, {res['n_each']} requests a side: "
        f"p50 {res['off_p50_ms']:.2f} -> {res['on_p50_ms']:.2f} ms "
        f"(+{res['added_p50_ms']:.2f} ms, x{res['ratio_p50']:.3f}); "
        f"p99 {res['off_p99_ms']:.2f} -> {res['on_p99_ms']:.2f} ms "
        f"(+{res['added_p99_ms']:.2f} ms, x{res['ratio_p99']:.3f}); "
        f"persisted {res['persisted']:.0f}, kept {res['rows_kept']:.0f}, "
        f"dropped {res['dropped_queue_full']:.0f}, non-200 {res['non_200']:.0f}"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
