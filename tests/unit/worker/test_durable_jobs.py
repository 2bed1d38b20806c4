"""The job queue in the store (SQLite, and PostgreSQL when configured): leases that lapse,
first results, isolation, two replicas on one store, restarts, SKIP LOCKED, bounds, retention."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from relgate.access import acting_as
from relgate.app.job_queue import JobQueue, MemoryJobQueue
from relgate.app.jobs import Dispatcher, QueueLimits
from relgate.app.remote_judge import RemoteJudge
from relgate.errors import (
    AuthError,
    InvalidInputError,
    InvalidTransitionError,
    JudgeError,
    JudgeUnavailableError,
)
from relgate.judge.jobs import JobResult, JobSpec
from relgate.store import Store, schema

SHA_A = "a" * 64
SHA_B = "b" * 64


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _register(d: Dispatcher, key: str, *, sha: str = SHA_A, tenant: str = "t", cap: int = 4) -> str:
    return d.register(
        key_sha256=key,
        tenant=tenant,
        name="w",
        backends=["embedding"],
        model="m",
        judge_sha256=sha,
        description={"backend": "embedding", "key": key},
        capacity=cap,
    ).worker_id


def _spec(i: int = 0, *, sha: str = SHA_A, tenant: str = "t", n: int = 2) -> JobSpec:
    answers = tuple(f"a{i}-{k}" for k in range(n))
    return JobSpec("score", sha, answers, tuple(f"r{k}" for k in range(n)), tenant=tenant)


def _ids(taken: list[tuple[str, JobSpec]]) -> list[str]:
    return [job_id for job_id, _ in taken]


@pytest.fixture(params=["store", "memory"])
def queue(request: pytest.FixtureRequest, store: Store) -> JobQueue:
    """The store's queue, or the in-memory one (the same contract)."""
    return store.jobs if request.param == "store" else MemoryJobQueue()


