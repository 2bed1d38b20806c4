"""Durable gate runs: a RunGate's request, where it stands, who works on it, and its outcome.

One ``gate_runs`` row per run (migration 0005). A run is ``running`` until its owner marks it
``done`` (with the gate result sha256 and receipt of the ``gate_result`` fact it recorded) or
``failed`` (with the error). Its owner (a server process) beats a heartbeat while it works; a
run whose heartbeat is older than a staleness bound lost its owner (a crash, a restart) and may
be claimed by another (``claim_stale``: a compare-and-set on the owner and heartbeat, so two
claimants never both win). Every write of a run's progress names its owner: a claimed run's
old owner, should it come back, writes nothing.

Every lookup is scoped to a tenant; ``claim_stale`` alone reads across tenants (the leader's
bookkeeping, never a caller's).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from relgate.canonical import canonical_json, sha256_hex
from relgate.errors import InvalidInputError, NotFoundError
from relgate.store import schema
from relgate.store.db import Database, check_name

__all__ = ["RUN_STATES", "GateRunRecords", "GateRunRow"]

RUN_STATES = ("running", "done", "failed")
#: The longest error text a failed run keeps.
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class GateRunRow:
    """A gate run as stored."""

    run_id: str
    tenant: str
    release_sha256: str
    request_sha256: str
    request: dict[str, Any]
    actor: str
    state: str
    answers_sha256: str | None
    stage: str
    done: int
    total: int
    owner: str
    heartbeat_at: float
    attempts: int
    stats: list[dict[str, Any]]
    error: str | None
    gate_result_sha256: str | None
    receipt_sha256: str | None
    created_at: str
    updated_at: str

    @property
    def finished(self) -> bool:
        """Done or failed."""
        return self.state != "running"


def request_sha256(request: Mapping[str, Any]) -> str:
    """The identity of a decoded request (what makes two RunGate calls the same run)."""
    return sha256_hex(canonical_json(dict(request)))


class GateRunRecords:
    """The ``gate_runs`` table of one ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def start(
        self,
        *,
        tenant: str,
        release_sha256: str,
        request: Mapping[str, Any],
        actor: str,
        owner: str,
        wall: float,
    ) -> tuple[GateRunRow, bool]:
        """Record a new run, or find the unfinished run of the same tenant, release and request
        (``(row, False)``: the caller attaches to it instead of starting a second one)."""
        check_name("tenant", tenant)
        check_name("actor", actor)
        digest = request_sha256(request)
        c = schema.gate_runs.c
        with self._db.transaction(lock_key=f"gate-run:{tenant}:{release_sha256}") as conn:
            found = conn.execute(
                sa.select(schema.gate_runs).where(
                    c.tenant == tenant,
                    c.release_sha256 == release_sha256,
                    c.request_sha256 == digest,
                    c.state == "running",
                )
            ).one_or_none()
            if found is not None:
                return _row(found), False
            now = self._db.now()
            values = {
                "run_id": f"gr_{uuid.uuid4().hex[:20]}",
                "tenant": tenant,
                "release_sha256": release_sha256,
                "request_sha256": digest,
                "request": json.dumps(dict(request), sort_keys=True),
                "actor": actor,
                "state": "running",
                "answers_sha256": None,
                "stage": "queued",
                "done": 0,
                "total": 0,
                "owner": owner,
                "heartbeat_at": wall,
                "attempts": 1,
                "stats": "[]",
                "error": None,
                "gate_result_sha256": None,
                "receipt_sha256": None,
                "created_at": now,
                "updated_at": now,
            }
            conn.execute(schema.gate_runs.insert().values(**values))
            return _row(values), True

    def get(self, run_id: str, *, tenant: str) -> GateRunRow:
        """The tenant's run ``run_id`` (another tenant's run is absent, not forbidden)."""
        if not isinstance(run_id, str) or not run_id.startswith("gr_") or len(run_id) > 64:
            raise InvalidInputError(f"gate run id {run_id!r}: expected gr_... (from gate run)")
        c = schema.gate_runs.c
        with self._db.read() as conn:
            row = conn.execute(
                sa.select(schema.gate_runs).where(c.run_id == run_id, c.tenant == tenant)
            ).one_or_none()
        if row is None:
            raise NotFoundError(f"gate run {run_id} not found")
        return _row(row)

    def of_tenant(self, *, tenant: str, release_sha256: str | None = None) -> list[GateRunRow]:
        """The tenant's runs (of one release), oldest first."""
        c = schema.gate_runs.c
        query = sa.select(schema.gate_runs).where(c.tenant == tenant)
        if release_sha256 is not None:
            query = query.where(c.release_sha256 == release_sha256)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(c.created_at, c.run_id)).all()
        return [_row(r) for r in rows]

    def _update(self, run_id: str, owner: str, **values: Any) -> bool:
        """Update the running run if ``owner`` still owns it; False otherwise."""
        c = schema.gate_runs.c
        with self._db.transaction(lock_key=f"gate-run-row:{run_id}") as conn:
            done = conn.execute(
                schema.gate_runs.update()
                .where(c.run_id == run_id, c.owner == owner, c.state == "running")
                .values(updated_at=self._db.now(), **values)
            )
            return bool(done.rowcount)

    def progress(
        self, run_id: str, *, owner: str, stage: str, done: int, total: int, wall: float
    ) -> bool:
        """Where the run stands (and a heartbeat)."""
        return self._update(
            run_id, owner, stage=stage[:32], done=done, total=total, heartbeat_at=wall
        )

    def answers_stored(self, run_id: str, *, owner: str, answers_sha256: str) -> bool:
        """The release's answers are stored (``DATA_DIR/gates/answers``): a resume reads them."""
        return self._update(run_id, owner, answers_sha256=answers_sha256)

    def heartbeat(self, *, owner: str, wall: float) -> int:
        """Beat for every running run of ``owner``; how many there were."""
        c = schema.gate_runs.c
        with self._db.transaction(lock_key="gate-run-heartbeat") as conn:
            done = conn.execute(
                schema.gate_runs.update()
                .where(c.owner == owner, c.state == "running")
                .values(heartbeat_at=wall)
            )
            return int(done.rowcount)

    def finish(
        self,
        run_id: str,
        *,
        owner: str,
        gate_result_sha256: str,
        receipt_sha256: str | None,
        stats: list[dict[str, Any]],
    ) -> bool:
        """Mark the run done with the gate result it recorded."""
        return self._update(
            run_id,
            owner,
            state="done",
            gate_result_sha256=gate_result_sha256,
            receipt_sha256=receipt_sha256,
            stats=json.dumps(stats, sort_keys=True),
        )

    def fail(self, run_id: str, *, owner: str, error: str, stats: list[dict[str, Any]]) -> bool:
        """Mark the run failed with its error."""
        return self._update(
            run_id,
            owner,
            state="failed",
            error=error[:MAX_ERROR_CHARS],
            stats=json.dumps(stats, sort_keys=True),
        )

    def claim_stale(self, *, owner: str, wall: float, stale_s: float) -> list[GateRunRow]:
        """Take over every running run (any tenant) whose heartbeat is older than ``stale_s``:
        its owner is ``owner`` now and its attempt count grows by one."""
        c = schema.gate_runs.c
        claimed: list[GateRunRow] = []
        with self._db.read() as conn:
            stale = conn.execute(
                sa.select(schema.gate_runs).where(
                    c.state == "running", c.heartbeat_at < wall - stale_s, c.owner != owner
                )
            ).all()
        for row in stale:
            with self._db.transaction(lock_key=f"gate-run-row:{row.run_id}") as conn:
                won = conn.execute(
                    schema.gate_runs.update()
                    .where(
                        c.run_id == row.run_id,
                        c.owner == row.owner,
                        c.heartbeat_at == row.heartbeat_at,
                        c.state == "running",
                    )
                    .values(
                        owner=owner,
                        heartbeat_at=wall,
                        attempts=row.attempts + 1,
                        updated_at=self._db.now(),
                    )
                )
                if won.rowcount:
                    fresh = conn.execute(
                        sa.select(schema.gate_runs).where(c.run_id == row.run_id)
                    ).one()
                    claimed.append(_row(fresh))
        return claimed


def _row(row: Any) -> GateRunRow:
    m = row if isinstance(row, Mapping) else row._mapping
    return GateRunRow(
        run_id=m["run_id"],
        tenant=m["tenant"],
        release_sha256=m["release_sha256"],
        request_sha256=m["request_sha256"],
        request=json.loads(m["request"]),
        actor=m["actor"],
        state=m["state"],
        answers_sha256=m["answers_sha256"],
        stage=m["stage"],
        done=int(m["done"]),
        total=int(m["total"]),
        owner=m["owner"],
        heartbeat_at=float(m["heartbeat_at"]),
        attempts=int(m["attempts"]),
        stats=json.loads(m["stats"]),
        error=m["error"],
        gate_result_sha256=m["gate_result_sha256"],
        receipt_sha256=m["receipt_sha256"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )
