"""Register throughput and latency through gRPC on SQLite (loopback only, bounded count).

The anchor is the same registrations straight into `Store.register_release` in-process
(no gRPC, no auth), in the same run: the ratio is what the API layer costs. Each mode uses
a fresh data directory and distinct manifests (every call creates a release and a receipt).
A register is dominated by the SQLite commit (fsync), which swings with disk load on a
shared machine; the `get` rows (GetRelease vs `Store.get_release`, no fsync) show the
fixed cost of the gRPC round trip, auth and conversion on their own.

    .venv/bin/python benches/bench_register.py [--count 400] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from relgate.client import RelgateClient
from relgate.manifest import ReleaseManifest
from relgate.service.server import BackgroundServer
from relgate.store import Store


def manifest(n: int) -> bytes:
    doc: dict[str, Any] = {
        "model": {
            "kind": "api",
            "provider": "openai-compatible",
            "model": f"bench-{n}",
            "endpoint": "http://127.0.0.1:9/v1",
        },
        "prompt_template": {"ref": "qa", "template": "Q: {q}\nA:", "variables": ["q"]},
        "routing": [{"domain": "general"}],
        "dataset": {"ref": "suite", "sha256": "ab" * 32},
        "previous_release": None,
    }
    return json.dumps(doc).encode()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_ms": pick(0.50) * 1e3,
        "p95_ms": pick(0.95) * 1e3,
        "p99_ms": pick(0.99) * 1e3,
        "mean_ms": statistics.fmean(ordered) * 1e3,
    }


Timing = tuple[float, list[float]]


def _timed(fn: Any, items: list[Any], workers: int) -> Timing:
    def one(item: Any) -> float:
        t0 = time.perf_counter()
        fn(item)
        return time.perf_counter() - t0

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        lat = list(pool.map(one, items))
    return time.perf_counter() - start, lat


def run_direct(docs: list[bytes], workers: int) -> tuple[Timing, Timing]:
    with tempfile.TemporaryDirectory() as tmp, Store.open(data_dir=Path(tmp)) as store:
        shas: list[str] = []

        def register(doc: bytes) -> None:
            shas.append(
                store.register_release(ReleaseManifest.parse(doc), actor="b").release.sha256
            )

        reg = _timed(register, docs, workers)
        return reg, _timed(store.get_release, shas, workers)


def run_grpc(docs: list[bytes], workers: int) -> tuple[Timing, Timing]:
    with tempfile.TemporaryDirectory() as tmp, BackgroundServer(Path(tmp)) as server:
        assert server.admin_key_path is not None
        key = server.admin_key_path.read_text().strip()
        clients = [RelgateClient(server.address, api_key=key) for _ in range(workers)]
        clients[0].list_releases()  # connect and warm the key cache outside the timing
        shas: list[str] = []

        def register(job: tuple[int, bytes]) -> None:
            result = clients[job[0] % workers].register_release(job[1])
            assert result.created
            shas.append(result.release.sha256)

        reg = _timed(register, list(enumerate(docs)), workers)
        get = _timed(
            lambda j: clients[j[0] % workers].get_release(j[1]), list(enumerate(shas)), workers
        )
        for c in clients:
            c.close()
        return reg, get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    count = max(10, min(args.count, 20_000))
    rounds = max(1, min(args.rounds, 10))
    print(f"{count} distinct manifests per round, SQLite (WAL), loopback;")
    print(f"best of {rounds} interleaved rounds per mode (a shared machine is noisy)")
    print(f"{'mode':<30}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'vs direct':>11}")
    modes = {"direct": run_direct, "grpc": run_grpc}
    for workers in sorted({1, args.concurrency}):
        best: dict[tuple[str, str], Timing] = {}
        for r in range(rounds):
            # Alternate the order so neither mode always runs on a warmer (or busier) machine.
            order = ["direct", "grpc"] if r % 2 == 0 else ["grpc", "direct"]
            for mode in order:
                docs = [manifest((workers * rounds + r) * 1_000_000 + n) for n in range(count)]
                for op, timing in zip(("register", "get"), modes[mode](docs, workers), strict=True):
                    if (mode, op) not in best or timing[0] < best[mode, op][0]:
                        best[mode, op] = timing
        for op in ("register", "get"):
            direct_s = best["direct", op][0]
            for mode, name in (("direct", f"{op}: store, {workers} thr"),
                               ("grpc", f"{op}: gRPC, {workers} clients")):  # fmt: skip
                elapsed, lat = best[mode, op]
                p = percentiles(lat)
                print(
                    f"{name:<30}{count / elapsed:>9.0f}{p['p50_ms']:>9.2f}{p['p95_ms']:>9.2f}"
                    f"{p['p99_ms']:>9.2f}{direct_s / elapsed:>10.2f}x"
                )


if __name__ == "__main__":
    main()
