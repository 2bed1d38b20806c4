"""The control plane's side of judge workers: who is alive, which jobs wait, who holds which.

A worker registers with its judge identity (``judge_sha256``) under its own API key, then
heartbeats and pulls jobs. The dispatcher

- keeps a registry of live workers; a worker silent for ``lease_s`` is dead, and every job it
  held goes back to the queue (at-least-once delivery);
- hands a job only to a worker whose judge sha equals the job's: a score from another judge is
  a score of another statistic, so it must never reach a gate; and only to a worker of the
  job's tenant (its key's), since a job carries that tenant's answers and references;
- accepts a result only from a registered worker (under the key it registered with) whose
  judge is the job's, and only once per job: a retried job may be answered twice (the dead
  worker was only slow), and the first answer wins;
- lets callers (``RemoteJudge``) wait for results with a deadline.

Where things live. The jobs are in a ``JobQueue``: the store's ``judge_jobs`` table once the
server binds the dispatcher to its store (``bind``; ``relgate.store.jobs``), else a dict
(``MemoryJobQueue``: tests, benchmarks). In the store, queued work survives a control-plane
restart, and every replica on one PostgreSQL serves one queue: a job submitted on replica A is
pulled by a worker connected to replica B (claims use ``FOR UPDATE SKIP LOCKED``; on SQLite the
single writer serializes them). A job's id is the sha256 of its canonical spec (which names
tenant and judge), so a batch resubmitted after a restart attaches to the same row and reuses a
result computed meanwhile.

The worker registry stays in memory, per replica, on purpose: a worker talks to one replica,
its liveness is a heartbeat that replica sees, and the recovery the store must carry is the
job's, not the worker's. A job's lease is a wall-clock ``lease_until`` in its row, extended by
the heartbeats of the worker holding it; when the worker dies its replica requeues its jobs at
once, and when the replica dies too the leases simply lapse and any replica hands the jobs out
again. A worker whose replica went away registers again elsewhere (``AuthError`` says so).
Clocks decide only liveness here: a late result is still accepted once, as before.

Waiters learn of a result from an in-process event when it arrived on the same replica, and by
polling the rows every ``poll_s`` otherwise (idle long polls of workers likewise), so a result
delivered to another replica is seen within ``poll_s``. The judge description that a worker
registered rides along with its results, so a replica that never saw the worker can still
describe the judge a gate used.

Bounded: a spec over ``max_spec_bytes`` is refused (``InvalidInputError``); a tenant with
``max_pending`` unfinished jobs gets ``JudgeUnavailableError`` (the gate fails the call, a
monitor reads it as inconclusive). A caller that gives up withdraws its still-queued jobs; done
jobs are kept ``done_ttl_s`` (at most ``max_done``) for a retry to reuse, and unfinished jobs
nobody submitted again for ``abandon_ttl_s`` are deleted (``QueueLimits``).
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relgate.app.job_queue import JobQueue, MemoryJobQueue
from relgate.canonical import canonical_json, sha256_hex
from relgate.errors import (
    AuthError,
    InvalidInputError,
    InvalidTransitionError,
    JudgeError,
    JudgeUnavailableError,
)
from relgate.judge.jobs import JobResult, JobSpec
from relgate.store.jobs import DONE, LEASED, QUEUED, JobRow, NewJob

__all__ = ["Dispatcher", "QueueLimits", "WorkerInfo", "decode_spec", "encode_spec"]


@dataclass(frozen=True)
class QueueLimits:
    """Bounds on the job queue (see the module docstring)."""

    max_spec_bytes: int = 4 * 1024 * 1024  # under the server's 5 MiB message cap
    max_pending: int = 1_000  # unfinished jobs per tenant (a 10,000-row gate is 40 jobs)
    done_ttl_s: float = 3600.0
    max_done: int = 10_000  # done jobs keep their result only, not their spec
    abandon_ttl_s: float = 3600.0
    prune_every_s: float = 30.0


@dataclass
class WorkerInfo:
    """A registered worker (of this replica)."""

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
    completed: int = 0
    heartbeats: int = 0


def encode_spec(spec: JobSpec) -> str:
    """A job spec as canonical JSON (RFC 8785): its sha256 is the job's id."""
    return canonical_json(
        {
            "kind": spec.kind,
            "tenant": spec.tenant,
            "judge_sha256": spec.judge_sha256,
            "answers": list(spec.answers),
            "references": list(spec.references),
            "replay": dict(spec.replay) if spec.replay is not None else None,
        }
    ).decode()


