"""The control plane's side of judge workers: who is alive, which jobs wait, who holds which.

A worker registers with its judge identity (``judge_sha256``) under its own API key, then
heartbeats and pulls jobs. The dispatcher

- keeps a registry of live workers; a worker silent for ``lease_s`` is dead, and every job it
  held goes back to the queue (at-least-once delivery);
- hands a job only to a worker whose judge sha equals the job's: a score from another judge is
  a score of another statistic, so it must never reach a gate; and only to a worker of the
  job's tenant (its key's), since a job carries that tenant's answers and references;
- accepts a result only from a registered worker (under the key it registered with) whose
  judge is the job's, and only once per job id: a retried job may be answered twice (the dead
  worker was only slow), and the first answer wins;
- lets callers (``RemoteJudge``) wait for results with a deadline.

State is in memory and guarded by one lock: jobs are batches of a gate or monitor call that
is itself waiting in this process, so a control-plane restart loses nothing that is not also
retried by its caller. Expiry is evaluated lazily on every operation (no timer thread), with
an injectable monotonic clock for tests.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from relgate.errors import AuthError, InvalidInputError, JudgeError, JudgeUnavailableError
from relgate.judge.jobs import JobResult, JobSpec

__all__ = ["Dispatcher", "WorkerInfo"]


@dataclass
class WorkerInfo:
    """A registered worker."""

    worker_id: str
    key_sha256: str
    tenant: str
    name: str
    backends: tuple[str, ...]
    model: str
    judge_sha256: str
    description: Mapping[str, Any]
    capacity: int
    expires: float
    jobs: set[str] = field(default_factory=set)
    completed: int = 0
    heartbeats: int = 0


@dataclass
class _Job:
    job_id: str
    spec: JobSpec
    worker_id: str | None = None
    lease_until: float = 0.0
    attempts: int = 0
    result: JobResult | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Dispatcher:
    """Registry of live workers and the job queue (thread-safe)."""

    def __init__(
        self,
        *,
        lease_s: float = 10.0,
        heartbeat_interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lease_s <= 0:
            raise InvalidInputError(f"worker lease must be positive, got {lease_s}")
        self.lease_s = lease_s
        self.heartbeat_interval_s = heartbeat_interval_s or lease_s / 4
        self._clock = clock
        self._lock = threading.Condition()
        self._workers: dict[str, WorkerInfo] = {}
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[str] = deque()
        self._ids = itertools.count(1)
        self.retried = 0

    # ---- workers -----------------------------------------------------------------------------

    def register(
        self,
        *,
        key_sha256: str,
        tenant: str,
        name: str,
        backends: Sequence[str],
        model: str,
        judge_sha256: str,
        description: Mapping[str, Any],
        capacity: int,
    ) -> WorkerInfo:
        """Add a worker; returns it with its fresh id."""
        if len(judge_sha256) != 64 or any(c not in "0123456789abcdef" for c in judge_sha256):
            raise InvalidInputError("worker judge_sha256 must be 64 lower-case hex digits")
        if not 1 <= capacity <= 1024:
            raise InvalidInputError(f"worker capacity must be in 1..1024, got {capacity}")
        with self._lock:
            self._expire()
            worker = WorkerInfo(
                worker_id=f"w-{secrets.token_hex(8)}",
                key_sha256=key_sha256,
                tenant=tenant,
                name=name or "worker",
                backends=tuple(backends),
                model=model,
                judge_sha256=judge_sha256,
                description=dict(description),
                capacity=capacity,
                expires=self._clock() + self.lease_s,
            )
            self._workers[worker.worker_id] = worker
            self._lock.notify_all()
            return worker

    def _worker(self, worker_id: str, key_sha256: str) -> WorkerInfo:
        worker = self._workers.get(worker_id)
        # Same error for a dead, unknown or foreign worker id: none of them may act.
        if worker is None or worker.key_sha256 != key_sha256:
            raise AuthError(f"unknown worker {worker_id!r}: register (again) with this key")
        return worker

    def heartbeat(self, worker_id: str, key_sha256: str, job_ids: Sequence[str] = ()) -> None:
        """Keep a worker alive, and the leases of the jobs it names that it still holds."""
        with self._lock:
            self._expire()
            worker = self._worker(worker_id, key_sha256)
            now = self._clock()
            worker.expires = now + self.lease_s
            worker.heartbeats += 1
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is not None and job.worker_id == worker_id and job.result is None:
                    job.lease_until = now + self.lease_s

    def live_workers(self, judge_sha256: str | None = None) -> list[WorkerInfo]:
        """Workers alive now (of one judge, when given)."""
        with self._lock:
            self._expire()
            return [
                w
                for w in self._workers.values()
                if judge_sha256 is None or w.judge_sha256 == judge_sha256
            ]

    def describe(self, judge_sha256: str) -> Mapping[str, Any] | None:
        """The judge description a live worker of that sha registered with."""
        for worker in self.live_workers(judge_sha256):
            return worker.description
        return None

    # ---- jobs, worker side -------------------------------------------------------------------

    def pull(
        self, worker_id: str, key_sha256: str, max_jobs: int, wait_s: float = 0.0
    ) -> list[tuple[str, JobSpec]]:
        """Lease up to ``max_jobs`` queued jobs of the worker's judge (fewer when it already
        holds jobs up to its capacity), waiting up to ``wait_s`` for one to arrive."""
        deadline = self._clock() + max(0.0, wait_s)
        with self._lock:
            while True:
                self._expire()
                worker = self._worker(worker_id, key_sha256)
                now = self._clock()
                worker.expires = max(worker.expires, now + self.lease_s)
                room = min(max(1, max_jobs), worker.capacity - len(worker.jobs))
                taken = self._take(worker, room, now) if room > 0 else []
                remaining = deadline - self._clock()
                if taken or remaining <= 0:
                    return taken
                # Bounded waits: a lease may lapse meanwhile and requeue a job for us.
                self._lock.wait(min(remaining, self.heartbeat_interval_s))

    def _take(self, worker: WorkerInfo, room: int, now: float) -> list[tuple[str, JobSpec]]:
        taken: list[tuple[str, JobSpec]] = []
        skipped: list[str] = []
        while self._queue and len(taken) < room:
            job_id = self._queue.popleft()
            job = self._jobs.get(job_id)
            if job is None or job.result is not None or job.worker_id is not None:
                continue
            if job.spec.judge_sha256 != worker.judge_sha256 or job.spec.tenant != worker.tenant:
                skipped.append(job_id)
                continue
            job.worker_id = worker.worker_id
            job.lease_until = now + self.lease_s
            job.attempts += 1
            worker.jobs.add(job_id)
            taken.append((job_id, job.spec))
        self._queue.extendleft(reversed(skipped))
        return taken

    def submit_result(self, key_sha256: str, result: JobResult) -> bool:
        """Record a worker's result. True when accepted; False for a duplicate (the job was
        answered before) or a job that is gone (its caller gave up). AuthError for an
        unknown worker or one whose judge is not the job's."""
        with self._lock:
            self._expire()
            worker = self._worker(result.worker_id, key_sha256)
            worker.expires = self._clock() + self.lease_s
            worker.jobs.discard(result.job_id)
            job = self._jobs.get(result.job_id)
            if job is None or job.result is not None:
                return False
            if job.spec.judge_sha256 != worker.judge_sha256 or job.spec.tenant != worker.tenant:
                raise AuthError(f"worker {worker.worker_id} may not answer job {job.job_id}")
            if not result.error and len(result.scores) != job.spec.rows:
                raise InvalidInputError(
                    f"job {job.job_id}: {len(result.scores)} scores for {job.spec.rows} rows"
                )
            job.result = result
            worker.completed += 1
            if job.worker_id is not None and job.worker_id != worker.worker_id:
                holder = self._workers.get(job.worker_id)
                if holder is not None:
                    holder.jobs.discard(job.job_id)
            job.done.set()
            self._lock.notify_all()
            return True

    # ---- jobs, caller side -------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        """Queue a job; returns its id."""
        with self._lock:
            job_id = f"j-{next(self._ids)}-{secrets.token_hex(4)}"
            self._jobs[job_id] = _Job(job_id, spec)
            self._queue.append(job_id)
            self._lock.notify_all()
            return job_id

    def wait(self, job_ids: Sequence[str], timeout: float) -> list[JobResult]:
        """Results of ``job_ids`` in order, waiting up to ``timeout`` seconds in all.

        JudgeUnavailableError when the deadline passes first (the jobs are withdrawn, so a
        late result is dropped); JudgeError when a worker reported that its judge failed.
        """
        deadline = self._clock() + timeout
        try:
            with self._lock:
                while True:
                    self._expire()
                    pending = [j for j in job_ids if self._jobs[j].result is None]
                    if not pending:
                        break
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        raise self._unavailable(self._jobs[pending[0]].spec, len(pending))
                    self._lock.wait(min(remaining, self.heartbeat_interval_s))
                results = [r for j in job_ids if (r := self._jobs[j].result) is not None]
        finally:
            self.forget(job_ids)
        for r in results:
            if r.error:
                raise JudgeError(f"worker {r.worker_id} failed job {r.job_id}: {r.error}")
        return results

    def _unavailable(self, spec: JobSpec, pending: int) -> JudgeUnavailableError:
        live = [
            w
            for w in self._workers.values()
            if w.judge_sha256 == spec.judge_sha256 and w.tenant == spec.tenant
        ]
        why = (
            f"{len(live)} live worker(s) did not finish in time"
            if live
            else f"no live worker of tenant {spec.tenant!r} runs this judge"
        )
        return JudgeUnavailableError(
            f"judge {spec.judge_sha256[:12]}: {pending} job(s) unanswered; {why}"
        )

    def forget(self, job_ids: Sequence[str]) -> None:
        """Withdraw jobs (answered or abandoned)."""
        with self._lock:
            for job_id in job_ids:
                job = self._jobs.pop(job_id, None)
                if job is not None and job.worker_id is not None:
                    holder = self._workers.get(job.worker_id)
                    if holder is not None:
                        holder.jobs.discard(job_id)

    def run(self, specs: Sequence[JobSpec], timeout: float) -> list[JobResult]:
        """Submit jobs and wait for all of them."""
        return self.wait([self.submit(s) for s in specs], timeout)

    # ---- expiry ------------------------------------------------------------------------------

    def _expire(self) -> None:
        """Drop dead workers and requeue every job whose lease lapsed (caller holds the lock)."""
        now = self._clock()
        for worker_id in [w for w, info in self._workers.items() if info.expires <= now]:
            del self._workers[worker_id]
        requeued = False
        for job in self._jobs.values():
            if job.result is None and job.worker_id is not None:
                holder = self._workers.get(job.worker_id)
                if holder is None or job.lease_until <= now:
                    if holder is not None:
                        holder.jobs.discard(job.job_id)
                    job.worker_id = None
                    # Front of the queue: a retried job has waited longest.
                    self._queue.appendleft(job.job_id)
                    self.retried += 1
                    requeued = True
        if requeued:
            self._lock.notify_all()

    def stats(self) -> dict[str, int]:
        """Counters for metrics and tests."""
        with self._lock:
            self._expire()
            return {
                "workers": len(self._workers),
                "queued": sum(
                    1 for j in self._jobs.values() if j.result is None and j.worker_id is None
                ),
                "leased": sum(
                    1 for j in self._jobs.values() if j.result is None and j.worker_id is not None
                ),
                "retried": self.retried,
            }
