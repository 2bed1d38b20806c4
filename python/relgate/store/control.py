"""Several control planes on one store: the leader lease, the fencing check every decision
write makes, and a rollout's evidence between two decisions.

The lease (one ``leases`` row per name) says which control plane decides. Its ``epoch`` is a
fencing token: it grows by one at every change of holder. A decision write carries the epoch its
writer believed it held (``Fence``) and ``check_fence`` compares it with the row *inside the
decision's own transaction*, reading the row with ``FOR SHARE`` on PostgreSQL so that a takeover
(``SELECT ... FOR UPDATE`` on the same row) waits for a decision in flight and a decision after
the takeover sees the new epoch. On SQLite every writer holds the database's write lock
(``BEGIN IMMEDIATE``), which orders the two the same way. A deposed leader's write is therefore
refused (``LeaseLostError``) however late it arrives: the guarantee rests on the token, not on
clocks. Clocks only decide *when* a follower may take an expired lease over (liveness).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relgate.errors import InvalidInputError, InvalidTransitionError
from relgate.store import schema
from relgate.store.db import Database

__all__ = ["CONTROL_PLANE_LEASE", "ControlRecords", "Fence", "LeaseLostError", "LeaseState"]

#: The lease the rollout runtime's leader holds.
CONTROL_PLANE_LEASE = "control-plane"


class LeaseLostError(InvalidTransitionError):
    """A write fenced by an epoch that is no longer the lease's (a deposed leader)."""


@dataclass(frozen=True, slots=True)
class Fence:
    """What a leader's writes carry: the lease, its holder and the epoch it was granted."""

    name: str
    holder: str
    epoch: int


@dataclass(frozen=True, slots=True)
class LeaseState:
    """A lease row as read."""

    name: str
    holder: str
    epoch: int
    expires_at: float
    acquired_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (status pages)."""
        return {
            "name": self.name,
            "holder": self.holder,
            "epoch": self.epoch,
            "expires_at": self.expires_at,
            "acquired_at": self.acquired_at,
        }


def check_fence(conn: Connection, fence: Fence | None) -> None:
    """Refuse the caller's transaction unless ``fence`` is still the lease's holder and epoch
    (``None``: an unfenced writer, such as a single-process tool)."""
    if fence is None:
        return
    c = schema.leases.c
    row = conn.execute(
        sa.select(c.holder, c.epoch).where(c.name == fence.name).with_for_update(read=True)
    ).one_or_none()
    if row is None or row.epoch != fence.epoch or row.holder != fence.holder:
        now = "no holder" if row is None else f"epoch {row.epoch} of {row.holder}"
        raise LeaseLostError(
            f"this control plane's lease {fence.name!r} (epoch {fence.epoch}) was taken over "
            f"({now}): the write is refused"
        )


class ControlRecords:
    """The lease and the rollout evidence tables of one ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- the lease -------------------------------------------------------------------

    def acquire(
        self, name: str, holder: str, *, ttl_s: float, now: float
    ) -> tuple[Fence | None, LeaseState]:
        """Take or renew the lease ``name`` for ``holder`` until ``now + ttl_s``.

        Free, expired or already ``holder``'s: granted (``Fence``; a change of holder bumps the
        epoch). Held by another holder and not expired: ``None`` and the row as it stands."""
        if not (0 < ttl_s <= 3600):
            raise InvalidInputError("a lease lasts 0 to 3600 seconds")
        if not holder or len(holder) > 128:
            raise InvalidInputError("a lease holder is 1 to 128 characters")
        c = schema.leases.c
        with self._db.transaction(lock_key=f"lease:{name}") as conn:
            row = conn.execute(
                sa.select(schema.leases).where(c.name == name).with_for_update()
            ).one_or_none()
            if row is None:
                state = LeaseState(name, holder, 1, now + ttl_s, now)
                conn.execute(schema.leases.insert().values(**state.to_dict()))
                return Fence(name, holder, 1), state
            if row.holder == holder:
                state = LeaseState(name, holder, row.epoch, now + ttl_s, row.acquired_at)
            elif row.expires_at <= now:
                state = LeaseState(name, holder, row.epoch + 1, now + ttl_s, now)
            else:
                return None, _state(row)
            conn.execute(
                schema.leases.update()
                .where(c.name == name)
                .values(
                    holder=state.holder,
                    epoch=state.epoch,
                    expires_at=state.expires_at,
                    acquired_at=state.acquired_at,
                )
            )
            return Fence(name, holder, state.epoch), state

    def release(self, fence: Fence) -> bool:
        """Give the lease up now (a clean shutdown: a follower takes over at once instead of
        waiting for the expiry). False when it was no longer ours."""
        c = schema.leases.c
        with self._db.transaction(lock_key=f"lease:{fence.name}") as conn:
            done = conn.execute(
                schema.leases.update()
                .where(c.name == fence.name, c.holder == fence.holder, c.epoch == fence.epoch)
                .values(expires_at=0.0)
            )
            return bool(done.rowcount)

    def lease(self, name: str) -> LeaseState | None:
        """The lease row, if any."""
        with self._db.read() as conn:
            row = conn.execute(
                sa.select(schema.leases).where(schema.leases.c.name == name)
            ).one_or_none()
        return None if row is None else _state(row)

    # ---- rollout evidence between decisions ------------------------------------------

    def record_evidence(
        self,
        *,
        tenant: str,
        rollout_id: str,
        facts: Sequence[tuple[int, dict[str, Any]]],
        fence: Fence | None,
        now: str,
    ) -> None:
        """Persist a rollout's readings and request counts (``(n, fact)``: ``n`` is the fact's
        index in the rollout's fact sequence), fenced like a decision."""
        if not facts:
            return
        with self._db.transaction(lock_key=tenant) as conn:
            check_fence(conn, fence)
            conn.execute(
                schema.rollout_evidence.insert(),
                [
                    {
                        "tenant": tenant,
                        "rollout_id": rollout_id,
                        "n": n,
                        "fact": json.dumps(fact, sort_keys=True, separators=(",", ":")),
                        "epoch": 0 if fence is None else fence.epoch,
                        "created_at": now,
                    }
                    for n, fact in facts
                ],
            )

    def evidence(self, *, tenant: str, rollout_id: str, from_n: int) -> list[dict[str, Any]]:
        """The rollout's evidence facts from index ``from_n`` on, stopping at the first gap."""
        e = schema.rollout_evidence.c
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(e.n, e.fact)
                .where(e.tenant == tenant, e.rollout_id == rollout_id, e.n >= from_n)
                .order_by(e.n)
            ).all()
        out: list[dict[str, Any]] = []
        for row in rows:
            if row.n != from_n + len(out):
                break
            out.append(json.loads(row.fact))
        return out

    def prune_evidence(self, *, tenant: str, rollout_id: str, committed: int) -> None:
        """Forget the evidence a decision has committed as facts (indexes below
        ``committed``)."""
        e = schema.rollout_evidence.c
        with self._db.transaction(lock_key=tenant) as conn:
            conn.execute(
                schema.rollout_evidence.delete().where(
                    e.tenant == tenant, e.rollout_id == rollout_id, e.n < committed
                )
            )

    def version(self) -> tuple[Any, ...]:
        """Changes whenever a receipt, a fact or evidence is written: what a follower polls
        before rebuilding its view."""
        r, f, e = schema.receipts.c, schema.facts.c, schema.rollout_evidence.c
        with self._db.read() as conn:
            return tuple(
                conn.execute(
                    sa.select(
                        sa.select(sa.func.count()).select_from(schema.receipts).scalar_subquery(),
                        sa.select(sa.func.max(r.seq)).scalar_subquery(),
                        sa.select(sa.func.max(f.seq)).scalar_subquery(),
                        sa.select(sa.func.count())
                        .select_from(schema.rollout_evidence)
                        .scalar_subquery(),
                        sa.select(sa.func.max(e.n)).scalar_subquery(),
                    )
                ).one()
            )


def _state(row: Any) -> LeaseState:
    return LeaseState(row.name, row.holder, row.epoch, row.expires_at, row.acquired_at)
