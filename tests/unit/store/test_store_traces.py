"""Persisted traces for the replay (store/traces.py, app/trace_log.py): bounded per group and by
age, reloaded into a trace store's buffers, written off the request path with drops counted."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from relgate.app.trace_log import TraceLog, TraceLogOptions
from relgate.errors import InvalidInputError
from relgate.store import Store, schema
from relgate.traces import Trace, TraceStore, shadow_trace_id

NOW = 10_000.0


def trace(i: int, *, release: str = "a" * 64, slice_name: str = "Law", **kw: object) -> Trace:
    base = Trace(
        id=f"tr_{i:04d}",
        time=NOW - 100 + i,
        slice=slice_name,
        traffic_class="all",
        prompt=f"question {i}",
        answer=f"answer {i}",
        latency_s=0.01,
        status=200,
        release_sha256=release,
        session_bucket=i,
        variables=(("input", f"question {i}"),),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_traces_round_trip_bounded_per_group_and_by_age(store: Store) -> None:
    rows = [trace(i) for i in range(30)]
    rows += [trace(100 + i, release="b" * 64) for i in range(5)]
    rows.append(replace(trace(7), id=shadow_trace_id("tr_0007"), shadow=True))
    rows.append(trace(999, time=NOW - 5_000))  # older than the age bound: never written
    written = store.traces.add(rows, per_group=10, max_age_s=1_000, now=NOW)
    assert written == 36
    # 10 of release a's 30 (the newest), 5 of release b, 1 mirror.
    assert store.traces.count() == 16
    back = store.traces.load(per_group=10, max_age_s=1_000, now=NOW)
    assert [t for t in back if t.id == "tr_0029"] == [rows[29]]  # every field, variables too
    law_a = [t.id for t in back if t.release_sha256 == "a" * 64 and not t.shadow]
    assert law_a == [f"tr_{i:04d}" for i in range(20, 30)]  # newest ten, oldest first
    assert store.traces.add(rows[:5], per_group=10, max_age_s=1_000, now=NOW) <= 5
    # Time passes: everything is older than the bound, pruned at the next write.
    later = NOW + 2_000
    assert store.traces.load(per_group=10, max_age_s=1_000, now=later) == []
    store.traces.add([trace(5000, time=later)], per_group=10, max_age_s=1_000, now=later)
    assert store.traces.count() == 1


def test_a_stored_row_that_does_not_parse_is_skipped(store: Store) -> None:
    store.traces.add([trace(1), trace(2)], per_group=10, max_age_s=1_000, now=NOW)
    with store.db.transaction(lock_key="traces") as conn:
        t = schema.traces.c
        conn.execute(schema.traces.update().where(t.id == "tr_0001").values(trace='["x"]'))
    back = store.traces.load(per_group=10, max_age_s=1_000, now=NOW)
    assert [t.id for t in back] == ["tr_0002"]
    with pytest.raises(InvalidInputError, match="positive"):
        store.traces.add([trace(3)], per_group=0, max_age_s=1_000, now=NOW)


def test_restore_refills_the_buffers_without_counting_traffic() -> None:
    ts = TraceStore(per_slice=3, clock=lambda: NOW)
    restored = ts.restore([trace(i) for i in range(5)])
    assert restored == 5 and len(ts) == 3  # the ring buffer keeps its bound
    assert [t.id for t in ts.recent("Law", 10)] == ["tr_0004", "tr_0003", "tr_0002"]
    assert ts.recorded == 0 and ts.counts("a" * 64, 1_000).total == 0
    assert ts.restore([trace(4)]) == 0  # already there


def test_trace_log_writes_in_the_background_and_restores(store: Store) -> None:
    reg = CollectorRegistry()
    tlog = TraceLog(store.traces, clock=lambda: NOW, registry=reg,
                    options=TraceLogOptions(flush_interval_s=0.01))  # fmt: skip
    source = TraceStore(clock=lambda: NOW)
    source.add_sink(tlog)
    tlog.start()
    for i in range(20):
        source.record(trace(i))
    source.record(trace(50, status=500, answer=""))  # no answer: the replay cannot use it
    tlog.stop()
    assert store.traces.count() == 20
    assert reg.get_sample_value("relgate_traces_persisted_total") == 20
    fresh = TraceStore(clock=lambda: NOW)
    assert tlog.restore(fresh) == 20
    assert fresh.recent("Law", 1)[0].id == "tr_0019"


def test_a_full_queue_drops_and_counts_instead_of_waiting(store: Store) -> None:
    reg = CollectorRegistry()
    tlog = TraceLog(store.traces, clock=lambda: NOW, registry=reg,
                    options=TraceLogOptions(queue_max=5))  # fmt: skip
    for i in range(8):  # no writer running: the queue fills
        tlog(trace(i))
    assert tlog.queued == 5
    assert (
        reg.get_sample_value("relgate_traces_persist_dropped_total", {"reason": "queue_full"}) == 3
    )
    assert tlog.flush() == 5


def test_a_store_that_refuses_drops_the_batch_and_the_writer_goes_on(store: Store) -> None:
    reg = CollectorRegistry()
    tlog = TraceLog(store.traces, clock=lambda: NOW, registry=reg)
    with store.db.transaction(lock_key="traces") as conn:
        conn.execute(sa.text("DROP TABLE traces"))
    tlog(trace(1))
    assert tlog.flush() == 0
    dropped = reg.get_sample_value(
        "relgate_traces_persist_dropped_total", {"reason": "write_failed"}
    )
    assert dropped == 1
    tlog(trace(2))  # the next batch is tried (and refused) the same way: nothing is stuck
    assert tlog.flush() == 0 and tlog.queued == 0
