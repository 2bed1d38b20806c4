"""The store's database: one engine, serialized write transactions, the store clock.

Writers are serialized per key before they read anything they decide on (SQLite: ``BEGIN
IMMEDIATE``, which takes the database's write lock; PostgreSQL: ``pg_advisory_xact_lock`` on the
key), and a UNIQUE, foreign key or trigger refusal comes back as relgate's ``IntegrityError``.
``Store``, ``AuditLog`` and ``KeyRecords`` share one ``Database``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from relgate.errors import IntegrityError, InvalidInputError
from relgate.receipts.model import format_time
from relgate.store.engine import lock_id

__all__ = ["Database", "check_name"]


def check_name(what: str, value: str) -> None:
    """Refuse a blank or over-long name (tenant, actor, key name)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise InvalidInputError(f"{what} must be 1 to 256 characters, not blank")


class Database:
    """An engine with serialized write transactions and the clock that stamps records."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # SQLite's busy handler with growing backoff (p99 register latency over a second with
        # four threads). Threads of this process queue on a lock instead; other processes
        # still meet BEGIN IMMEDIATE and the busy timeout.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if self.postgres else threading.Lock()
        )
        self._clock = clock

    @contextlib.contextmanager
    def transaction(self, *, lock_key: str | None) -> Iterator[Connection]:
        """A write transaction serialized against every other writer of ``lock_key``
        (``None`` on PostgreSQL: no advisory lock, the caller relies on row locks, as the job
        queue's ``FOR UPDATE SKIP LOCKED``; SQLite always has one writer at a time)."""
        try:
            with self._write_lock, self.engine.connect() as conn:
                # Read by the SQLite "begin" hook: writers start with BEGIN IMMEDIATE.
                conn.execution_options(relgate_write=True)
                with conn.begin():
                    if self.postgres and lock_key is not None:
                        conn.execute(
                            sa.text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": lock_id(lock_key)},
                        )
                    yield conn
        except sa.exc.IntegrityError as exc:
            # Rolled back. A UNIQUE, foreign key or trigger refusal is data that does not fit
            # the chain: callers see relgate's error, never SQLAlchemy's.
            raise IntegrityError(
                f"the store's constraints refused the write: {exc.orig}", rule="store_constraint"
            ) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def now(self) -> str:
        """The store clock's current time, RFC 3339 UTC (what records are stamped with)."""
        return format_time(self._clock())
