"""Where the dispatcher keeps judge jobs: the contract (``JobQueue``) and its in-memory form.

``relgate.store.jobs.JobRecords`` is the durable one (a ``judge_jobs`` table, shared by every
control-plane replica on the store); ``MemoryJobQueue`` keeps the same rows in a dict for a
dispatcher with no store (tests, ``relgate bench workers``, the benchmark's anchor). Both claim
the oldest claimable job first, write a job's first result only, and count a worker's unexpired
leases against its capacity.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from relgate.store.jobs import DONE, LEASED, QUEUED, ClaimedJob, JobRow, NewJob

__all__ = ["JobQueue", "MemoryJobQueue"]


class JobQueue(Protocol):
    """What the dispatcher needs of a job queue (times are the dispatcher clock's seconds)."""

    def submit(
        self, tenant: str, jobs: Sequence[NewJob], *, now: float, max_pending: int
    ) -> bool: ...

    def claimable(self, *, tenant: str, judge_sha256: str, now: float) -> bool: ...

    def claim(
        self,
        *,
        tenant: str,
        judge_sha256: str,
        worker_id: str,
        capacity: int,
        limit: int,
        now: float,
        lease_s: float,
    ) -> list[ClaimedJob]: ...

    def renew(self, worker_id: str, job_ids: Sequence[str], *, lease_until: float) -> int: ...

    def release(self, worker_ids: Sequence[str], *, now: float) -> int: ...

    def complete(
        self, job_id: str, result: str, *, now: float, check: Callable[[JobRow], None]
    ) -> bool: ...

    def results(self, job_ids: Sequence[str]) -> dict[str, str | None]: ...

    def withdraw(self, job_ids: Sequence[str], *, states: Sequence[str] = (QUEUED,)) -> int: ...

    def prune(
        self, *, now: float, done_ttl_s: float, abandon_ttl_s: float, max_done: int
    ) -> int: ...

    def counts(self, *, now: float) -> Mapping[str, int]: ...


@dataclass
class _Row:
    job_id: str
    tenant: str
    judge_sha256: str
    spec: str
    rows: int
    created_at: float
    updated_at: float
    state: str = QUEUED
    worker_id: str | None = None
    lease_until: float = 0.0
    attempts: int = 0
    result: str | None = None

    def claimable(self, now: float) -> bool:
        return self.state == QUEUED or (self.state == LEASED and self.lease_until <= now)


class MemoryJobQueue:
    """``JobQueue`` in a dict under one lock (lost with the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Insertion order is submission order: the oldest claimable job comes first.
        self._rows: dict[str, _Row] = {}

    def submit(self, tenant: str, jobs: Sequence[NewJob], *, now: float, max_pending: int) -> bool:
        with self._lock:
            unique = {j.job_id: j for j in jobs}
            fresh = [j for job_id, j in unique.items() if job_id not in self._rows]
            pending = sum(1 for r in self._rows.values() if r.tenant == tenant and r.state != DONE)
            if fresh and pending + len(fresh) > max_pending:
                return False
            for job_id in unique:
                if (row := self._rows.get(job_id)) is not None:
                    row.updated_at = now
            for j in fresh:
                self._rows[j.job_id] = _Row(
                    j.job_id, tenant, j.judge_sha256, j.spec, j.rows, now, now
                )
            return True

    def claimable(self, *, tenant: str, judge_sha256: str, now: float) -> bool:
        with self._lock:
            return any(
                r.tenant == tenant and r.judge_sha256 == judge_sha256 and r.claimable(now)
                for r in self._rows.values()
            )

    def claim(
        self,
        *,
        tenant: str,
        judge_sha256: str,
        worker_id: str,
        capacity: int,
        limit: int,
        now: float,
        lease_s: float,
    ) -> list[ClaimedJob]:
        with self._lock:
            held = sum(
                1
                for r in self._rows.values()
                if r.worker_id == worker_id and r.state == LEASED and r.lease_until > now
            )
            room = min(limit, capacity - held)
            if room <= 0:
                return []
            mine = [
                r
                for r in self._rows.values()
                if r.tenant == tenant and r.judge_sha256 == judge_sha256 and r.claimable(now)
            ]
            taken: list[ClaimedJob] = []
            for r in sorted(mine, key=lambda r: (r.created_at, r.job_id))[:room]:
                r.state, r.worker_id, r.lease_until = LEASED, worker_id, now + lease_s
                r.attempts += 1
                r.updated_at = now
                taken.append(ClaimedJob(r.job_id, r.spec, r.attempts))
            return taken

    def renew(self, worker_id: str, job_ids: Sequence[str], *, lease_until: float) -> int:
        with self._lock:
            n = 0
            for job_id in job_ids:
                r = self._rows.get(job_id)
                if r is not None and r.worker_id == worker_id and r.state == LEASED:
                    r.lease_until = lease_until
                    n += 1
            return n

    def release(self, worker_ids: Sequence[str], *, now: float) -> int:
        dead = set(worker_ids)
        with self._lock:
            n = 0
            for r in self._rows.values():
                if r.state == LEASED and r.worker_id in dead:
                    r.state, r.worker_id, r.lease_until, r.updated_at = QUEUED, None, 0.0, now
                    n += 1
            return n

    def complete(
        self, job_id: str, result: str, *, now: float, check: Callable[[JobRow], None]
    ) -> bool:
        with self._lock:
            r = self._rows.get(job_id)
            if r is None or r.state == DONE:
                return False
            check(JobRow(r.job_id, r.tenant, r.judge_sha256, r.rows, r.state, r.worker_id))
            r.state, r.result, r.lease_until, r.updated_at = DONE, result, 0.0, now
            r.spec = ""  # the id stands for it
            return True

    def results(self, job_ids: Sequence[str]) -> dict[str, str | None]:
        with self._lock:
            return {j: r.result for j in job_ids if (r := self._rows.get(j)) is not None}

    def withdraw(self, job_ids: Sequence[str], *, states: Sequence[str] = (QUEUED,)) -> int:
        with self._lock:
            gone = [j for j in set(job_ids) if (r := self._rows.get(j)) and r.state in states]
            for job_id in gone:
                del self._rows[job_id]
            return len(gone)

    def prune(self, *, now: float, done_ttl_s: float, abandon_ttl_s: float, max_done: int) -> int:
        with self._lock:
            before = len(self._rows)
            self._rows = {
                j: r
                for j, r in self._rows.items()
                if r.updated_at >= now - (done_ttl_s if r.state == DONE else abandon_ttl_s)
            }
            done = sorted(
                (r for r in self._rows.values() if r.state == DONE),
                key=lambda r: (r.updated_at, r.job_id),
            )
            for r in done[: max(0, len(done) - max_done)]:
                del self._rows[r.job_id]
            return before - len(self._rows)

    def counts(self, *, now: float) -> Mapping[str, int]:
        with self._lock:
            out = {QUEUED: 0, LEASED: 0, DONE: 0}
            for r in self._rows.values():
                live = r.state == LEASED and r.lease_until > now
                out[LEASED if live else DONE if r.state == DONE else QUEUED] += 1
            return out
