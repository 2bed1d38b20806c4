"""The dispatcher: judge matching, leases and retry, idempotent results, deadlines."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from relgate.access import Role, acting_as
from relgate.app.jobs import Dispatcher
from relgate.app.remote_judge import RemoteJudge
from relgate.errors import AuthError, InvalidInputError, JudgeError, JudgeUnavailableError
from relgate.judge.jobs import JobResult, JobSpec
from relgate.service.auth import Authenticator, Principal

SHA_A = "a" * 64
SHA_B = "b" * 64


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _register(
    d: Dispatcher, sha: str = SHA_A, key: str = "k1", capacity: int = 4, tenant: str = "t"
) -> str:
    return d.register(
        key_sha256=key,
        tenant=tenant,
        name="w",
        backends=["embedding"],
        model="m",
        judge_sha256=sha,
        description={"backend": "embedding"},
        capacity=capacity,
    ).worker_id


def _spec(sha: str = SHA_A, n: int = 2, tenant: str = "t") -> JobSpec:
    answers, references = tuple(f"a{i}" for i in range(n)), tuple(f"r{i}" for i in range(n))
    return JobSpec("score", sha, answers, references, tenant=tenant)


def test_job_goes_only_to_a_worker_of_its_judge() -> None:
    d = Dispatcher(clock=FakeClock())
    other = _register(d, SHA_B, key="kb")
    mine = _register(d, SHA_A, key="ka")
    job = d.submit(_spec(SHA_A))
    assert d.pull(other, "kb", 8) == []
    taken = d.pull(mine, "ka", 8)
    assert [j for j, _ in taken] == [job]
    # A worker of another judge may not answer it either.
    with pytest.raises(AuthError):
        d.submit_result("kb", JobResult(job, other, scores=(0.5, 0.5)))


def test_job_goes_only_to_a_worker_of_its_tenant() -> None:
    """A job carries its tenant's answers and references: another tenant's worker of the
    same judge neither receives nor answers it."""
    d = Dispatcher(clock=FakeClock())
    theirs = _register(d, key="kb", tenant="b")
    ours = _register(d, key="ka", tenant="a")
    job = d.submit(_spec(tenant="a"))
    assert d.pull(theirs, "kb", 8) == []
    with pytest.raises(AuthError, match="may not answer"):
        d.submit_result("kb", JobResult(job, theirs, scores=(0.5, 0.5)))
    assert [j for j, _ in d.pull(ours, "ka", 8)] == [job]


def test_remote_judge_scores_only_on_behalf_of_a_tenant() -> None:
    d = Dispatcher()  # the real clock: the 10 ms wait must end (a fake one never moves)
    judge = RemoteJudge(d, SHA_A, timeout=0.01)
    with pytest.raises(JudgeError, match="on behalf of a tenant"):
        judge.score(["a"], ["r"])
    with acting_as("a"), pytest.raises(JudgeUnavailableError, match="no live worker of tenant 'a'"):
        judge.score(["a"], ["r"])


def test_dead_worker_loses_its_lease_and_the_job_is_retried() -> None:
    clock = FakeClock()
    d = Dispatcher(lease_s=2.0, clock=clock)
    first = _register(d, key="k1")
    job = d.submit(_spec())
    assert [j for j, _ in d.pull(first, "k1", 1)] == [job]
    second = _register(d, key="k2")
    assert d.pull(second, "k2", 1) == []  # leased to the first worker
    # The first worker stopped heartbeating; the second one did not.
    clock.now += 1.5
    d.heartbeat(second, "k2")
    clock.now += 1.0
    assert [j for j, _ in d.pull(second, "k2", 1)] == [job]
    assert d.stats()["retried"] == 1
    assert d.submit_result("k2", JobResult(job, second, scores=(0.1, 0.2)))
    # The first worker is gone: its late result is refused outright.
    with pytest.raises(AuthError):
        d.submit_result("k1", JobResult(job, first, scores=(0.9, 0.9)))
    assert d.wait([job], timeout=1.0)[0].scores == (0.1, 0.2)


def test_heartbeat_keeps_the_lease() -> None:
    clock = FakeClock()
    d = Dispatcher(lease_s=2.0, clock=clock)
    w = _register(d)
    job = d.submit(_spec())
    d.pull(w, "k1", 1)
    for _ in range(5):
        clock.now += 1.5
        d.heartbeat(w, "k1", [job])
    assert d.stats() == {"workers": 1, "queued": 0, "leased": 1, "retried": 0}
    assert d.live_workers(SHA_A)[0].heartbeats == 5


def test_results_are_idempotent_by_job_id() -> None:
    d = Dispatcher(clock=FakeClock())
    a = _register(d, key="ka")
    b = _register(d, key="kb")
    job = d.submit(_spec())
    d.pull(a, "ka", 1)
    assert d.submit_result("ka", JobResult(job, a, scores=(0.1, 0.2)))
    assert not d.submit_result("kb", JobResult(job, b, scores=(0.7, 0.7)))
    assert d.wait([job], timeout=1.0)[0].scores == (0.1, 0.2)


def test_unknown_worker_or_foreign_key_is_rejected() -> None:
    d = Dispatcher(clock=FakeClock())
    w = _register(d, key="ka")
    job = d.submit(_spec())
    with pytest.raises(AuthError):
        d.submit_result("ka", JobResult(job, "w-nobody", scores=(0.0, 0.0)))
    with pytest.raises(AuthError):  # a real worker id under someone else's key
        d.submit_result("kz", JobResult(job, w, scores=(0.0, 0.0)))
    with pytest.raises(AuthError):
        d.heartbeat("w-nobody", "ka")


def test_wrong_row_count_is_invalid_and_errors_surface_as_judge_errors() -> None:
    d = Dispatcher(clock=FakeClock())
    w = _register(d)
    job = d.submit(_spec(n=2))
    d.pull(w, "k1", 1)
    with pytest.raises(InvalidInputError):
        d.submit_result("k1", JobResult(job, w, scores=(0.5,)))
    assert d.submit_result("k1", JobResult(job, w, error="CUDA out of memory"))
    with pytest.raises(JudgeError, match="CUDA out of memory"):
        d.wait([job], timeout=1.0)


def test_no_live_worker_is_unavailable_by_the_deadline() -> None:
    d = Dispatcher(lease_s=0.2)
    judge = RemoteJudge(d, SHA_A, timeout=0.3)
    with acting_as("t"), pytest.raises(JudgeUnavailableError, match="no live worker"):
        judge.score(["a"], ["b"])
    assert d.stats()["queued"] == 0  # withdrawn, not left behind


def test_remote_judge_splits_batches_and_keeps_order() -> None:
    d = Dispatcher(lease_s=5.0)
    w = _register(d, capacity=16)
    judge = RemoteJudge(d, SHA_A, timeout=10.0, batch_rows=3)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            for job_id, spec in d.pull(w, "k1", 16, wait_s=0.05):
                scores = tuple(float(a[1:]) / 10 for a in spec.answers)
                d.submit_result("k1", JobResult(job_id, w, scores=scores))

    t = threading.Thread(target=serve)
    t.start()
    try:
        with acting_as("t"):  # the worker's tenant (_register's default)
            got = judge.score([f"a{i}" for i in range(8)], [f"r{i}" for i in range(8)])
    finally:
        stop.set()
        t.join()
    np.testing.assert_array_equal(got, np.arange(8) / 10)
    assert judge.description == {"backend": "embedding"}


def test_worker_role_is_outside_the_order() -> None:
    worker = Principal("x", Role.WORKER, "w", "default")
    admin = Principal("y", Role.ADMIN, "a", "default")
    Authenticator.authorize(worker, Role.WORKER)
    for role in (Role.VIEWER, Role.RELEASER, Role.ADMIN):
        with pytest.raises(AuthError):
            Authenticator.authorize(worker, role)
    with pytest.raises(AuthError):
        Authenticator.authorize(admin, Role.WORKER)
    assert Role.parse("worker") is Role.WORKER
