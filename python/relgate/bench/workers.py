"""End-to-end judge throughput through workers (``relgate bench judge --worker``).

Starts a control plane on loopback (temporary data directory, no gateway), issues a worker
key, launches ``relgate worker`` processes with the requested backend, and times the same
batches ``relgate.bench.judge.measure_judge`` times in process, sent through a ``RemoteJudge``.
The difference to the in-process number is the cost of the hop: gRPC, queueing, leases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from relgate.access import DEFAULT_TENANT, Role, acting_as
from relgate.app.jobs import Dispatcher
from relgate.app.remote_judge import RemoteJudge
from relgate.bench.judge import JudgeBench, measure_judge
from relgate.errors import JudgeUnavailableError
from relgate.service.auth import create_key
from relgate.service.server import BackgroundServer

__all__ = ["measure_through_workers"]


def measure_through_workers(
    worker_args: Sequence[str],
    answers: list[str],
    references: list[str],
    *,
    batch_size: int,
    backend: str,
    workers: int = 1,
    start_timeout: float = 300.0,
) -> JudgeBench:
    """Time the pairs through ``workers`` worker processes started with ``worker_args``
    (``relgate worker`` options after ``--control``, e.g. ``["--backend", "embedding"]``)."""
    dispatcher = Dispatcher(lease_s=30.0)
    with tempfile.TemporaryDirectory(prefix="relgate-bench-") as data:
        background = BackgroundServer(data, gateway_port=None, workers=dispatcher)
        server = background.start()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            key = create_key(server.store.keys, role=Role.WORKER, name="bench")
            env = {**os.environ, "RELGATE_API_KEY": key}
            cmd = [sys.executable, "-m", "relgate", "worker", "--control", server.address]
            procs = [
                subprocess.Popen(
                    [*cmd, *worker_args, "--name", f"bench-{i}"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i in range(workers)
            ]
            deadline = time.monotonic() + start_timeout
            while len(dispatcher.live_workers()) < workers:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise JudgeUnavailableError("bench workers did not start (see relgate worker)")
                time.sleep(0.1)
            sha = dispatcher.live_workers()[0].judge_sha256
            judge = RemoteJudge(dispatcher, sha, timeout=start_timeout, batch_rows=batch_size)
            with acting_as(DEFAULT_TENANT):  # the bench key's tenant
                return measure_judge(
                    judge,
                    answers,
                    references,
                    batch_size=batch_size,
                    backend=f"{backend} via worker",
                )
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
            background.stop(grace=1.0)
