"""The judge-worker job queue's rows (``judge_jobs``): submit or attach, claim, renew, complete,
withdraw, retention.

A job's id is its content's (``relgate.app.jobs`` hashes tenant, judge and canonical spec), so a
batch resubmitted after a restart finds its row again, and a result computed meanwhile. Claims
never hand one job to two workers at once:

- PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks the oldest claimable rows of the
  tenant and judge, so concurrent claimers (threads, or control-plane replicas on one database)
  take disjoint rows without waiting on each other; the ``UPDATE`` follows in the same
  transaction. A completion locks its row (``FOR UPDATE``) so the first result wins.
- SQLite: every write transaction holds the database's write lock (``BEGIN IMMEDIATE``, and the
  process's write lock in front of it, ``relgate.store.db``): claims and completions are simply
  serialized.

Submissions of one tenant are serialized (an advisory lock per tenant on PostgreSQL) so the cap on
its pending jobs holds across replicas. Times are wall-clock seconds supplied by the caller
(``lease_until`` is compared across replicas). The store keeps and hands out JSON text; what a
spec or result means, who may answer, and when to give up are the caller's (``relgate.app``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from relgate.store import schema
from relgate.store.db import Database

__all__ = ["DONE", "LEASED", "QUEUED", "ClaimedJob", "JobRecords", "JobRow", "NewJob"]

QUEUED, LEASED, DONE = "queued", "leased", "done"


_J = schema.judge_jobs
_c = _J.c


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to store: its id (its content's sha256), judge, spec (JSON text) and rows."""

    job_id: str
    judge_sha256: str
    spec: str
    rows: int


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a claim leased: its id, spec (JSON text) and attempts including this one."""

    job_id: str
    spec: str
    attempts: int


@dataclass(frozen=True, slots=True)
class JobRow:
    """What a completion checks before it writes (the row as stored)."""

    job_id: str
    tenant: str
    judge_sha256: str
    rows: int
    state: str
    worker_id: str | None


def _claimable(now: float) -> sa.ColumnElement[bool]:
    """Queued, or leased to a worker whose lease lapsed (at-least-once delivery)."""
    return sa.or_(_c.state == QUEUED, sa.and_(_c.state == LEASED, _c.lease_until <= now))


class JobRecords:
    """The ``judge_jobs`` table (see the module docstring); thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def submit(self, tenant: str, jobs: Sequence[NewJob], *, now: float, max_pending: int) -> bool:
        """Store ``jobs`` (all of ``tenant``) as queued in one transaction, attaching to those
        stored already (any state: a done job's result is reused) and touching them so
        retention keeps them. All or nothing: False, and nothing written, when the new ones
        would take the tenant's unfinished jobs over ``max_pending``."""
        unique = {j.job_id: j for j in jobs}
        if not unique:
            return True
        with self.db.transaction(lock_key=f"judge_jobs/{tenant}") as conn:
            stored = set(
                conn.execute(sa.select(_c.job_id).where(_c.job_id.in_(list(unique)))).scalars()
            )
            fresh = [j for job_id, j in unique.items() if job_id not in stored]
            if fresh:
                pending = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(_J)
                    .where(_c.tenant == tenant, _c.state != DONE)
                ).scalar_one()
                if pending + len(fresh) > max_pending:
                    return False
                conn.execute(
                    sa.insert(_J),
                    [
                        {
                            "job_id": j.job_id,
                            "tenant": tenant,
                            "judge_sha256": j.judge_sha256,
                            "spec": j.spec,
                            "rows": j.rows,
                            "state": QUEUED,
                            "worker_id": None,
                            "lease_until": 0.0,
                            "attempts": 0,
                            "result": None,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for j in fresh
                    ],
                )
            if stored:
                conn.execute(
                    sa.update(_J).where(_c.job_id.in_(list(stored))).values(updated_at=now)
                )
            return True

    def claimable(self, *, tenant: str, judge_sha256: str, now: float) -> bool:
        """Whether a claim would find a job now (a read: idle long polls take no write lock)."""
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(_c.job_id)
                .where(_c.tenant == tenant, _c.judge_sha256 == judge_sha256, _claimable(now))
                .limit(1)
            ).first()
        return found is not None

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
        """Lease to ``worker_id`` the oldest claimable jobs of its tenant and judge: at most
        ``limit``, and no more than keep its unexpired leases within ``capacity``."""
        with self.db.transaction(lock_key=None) as conn:
            held = conn.execute(
                sa.select(sa.func.count())
                .select_from(_J)
                .where(_c.worker_id == worker_id, _c.state == LEASED, _c.lease_until > now)
            ).scalar_one()
            room = min(limit, capacity - held)
            if room <= 0:
                return []
            picked = conn.execute(
                sa.select(_c.job_id, _c.spec, _c.attempts)
                .where(_c.tenant == tenant, _c.judge_sha256 == judge_sha256, _claimable(now))
                .order_by(_c.created_at, _c.job_id)
                .limit(room)
                # Rendered on PostgreSQL only; SQLite's writer already holds the write lock.
                .with_for_update(skip_locked=True)
            ).all()
            if not picked:
                return []
            conn.execute(
                sa.update(_J)
                .where(_c.job_id.in_([r.job_id for r in picked]))
                .values(
                    state=LEASED,
                    worker_id=worker_id,
                    lease_until=now + lease_s,
                    attempts=_c.attempts + 1,
                    updated_at=now,
                )
            )
            return [ClaimedJob(r.job_id, r.spec, r.attempts + 1) for r in picked]

    def renew(self, worker_id: str, job_ids: Sequence[str], *, lease_until: float) -> int:
        """Extend the leases ``worker_id`` still holds among ``job_ids``; how many."""
        if not job_ids:
            return 0
        with self.db.transaction(lock_key=None) as conn:
            return conn.execute(
                sa.update(_J)
                .where(_c.job_id.in_(list(job_ids)), _c.worker_id == worker_id, _c.state == LEASED)
                .values(lease_until=lease_until)
            ).rowcount

    def release(self, worker_ids: Sequence[str], *, now: float) -> int:
        """Requeue every job leased to one of ``worker_ids`` (dead workers); how many."""
        if not worker_ids:
            return 0
        with self.db.transaction(lock_key=None) as conn:
            return conn.execute(
                sa.update(_J)
                .where(_c.worker_id.in_(list(worker_ids)), _c.state == LEASED)
                .values(state=QUEUED, worker_id=None, lease_until=0.0, updated_at=now)
            ).rowcount

    def complete(
        self, job_id: str, result: str, *, now: float, check: Callable[[JobRow], None]
    ) -> bool:
        """Write the first result of ``job_id``. False when the job is done already or gone;
        ``check`` sees the row first and raises to refuse the write."""
        with self.db.transaction(lock_key=None) as conn:
            row = conn.execute(
                sa.select(_c.job_id, _c.tenant, _c.judge_sha256, _c.rows, _c.state, _c.worker_id)
                .where(_c.job_id == job_id)
                .with_for_update()
            ).one_or_none()
            if row is None or row.state == DONE:
                return False
            check(JobRow(*row))
            conn.execute(
                sa.update(_J)
                .where(_c.job_id == job_id)
                # The spec is not kept: the id stands for it, and retention then holds results.
                .values(state=DONE, result=result, spec="", lease_until=0.0, updated_at=now)
            )
            return True

    def results(self, job_ids: Sequence[str]) -> dict[str, str | None]:
        """The result (JSON text) of each stored job among ``job_ids``; None while pending.
        Ids of jobs not stored (withdrawn, deleted by retention) are absent."""
        if not job_ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(_c.job_id, _c.result).where(_c.job_id.in_(sorted(set(job_ids))))
            ).all()
        return {r.job_id: r.result for r in rows}

    def withdraw(self, job_ids: Sequence[str], *, states: Sequence[str] = (QUEUED,)) -> int:
        """Delete those of ``job_ids`` in one of ``states`` (by default the still-queued jobs
        a caller abandoned: a leased job stays, so the result its worker is computing is kept
        for a retry); how many."""
        if not job_ids:
            return 0
        with self.db.transaction(lock_key=None) as conn:
            return conn.execute(
                sa.delete(_J).where(_c.job_id.in_(list(job_ids)), _c.state.in_(list(states)))
            ).rowcount

    def prune(self, *, now: float, done_ttl_s: float, abandon_ttl_s: float, max_done: int) -> int:
        """Retention: delete done jobs untouched for ``done_ttl_s`` and, beyond ``max_done``,
        the oldest done ones; and pending jobs nobody submitted again for ``abandon_ttl_s``."""
        with self.db.transaction(lock_key=None) as conn:
            deleted = conn.execute(
                sa.delete(_J).where(
                    sa.or_(
                        sa.and_(_c.state == DONE, _c.updated_at < now - done_ttl_s),
                        sa.and_(_c.state != DONE, _c.updated_at < now - abandon_ttl_s),
                    )
                )
            ).rowcount
            done = conn.execute(
                sa.select(sa.func.count()).select_from(_J).where(_c.state == DONE)
            ).scalar_one()
            if done > max_done:
                oldest = (
                    sa.select(_c.job_id)
                    .where(_c.state == DONE)
                    .order_by(_c.updated_at, _c.job_id)
                    .limit(done - max_done)
                    .scalar_subquery()
                )
                deleted += conn.execute(sa.delete(_J).where(_c.job_id.in_(oldest))).rowcount
            return deleted

    def counts(self, *, now: float) -> Mapping[str, int]:
        """Jobs claimable now (``queued``), leased with an unexpired lease, and done."""
        live = sa.and_(_c.state == LEASED, _c.lease_until > now)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    sa.func.count().filter(sa.and_(_c.state != DONE, sa.not_(live))),
                    sa.func.count().filter(live),
                    sa.func.count().filter(_c.state == DONE),
                )
            ).one()
        return {QUEUED: row[0], LEASED: row[1], DONE: row[2]}
