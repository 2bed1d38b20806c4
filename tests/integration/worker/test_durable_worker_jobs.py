"""Judge jobs in the store, through real control planes on loopback (SQLite, and PostgreSQL
when configured): a job queued before a control-plane restart is served after it, and a worker
connected to one replica answers a job queued on another."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from relgate.access import DEFAULT_TENANT, Role, acting_as
from relgate.app.jobs import Dispatcher
from relgate.app.remote_judge import RemoteJudge
from relgate.judge.base import Judge
from relgate.judge.jobs import JobSpec
from relgate.service.auth import create_key
from relgate.service.server import BackgroundServer, RunningServer
from relgate.worker.runner import WorkerRunner

LEASE_S = 2.0  # as the module fixture of conftest.py
ANSWERS = [f"The answer is {i}." for i in range(12)]
REFERENCES = [f"It is {i % 5}." for i in range(12)]


@contextmanager
def _server(data_dir: Path, store_url: str) -> Iterator[RunningServer]:
    background = BackgroundServer(
        data_dir,
        store_url=store_url,
        gateway_port=None,
        # A short poll: a result written by another replica is seen within it.
        workers=Dispatcher(lease_s=LEASE_S, poll_s=0.05),
    )
    server = background.start()
    try:
        yield server
    finally:
        background.stop(grace=1.0)


@contextmanager
def _worker(server: RunningServer, key: str, judge: Judge) -> Iterator[None]:
    runner = WorkerRunner(server.address, key, judge, backends=["embedding"], poll_ms=200)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def _shared_url(store_url: str | None, tmp_path: Path) -> str:
    """The database every control plane of a test opens (SQLite: one file beside them)."""
    return store_url or f"sqlite:///{tmp_path / 'shared.db'}"


def test_jobs_queued_before_a_restart_are_served_after_it(
    store_url: str | None, tmp_path: Path, judge: Judge
) -> None:
    url = _shared_url(store_url, tmp_path)
    specs = [
        JobSpec(
            "score",
            judge.judge_sha256,
            tuple(ANSWERS[i : i + 4]),
            tuple(REFERENCES[i : i + 4]),
            tenant=DEFAULT_TENANT,
        )
        for i in range(0, 12, 4)
    ]
    with _server(tmp_path / "cp", url) as before:
        assert before.workers is not None
        key = create_key(before.store.keys, role=Role.WORKER, name="worker")
        queued = before.workers.submit_all(specs)  # its caller dies with this control plane
    with _server(tmp_path / "cp", url) as after:
        assert after.workers is not None
        assert after.workers.stats()["queued"] == 3
        with _worker(after, key, judge):
            # The restarted caller asks for the same batches: it gets the queued jobs.
            results = after.workers.run(specs, timeout=60.0)
    assert [r.job_id for r in results] == queued
    got = np.concatenate([np.asarray(r.scores) for r in results])
    np.testing.assert_allclose(got, judge.score(ANSWERS, REFERENCES), rtol=1e-6, atol=1e-6)


def test_a_worker_of_one_replica_answers_jobs_queued_on_another(
    store_url: str | None, tmp_path: Path, judge: Judge
) -> None:
    url = _shared_url(store_url, tmp_path)
    with _server(tmp_path / "a", url) as a, _server(tmp_path / "b", url) as b:
        assert a.workers is not None and b.workers is not None
        key = create_key(a.store.keys, role=Role.WORKER, name="worker")
        with _worker(b, key, judge):
            remote = RemoteJudge(a.workers, judge.judge_sha256, timeout=60.0, batch_rows=5)
            with acting_as(DEFAULT_TENANT):
                got = remote.score(ANSWERS, REFERENCES)
        assert a.workers.live_workers() == [] and len(b.workers.live_workers()) == 1
        # Replica A never saw the worker; the judge's description came with its results.
        assert remote.description == judge.description
    np.testing.assert_allclose(got, judge.score(ANSWERS, REFERENCES), rtol=1e-6, atol=1e-6)
