"""Register throughput and latency through gRPC on SQLite (loopback only, bounded count).

The anchor is the same registrations straight into `Store.register_release` in-process
(no gRPC, no auth), in the same run: the ratio is what the API layer costs. Each mode uses
a fresh data directory, distinct manifests (every call creates a release and a receipt),
and the same manifests across modes.

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


def run_direct(docs: list[bytes], workers: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as tmp, Store.open(data_dir=Path(tmp)) as store:

        def one(doc: bytes) -> float:
            t0 = time.perf_counter()
            store.register_release(ReleaseManifest.parse(doc), actor="bench")
            return time.perf_counter() - t0

        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            lat = list(pool.map(one, docs))
        return time.perf_counter() - start, lat


def run_grpc(docs: list[bytes], workers: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as tmp, BackgroundServer(Path(tmp)) as server:
        assert server.admin_key_path is not None
        key = server.admin_key_path.read_text().strip()
        clients = [RelgateClient(server.address, api_key=key) for _ in range(workers)]
        clients[0].list_releases()  # connect and warm the key cache outside the timing

        def one(job: tuple[int, bytes]) -> float:
            i, doc = job
            t0 = time.perf_counter()
            result = clients[i % workers].register_release(doc)
            assert result.created
            return time.perf_counter() - t0

        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            lat = list(pool.map(one, enumerate(docs)))
        elapsed = time.perf_counter() - start
        for c in clients:
            c.close()
        return elapsed, lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    count = max(10, min(args.count, 20_000))
    print(f"register {count} distinct manifests, SQLite (WAL), loopback")
    print(f"{'mode':<28}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'vs direct':>11}")
    for workers in sorted({1, args.concurrency}):
        docs = [manifest(workers * 1_000_000 + n) for n in range(count)]
        direct_s, direct_lat = run_direct(docs, workers)
        grpc_s, grpc_lat = run_grpc(docs, workers)
        for name, elapsed, lat in (
            (f"store direct, {workers} thr", direct_s, direct_lat),
            (f"gRPC, {workers} client thr", grpc_s, grpc_lat),
        ):
            p = percentiles(lat)
            ratio = (count / elapsed) / (count / direct_s)
            print(
                f"{name:<28}{count / elapsed:>9.0f}{p['p50_ms']:>9.2f}{p['p95_ms']:>9.2f}"
                f"{p['p99_ms']:>9.2f}{ratio:>10.2f}x"
            )


if __name__ == "__main__":
    main()
