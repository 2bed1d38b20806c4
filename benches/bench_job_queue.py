"""Judge-job queue throughput: the store-backed queue vs the in-memory one, in one run.

No model and no gRPC: caller threads submit batches through ``Dispatcher.run`` and worker
threads pull and answer each job at once, so the numbers are the queue's own cost (submit,
claim, complete, wait) per job. Backends, each on a fresh queue:

- ``memory``: ``MemoryJobQueue`` (the anchor: what the dispatcher did before jobs were stored);
- ``sqlite``: the store's ``judge_jobs`` on SQLite (WAL, ``synchronous=FULL``) in a temp dir;
- ``postgresql``: the same on PostgreSQL, when ``--postgres URL`` or
  ``RELGATE_TEST_POSTGRES_URL`` names a server (a database is created and dropped);
- ``... 2 replicas``: callers on one dispatcher, workers on another over the same database (a
  second control-plane replica): results reach the callers by polling (``--poll-s``).

Prints jobs/s, the p50/p99 of one ``run`` call, and the ratio to the memory anchor.

    .venv/bin/python benches/bench_job_queue.py [--jobs 2000] [--batch 8] [--callers 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np
from relgate.app.job_queue import JobQueue, MemoryJobQueue
from relgate.app.jobs import Dispatcher
from relgate.judge.jobs import JobResult, JobSpec
from relgate.store import Store
from relgate.testing.postgres import scratch_database

SHA = "c" * 64


@dataclass
class Row:
    backend: str
    jobs: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds


def measure(
    name: str, callers_d: Dispatcher, workers_d: Dispatcher, args: argparse.Namespace
) -> Row:
    stop = threading.Event()
    ids = [
        workers_d.register(
            key_sha256=f"k{i}",
            tenant="t",
            name=f"w{i}",
            backends=["none"],
            model="none",
            judge_sha256=SHA,
            description={"backend": "none"},
            capacity=64,
        ).worker_id
        for i in range(args.workers)
    ]

    def serve(i: int) -> None:
        while not stop.is_set():
            for job_id, spec in workers_d.pull(ids[i], f"k{i}", 16, wait_s=0.05):
                scores = tuple(0.5 for _ in spec.references)
                workers_d.submit_result(f"k{i}", JobResult(job_id, ids[i], scores=scores))

    run_id = uuid.uuid4().hex  # every job's content unique: no attaching to earlier results
    per_caller = args.jobs // args.callers // args.batch
    latencies: list[float] = []
    lock = threading.Lock()

    def call(c: int) -> None:
        for b in range(per_caller):
            specs = [
                JobSpec(
                    "score",
                    SHA,
                    tuple(f"{run_id} {c} {b} {j} answer {k}" for k in range(4)),
                    tuple(f"reference {k}" for k in range(4)),
                    tenant="t",
                )
                for j in range(args.batch)
            ]
            t0 = time.perf_counter()
            callers_d.run(specs, timeout=120.0)
            with lock:
                latencies.append(time.perf_counter() - t0)

    servers = [threading.Thread(target=serve, args=(i,), daemon=True) for i in range(args.workers)]
    for t in servers:
        t.start()
    threads = [threading.Thread(target=call, args=(c,)) for c in range(args.callers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    stop.set()
    for t in servers:
        t.join(timeout=10)
    lat = np.asarray(latencies) * 1000
    jobs = per_caller * args.callers * args.batch
    return Row(name, jobs, seconds, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)))


def dispatcher(queue: JobQueue, poll_s: float) -> Dispatcher:
    return Dispatcher(lease_s=30.0, queue=queue, poll_s=poll_s)


def run_store(name: str, url: str | None, data: str, args: argparse.Namespace) -> list[Row]:
    rows = []
    a = Store.open(url, data_dir=os.path.join(data, name))
    b = Store.open(url, data_dir=os.path.join(data, name))
    try:
        d = dispatcher(a.jobs, args.poll_s)
        rows.append(measure(name, d, d, args))
        rows.append(
            measure(
                f"{name}, 2 replicas",
                dispatcher(a.jobs, args.poll_s),
                dispatcher(b.jobs, args.poll_s),
                args,
            )
        )
    finally:
        a.close()
        b.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=8, help="jobs per run() call")
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--poll-s", type=float, default=0.25, help="the dispatcher's default")
    parser.add_argument("--postgres", default=os.environ.get("RELGATE_TEST_POSTGRES_URL"))
    args = parser.parse_args()

    memory = dispatcher(MemoryJobQueue(), args.poll_s)
    rows = [measure("memory (anchor)", memory, memory, args)]
    with tempfile.TemporaryDirectory(prefix="relgate-bench-jobs-") as data:
        rows += run_store("sqlite", None, data, args)
        if args.postgres:
            with scratch_database(args.postgres, "relgate_bench") as url:
                rows += run_store("postgresql", url, data, args)
    anchor = rows[0].jobs_per_s
    print(
        f"{args.jobs} jobs, {args.batch} per run() call, {args.callers} callers, "
        f"{args.workers} workers, poll {args.poll_s} s"
    )
    print(f"{'backend':<26} {'jobs/s':>9} {'vs memory':>10} {'run p50 ms':>11} {'run p99 ms':>11}")
    for r in rows:
        print(
            f"{r.backend:<26} {r.jobs_per_s:>9.0f} {r.jobs_per_s / anchor:>9.2f}x "
            f"{r.p50_ms:>11.1f} {r.p99_ms:>11.1f}"
        )


if __name__ == "__main__":
    main()