def decode_spec(text: str) -> JobSpec:
    """The inverse of ``encode_spec``."""
    d = json.loads(text)
    return JobSpec(
        d["kind"],
        d["judge_sha256"],
        tuple(d["answers"]),
        tuple(d["references"]),
        replay=d["replay"],
        tenant=d["tenant"],
    )


def _encode_result(result: JobResult, worker: WorkerInfo) -> str:
    return json.dumps(
        {
            "worker_id": result.worker_id,
            "scores": list(result.scores),
            "answers": list(result.answers),
            "error": result.error,
            "seconds": result.seconds,
            "tokens": result.tokens,
            "judge_sha256": worker.judge_sha256,
            "judge": dict(worker.description),
        }
    )


class Dispatcher:
    """Registry of live workers, over a job queue (thread-safe)."""

    def __init__(
        self,
        *,
        lease_s: float = 10.0,
        heartbeat_interval_s: float | None = None,
        clock: Callable[[], float] = time.time,
        queue: JobQueue | None = None,
        poll_s: float = 0.25,
        limits: QueueLimits | None = None,
    ) -> None:
        if lease_s <= 0:
            raise InvalidInputError(f"worker lease must be positive, got {lease_s}")
        if poll_s <= 0:
            raise InvalidInputError(f"job poll interval must be positive, got {poll_s}")
        self.lease_s = lease_s
        self.heartbeat_interval_s = heartbeat_interval_s or lease_s / 4
        self.poll_s = poll_s
        self.limits = limits or QueueLimits()
        self._clock = clock
        self._queue: JobQueue = queue if queue is not None else MemoryJobQueue()
        self._bindable = queue is None
        self._lock = threading.Condition()
        self._generation = 0  # bumped on every local submit and result (lost-wakeup guard)
        self._workers: dict[str, WorkerInfo] = {}
        # Specs of jobs submitted here and not yet waited out (with a count of callers): to
        # submit a job again when retention or another caller's withdrawal removed its row.
        self._specs: dict[str, tuple[JobSpec, int]] = {}
        # Judge descriptions seen in results (workers of other replicas register there).
        self._descriptions: dict[str, Mapping[str, Any]] = {}
        self._pruned = -math.inf
        self.retried = 0

    @property
    def bindable(self) -> bool:
        """Built without a queue and nothing submitted yet: ``bind`` may still choose one."""
        return self._bindable

    def bind(self, queue: JobQueue) -> None:
        """Keep jobs in ``queue`` from now on (the server binds its store's ``judge_jobs``)."""
        with self._lock:
            if not self._bindable:
                raise InvalidTransitionError("the dispatcher's job queue is chosen already")
            self._queue = queue
            self._bindable = False

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
        with self._lock:
            self._workers[worker.worker_id] = worker
        self._expire()
        return worker

    def _touch(self, worker_id: str, key_sha256: str) -> WorkerInfo:
        """The live worker ``worker_id`` of ``key_sha256``, its life extended by a lease."""
        self._expire()
        with self._lock:
            worker = self._workers.get(worker_id)
            # Same error for a dead, unknown or foreign worker id: none of them may act.
            if worker is None or worker.key_sha256 != key_sha256:
                raise AuthError(f"unknown worker {worker_id!r}: register (again) with this key")
            worker.expires = max(worker.expires, self._clock() + self.lease_s)
            return worker

    def heartbeat(self, worker_id: str, key_sha256: str, job_ids: Sequence[str] = ()) -> None:
        """Keep a worker alive, and the leases of the jobs it names that it still holds."""
        worker = self._touch(worker_id, key_sha256)
        with self._lock:
            worker.heartbeats += 1
        if job_ids:
            self._queue.renew(worker_id, list(job_ids), lease_until=self._clock() + self.lease_s)

    def live_workers(self, judge_sha256: str | None = None) -> list[WorkerInfo]:
        """Workers of this replica alive now (of one judge, when given)."""
        self._expire()
        with self._lock:
            return [
                w
                for w in self._workers.values()
                if judge_sha256 is None or w.judge_sha256 == judge_sha256
            ]

    def describe(self, judge_sha256: str) -> Mapping[str, Any] | None:
        """The judge description a live worker of that sha registered with (or, for a worker
        of another replica, that came with one of its results)."""
        for worker in self.live_workers(judge_sha256):
            return worker.description
        with self._lock:
            return self._descriptions.get(judge_sha256)

    # ---- jobs, worker side -------------------------------------------------------------------

    def pull(
        self, worker_id: str, key_sha256: str, max_jobs: int, wait_s: float = 0.0
    ) -> list[tuple[str, JobSpec]]:
        """Lease up to ``max_jobs`` queued jobs of the worker's tenant and judge (fewer when it
        already holds jobs up to its capacity), waiting up to ``wait_s`` for one to arrive."""
        deadline = self._clock() + max(0.0, wait_s)
        while True:
            generation = self._generation
            worker = self._touch(worker_id, key_sha256)
            now = self._clock()
            mine = {"tenant": worker.tenant, "judge_sha256": worker.judge_sha256}
            if self._queue.claimable(**mine, now=now):
                claimed = self._queue.claim(
                    **mine,
                    worker_id=worker_id,
                    capacity=worker.capacity,
                    limit=max(1, max_jobs),
                    now=now,
                    lease_s=self.lease_s,
                )
                if claimed:
                    with self._lock:
                        self.retried += sum(1 for c in claimed if c.attempts > 1)
                    return [(c.job_id, decode_spec(c.spec)) for c in claimed]
            remaining = deadline - self._clock()
            if remaining <= 0:
                return []
            # Bounded waits: a job may arrive on another replica, or a lease lapse meanwhile.
            self._sleep(generation, min(remaining, self.poll_s))

    def submit_result(self, key_sha256: str, result: JobResult) -> bool:
        """Record a worker's result. True when accepted; False for a duplicate (the job was
        answered before) or a job that is gone (its caller gave up). AuthError for an
        unknown worker or one whose judge or tenant is not the job's."""
        worker = self._touch(result.worker_id, key_sha256)

        def check(job: JobRow) -> None:
            if job.judge_sha256 != worker.judge_sha256 or job.tenant != worker.tenant:
                raise AuthError(f"worker {worker.worker_id} may not answer job {job.job_id}")
            if not result.error and len(result.scores) != job.rows:
                raise InvalidInputError(
                    f"job {job.job_id}: {len(result.scores)} scores for {job.rows} rows"
                )

        accepted = self._queue.complete(
            result.job_id, _encode_result(result, worker), now=self._clock(), check=check
        )
        if accepted:
            with self._lock:
                worker.completed += 1
            self._notify()
        return accepted

    # ---- jobs, caller side -------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        """Queue a job, or attach to the identical one queued (or answered) before; its id."""
        return self.submit_all([spec])[0]

    def submit_all(self, specs: Sequence[JobSpec]) -> list[str]:
        """Queue jobs (one transaction per tenant: all of a tenant's or none); their ids."""
        job_ids = self._put(specs)
        with self._lock:
            self._bindable = False
            for job_id, spec in zip(job_ids, specs, strict=True):
                held = self._specs.get(job_id)
                self._specs[job_id] = (spec, (held[1] if held else 0) + 1)
        self._notify()
        return job_ids

    def _put(self, specs: Sequence[JobSpec]) -> list[str]:
        job_ids: list[str] = []
        by_tenant: dict[str, list[NewJob]] = {}
        for spec in specs:
            text = encode_spec(spec)
            data = text.encode()
            if len(data) > self.limits.max_spec_bytes:
                raise InvalidInputError(
                    f"a judge job of {len(data)} bytes is over the"
                    f" {self.limits.max_spec_bytes}-byte cap: score fewer rows per job"
                    " (batch_rows)"
                )
            job_ids.append(sha256_hex(data))
            by_tenant.setdefault(spec.tenant, []).append(
                NewJob(job_ids[-1], spec.judge_sha256, text, spec.rows)
            )
        now = self._clock()
        self._prune(now)
        for tenant, jobs in by_tenant.items():
            if not self._queue.submit(tenant, jobs, now=now, max_pending=self.limits.max_pending):
                raise JudgeUnavailableError(
                    f"tenant {tenant!r}: {len(jobs)} more judge job(s) would pass the cap of"
                    f" {self.limits.max_pending} unfinished ones: its workers are not keeping up"
                )
        return job_ids

    def wait(self, job_ids: Sequence[str], timeout: float) -> list[JobResult]:
        """Results of ``job_ids`` in order, waiting up to ``timeout`` seconds in all.

        JudgeUnavailableError when the deadline passes first (the jobs still queued are
        withdrawn); JudgeError when a worker reported that its judge failed (that answer is
        dropped, so the same batch submitted again is tried again).
        """
        deadline = self._clock() + timeout
        try:
            while True:
                generation = self._generation
                found = self._queue.results(job_ids)
                missing = [j for j in dict.fromkeys(job_ids) if j not in found]
                if missing:
                    self._resubmit(missing)
                    continue
                pending = [j for j in dict.fromkeys(job_ids) if found[j] is None]
                if not pending:
                    break
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self._queue.withdraw(pending)
                    raise self._unavailable(pending)
                self._sleep(generation, min(remaining, self.poll_s))
        finally:
            self._release(job_ids)
        results = [self._decode_result(j, found[j]) for j in job_ids]
        failed = [r for r in results if r.error]
        if failed:
            self._queue.withdraw([r.job_id for r in failed], states=(DONE,))
            r = failed[0]
            raise JudgeError(f"worker {r.worker_id} failed job {r.job_id}: {r.error}")
        return results

    def _resubmit(self, job_ids: Sequence[str]) -> None:
        """Submit again jobs whose rows went away (retention, or another caller withdrew
        them); JudgeUnavailableError for one this dispatcher never had the spec of."""
        for job_id in job_ids:
            with self._lock:
                held = self._specs.get(job_id)
            if held is None:
                raise JudgeUnavailableError(f"judge job {job_id[:12]} is gone from the queue")
            self._put([held[0]])

    def _decode_result(self, job_id: str, text: str | None) -> JobResult:
        assert text is not None
        d = json.loads(text)
        with self._lock:
            self._descriptions[d["judge_sha256"]] = d["judge"]
        return JobResult(
            job_id=job_id,
            worker_id=d["worker_id"],
            scores=tuple(d["scores"]),
            answers=tuple(d["answers"]),
            error=d["error"],
            seconds=d["seconds"],
            tokens=d["tokens"],
        )

    def _release(self, job_ids: Sequence[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                held = self._specs.pop(job_id, None)
                if held is not None and held[1] > 1:
                    self._specs[job_id] = (held[0], held[1] - 1)

    def _unavailable(self, pending: Sequence[str]) -> JudgeUnavailableError:
        with self._lock:
            held = self._specs.get(pending[0])
            if held is None:
                return JudgeUnavailableError(f"{len(pending)} judge job(s) unanswered in time")
            spec = held[0]
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
            f"judge {spec.judge_sha256[:12]}: {len(pending)} job(s) unanswered; {why}"
        )

    def run(self, specs: Sequence[JobSpec], timeout: float) -> list[JobResult]:
        """Submit jobs and wait for all of them."""
        job_ids = self.submit_all(specs)
        return self.wait(job_ids, timeout)

    # ---- waiting, expiry, retention ----------------------------------------------------------

    def _sleep(self, generation: int, seconds: float) -> None:
        """Wait up to ``seconds`` unless a local submit or result came since ``generation``."""
        with self._lock:
            if self._generation == generation:
                self._lock.wait(seconds)

    def _notify(self) -> None:
        with self._lock:
            self._generation += 1
            self._lock.notify_all()

    def _expire(self) -> None:
        """Drop dead workers of this replica and requeue the jobs they held."""
        now = self._clock()
        with self._lock:
            dead = [w for w, info in self._workers.items() if info.expires <= now]
            for worker_id in dead:
                del self._workers[worker_id]
        if dead and self._queue.release(dead, now=now):
            self._notify()

    def _prune(self, now: float) -> None:
        with self._lock:
            if now - self._pruned < self.limits.prune_every_s:
                return
            self._pruned = now
        self._queue.prune(
            now=now,
            done_ttl_s=self.limits.done_ttl_s,
            abandon_ttl_s=self.limits.abandon_ttl_s,
            max_done=self.limits.max_done,
        )

    def stats(self) -> dict[str, int]:
        """Counters for metrics and tests: this replica's workers, the queue's jobs."""
        self._expire()
        counts = self._queue.counts(now=self._clock())
        with self._lock:
            return {
                "workers": len(self._workers),
                "queued": counts[QUEUED],
                "leased": counts[LEASED],
                "retried": self.retried,
            }