@pytest.fixture
def replica(store_url: str | None, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens another store on the same database (another control-plane replica's)."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(Store.open(store_url, data_dir=tmp_path / "data"))
        return opened[-1]

    yield open_one
    for s in opened:
        s.close()


def _submit_apart(d: Dispatcher, clock: FakeClock, specs: list[JobSpec]) -> list[str]:
    """Submit one spec per tick of ``clock`` (claims take the oldest first)."""
    out = []
    for spec in specs:
        clock.now += 0.001
        out.append(d.submit(spec))
    return out


def test_a_lapsed_lease_hands_the_job_out_again(queue: JobQueue) -> None:
    clock = FakeClock()
    d = Dispatcher(lease_s=2.0, clock=clock, queue=queue)
    first, second = _register(d, "k1"), _register(d, "k2")
    job = d.submit(_spec())
    assert _ids(d.pull(first, "k1", 4)) == [job]
    assert d.pull(second, "k2", 4) == []
    # Both workers stay alive, but the first stops renewing the job's lease.
    clock.now += 1.5
    d.heartbeat(first, "k1")
    d.heartbeat(second, "k2")
    clock.now += 1.0
    assert _ids(d.pull(second, "k2", 4)) == [job]
    assert d.stats()["retried"] == 1
    # The first (late) answer still wins; the second is a duplicate.
    assert d.submit_result("k1", JobResult(job, first, scores=(0.1, 0.2)))
    assert not d.submit_result("k2", JobResult(job, second, scores=(0.9, 0.9)))
    assert d.wait([job], timeout=1.0)[0].scores == (0.1, 0.2)


def test_renewed_leases_hold_and_capacity_counts_held_jobs(queue: JobQueue) -> None:
    clock = FakeClock()
    d = Dispatcher(lease_s=2.0, clock=clock, queue=queue)
    w = _register(d, "k1", cap=2)
    jobs = _submit_apart(d, clock, [_spec(i) for i in range(3)])
    assert _ids(d.pull(w, "k1", 8)) == jobs[:2]  # oldest first, up to capacity
    assert d.pull(w, "k1", 8) == []
    for _ in range(4):
        clock.now += 1.5
        d.heartbeat(w, "k1", jobs[:2])
    assert d.stats() == {"workers": 1, "queued": 1, "leased": 2, "retried": 0}


def test_tenant_and_judge_isolation(queue: JobQueue) -> None:
    d = Dispatcher(clock=FakeClock(), queue=queue)
    other_judge = _register(d, "kj", sha=SHA_B)
    other_tenant = _register(d, "kt", tenant="u")
    ours = _register(d, "ko")
    job = d.submit(_spec())
    assert d.pull(other_judge, "kj", 8) == [] and d.pull(other_tenant, "kt", 8) == []
    for worker, key in ((other_judge, "kj"), (other_tenant, "kt")):
        with pytest.raises(AuthError, match="may not answer"):
            d.submit_result(key, JobResult(job, worker, scores=(0.5, 0.5)))
    # The same content submitted for another tenant is another job.
    assert d.submit(_spec(tenant="u")) != job
    assert _ids(d.pull(ours, "ko", 8)) == [job]


def test_a_job_submitted_on_one_replica_is_answered_through_another(
    store: Store, replica: Callable[[], Store]
) -> None:
    a = Dispatcher(lease_s=5.0, queue=store.jobs, poll_s=0.02)
    b = Dispatcher(lease_s=5.0, queue=replica().jobs, poll_s=0.02)
    worker = _register(b, "kb", cap=16)
    stop = threading.Event()

    def serve() -> None:  # a worker connected to replica B only
        while not stop.is_set():
            for job_id, spec in b.pull(worker, "kb", 16, wait_s=0.05):
                scores = tuple(float(x.rsplit("-", 1)[1]) / 10 for x in spec.answers)
                b.submit_result("kb", JobResult(job_id, worker, scores=scores))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        judge = RemoteJudge(a, SHA_A, timeout=20.0, batch_rows=2)
        with acting_as("t"):
            got = judge.score([f"x-{i}" for i in range(5)], [f"r{i}" for i in range(5)])
    finally:
        stop.set()
        thread.join()
    assert list(got) == [0.0, 0.1, 0.2, 0.3, 0.4]
    # Replica A never saw the worker, yet describes the judge from its results.
    assert a.live_workers() == []
    assert judge.description == {"backend": "embedding", "key": "kb"}


def test_a_queued_job_survives_a_restart_and_its_result_is_reused(
    store: Store, replica: Callable[[], Store]
) -> None:
    clock = FakeClock()
    before = Dispatcher(clock=clock, queue=store.jobs)
    job = before.submit(_spec())
    del before  # the control plane went away with its caller waiting
    after = Dispatcher(clock=clock, queue=replica().jobs)
    w = _register(after, "k1")
    assert _ids(after.pull(w, "k1", 8)) == [job]
    assert after.submit_result("k1", JobResult(job, w, scores=(0.3, 0.4)))
    c = schema.judge_jobs.c
    with store.db.read() as conn:  # a done job keeps its result, not its (large) spec
        assert conn.execute(sa.select(c.spec).where(c.job_id == job)).scalar_one() == ""
    # The caller, restarted too, submits the identical batch: it attaches to the answered job.
    again = Dispatcher(clock=clock, queue=store.jobs)
    assert again.run([_spec()], timeout=0.0)[0].scores == (0.3, 0.4)
    assert again.stats()["queued"] == 0


def test_concurrent_pullers_never_share_a_job(store: Store, replica: Callable[[], Store]) -> None:
    replicas = [
        Dispatcher(lease_s=60.0, queue=store.jobs),
        Dispatcher(lease_s=60.0, queue=replica().jobs),
    ]
    jobs = {replicas[0].submit(_spec(i)) for i in range(120)}
    workers = [(d, _register(d, f"k{i}", cap=1024)) for i in range(2) for d in replicas]
    got: list[list[str]] = [[] for _ in workers]
    start = threading.Barrier(len(workers))

    def pull(n: int) -> None:
        d, worker = workers[n]
        key = f"k{n // 2}"
        start.wait()
        while taken := d.pull(worker, key, 3):
            got[n].extend(_ids(taken))

    threads = [threading.Thread(target=pull, args=(n,)) for n in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    everything = [j for g in got for j in g]
    assert len(everything) == len(set(everything)) == len(jobs)
    assert set(everything) == jobs


def test_a_claim_skips_rows_another_transaction_holds(store: Store) -> None:
    """PostgreSQL: a claim neither waits for nor takes a row locked by another claimer."""
    if store.dialect != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite has one writer at a time")
    d = Dispatcher(queue=store.jobs)
    first, second = d.submit(_spec(0)), d.submit(_spec(1))
    c = schema.judge_jobs.c
    with store.db.engine.connect() as conn, conn.begin():
        conn.execute(sa.select(c.job_id).where(c.job_id == first).with_for_update())
        got: list[str] = []
        claimer = threading.Thread(
            target=lambda: got.extend(
                j.job_id
                for j in store.jobs.claim(
                    tenant="t",
                    judge_sha256=SHA_A,
                    worker_id="w-x",
                    capacity=8,
                    limit=8,
                    now=1.0,
                    lease_s=5.0,
                )
            )
        )
        claimer.start()
        claimer.join(timeout=10)
        assert not claimer.is_alive(), "the claim waited on a locked row"
    assert got == [second]


def test_bounds_refuse_big_specs_and_a_full_queue_per_tenant(queue: JobQueue) -> None:
    d = Dispatcher(
        clock=FakeClock(),
        queue=queue,
        limits=QueueLimits(max_spec_bytes=2_000, max_pending=3),
    )
    with pytest.raises(InvalidInputError, match="over the 2000-byte cap"):
        d.submit(JobSpec("score", SHA_A, ("x" * 3_000,), ("r",), tenant="t"))
    for i in range(3):
        d.submit(_spec(i))
    with pytest.raises(JudgeUnavailableError, match="would pass the cap of 3"):
        d.run([_spec(7), _spec(8)], timeout=0.0)
    d.submit(_spec(0))  # attaching to a queued job is no new work
    d.submit(_spec(9, tenant="u"))  # another tenant's queue is its own
    assert d.stats()["queued"] == 4


def test_retention_deletes_done_and_abandoned_jobs(queue: JobQueue) -> None:
    clock = FakeClock()
    limits = QueueLimits(done_ttl_s=100.0, max_done=2, abandon_ttl_s=500.0, prune_every_s=0.0)
    d = Dispatcher(lease_s=1_000.0, clock=clock, queue=queue, limits=limits)
    w = _register(d, "k1", cap=64)
    *done, abandoned = _submit_apart(d, clock, [_spec(i) for i in range(4)] + [_spec(9)])
    d.pull(w, "k1", 4)
    for job in done:
        clock.now += 1
        assert d.submit_result("k1", JobResult(job, w, scores=(0.0, 0.0)))
    d.submit(_spec(20))  # every submit prunes (prune_every_s=0): beyond max_done, oldest go
    assert set(queue.results(done)) == set(done[2:])
    clock.now += 150
    d.heartbeat(w, "k1")
    d.submit(_spec(21))
    assert queue.results(done) == {}
    assert abandoned in queue.results([abandoned])
    clock.now += 500
    d.heartbeat(w, "k1")
    d.submit(_spec(22))
    assert queue.results([abandoned]) == {}


def test_a_timed_out_caller_withdraws_its_queued_jobs(queue: JobQueue) -> None:
    d = Dispatcher(queue=queue, poll_s=0.01)
    with acting_as("t"), pytest.raises(JudgeUnavailableError, match="no live worker"):
        RemoteJudge(d, SHA_A, timeout=0.05).score(["a"], ["b"])
    assert d.stats()["queued"] == 0


def test_a_failed_answer_is_not_reused(queue: JobQueue) -> None:
    clock = FakeClock()
    d = Dispatcher(clock=clock, queue=queue)
    w = _register(d, "k1")
    job = d.submit(_spec())
    d.pull(w, "k1", 1)
    assert d.submit_result("k1", JobResult(job, w, error="CUDA out of memory"))
    with pytest.raises(JudgeError, match="CUDA out of memory"):
        d.wait([job], timeout=1.0)
    assert d.submit(_spec()) == job  # queued afresh, not the failure again
    assert _ids(d.pull(w, "k1", 1)) == [job]


def test_the_server_binds_a_plain_dispatcher_to_its_store(store: Store) -> None:
    d = Dispatcher()
    assert d.bindable
    d.bind(store.jobs)
    with pytest.raises(InvalidTransitionError):
        d.bind(store.jobs)
    busy = Dispatcher()
    busy.submit(_spec())
    assert not busy.bindable
