"""The traces the replay monitor needs, kept across a control-plane restart (bounded).

``TraceRecords.add`` writes a batch of traces and prunes, in the same transaction, every group
it touched (tenant, release, slice, shadow) down to its ``per_group`` newest rows, and every row
older than ``max_age_s``: the table never holds more than ``per_group`` rows per group, nor rows
older than the age bound (after the next write). ``load`` reads back the newest ``per_group``
rows of each group no older than the bound, oldest first (the order a ring buffer is refilled
in). A row that no longer parses is skipped with a warning, never guessed.

Written by one background writer (``relgate.app.trace_log``), never on the request path.
"""

from __future__ import annotations

import json
import logging
import operator
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import sqlalchemy as sa

from relgate.errors import InvalidInputError
from relgate.store import schema
from relgate.store.db import Database
from relgate.traces import Trace

__all__ = ["TraceRecords", "trace_from_json", "trace_to_json"]

log = logging.getLogger("relgate.store")

_NAMES = tuple(f.name for f in fields(Trace))
_fields_of = operator.attrgetter(*_NAMES)
_LOCK = "traces"


def trace_to_json(trace: Trace) -> str:
    """A trace as compact JSON (a list of its fields in order). Not ``dataclasses.astuple``:
    its deep copy was 70% of a batch's CPU, which the writer shares with the gateway's loop."""
    return json.dumps(_fields_of(trace), separators=(",", ":"), ensure_ascii=False)


def trace_from_json(text: str) -> Trace:
    """Parse ``trace_to_json`` output (``InvalidInputError`` when it does not fit a trace)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"trace row: not JSON: {exc}") from None
    if not isinstance(raw, list) or len(raw) != len(_NAMES):
        raise InvalidInputError(f"trace row: expected {len(_NAMES)} fields")
    values: dict[str, Any] = dict(zip(_NAMES, raw, strict=True))
    pairs = values["variables"]
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs
    ):
        raise InvalidInputError("trace row: variables must be [name, value] pairs")
    values["variables"] = tuple((k, v) for k, v in pairs)
    for name in ("id", "slice", "prompt", "answer", "release_sha256", "tenant"):
        if not isinstance(values[name], str):
            raise InvalidInputError(f"trace row: {name} must be a string")
    if not isinstance(values["status"], int) or not isinstance(values["time"], int | float):
        raise InvalidInputError("trace row: status and time must be numbers")
    return Trace(**values)


class TraceRecords:
    """The ``traces`` table (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, traces: Sequence[Trace], *, per_group: int, max_age_s: float, now: float) -> int:
        """Write ``traces`` (a trace id already stored is left as it is) and prune; returns how
        many rows were written."""
        if per_group < 1 or max_age_s <= 0:
            raise InvalidInputError("trace retention bounds must be positive")
        t = schema.traces.c
        fresh = {(tr.tenant, tr.id): tr for tr in traces if tr.time >= now - max_age_s}
        if not fresh:
            return 0
        with self._db.transaction(lock_key=_LOCK) as conn:
            stored = {
                (r.tenant, r.id)
                for r in conn.execute(
                    sa.select(t.tenant, t.id).where(sa.tuple_(t.tenant, t.id).in_(list(fresh)))
                )
            }
            rows = [
                {
                    "tenant": tr.tenant,
                    "id": tr.id,
                    "release_sha256": tr.release_sha256,
                    "slice": tr.slice,
                    "shadow": int(tr.shadow),
                    "time": tr.time,
                    "trace": trace_to_json(tr),
                }
                for key, tr in fresh.items()
                if key not in stored
            ]
            if rows:
                conn.execute(schema.traces.insert(), rows)
            groups = {(r["tenant"], r["release_sha256"], r["slice"], r["shadow"]) for r in rows}
            for tenant, release, slice_name, shadow in groups:
                group = (
                    (t.tenant == tenant)
                    & (t.release_sha256 == release)
                    & (t.slice == slice_name)
                    & (t.shadow == shadow)
                )
                # Only this batch's rows can push a group over its bound: bounded deletes.
                over = (
                    conn.execute(
                        sa.select(t.id)
                        .where(group)
                        .order_by(t.time.desc(), t.id.desc())
                        .offset(per_group)
                        .limit(len(rows))
                    )
                    .scalars()
                    .all()
                )
                if over:
                    conn.execute(schema.traces.delete().where(group & t.id.in_(over)))
            conn.execute(schema.traces.delete().where(t.time < now - max_age_s))
        return len(rows)

    def load(self, *, per_group: int, max_age_s: float, now: float) -> list[Trace]:
        """The newest ``per_group`` traces of each group no older than ``max_age_s``, oldest
        first."""
        t = schema.traces.c
        rank = (
            sa.func.row_number()
            .over(
                partition_by=(t.tenant, t.release_sha256, t.slice, t.shadow),
                order_by=(t.time.desc(), t.id.desc()),
            )
            .label("rank")
        )
        ranked = sa.select(t.time, t.id, t.trace, rank).where(t.time >= now - max_age_s)
        sub = ranked.subquery()
        query = sa.select(sub.c.trace).where(sub.c.rank <= per_group)
        with self._db.read() as conn:
            texts = conn.execute(query.order_by(sub.c.time, sub.c.id)).scalars().all()
        out = []
        for text in texts:
            try:
                out.append(trace_from_json(text))
            except (InvalidInputError, TypeError) as exc:
                log.warning("skipped a stored trace that does not parse: %s", exc)
        return out

    def count(self) -> int:
        """Rows stored (tests, status)."""
        with self._db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(schema.traces)).one()[0])
