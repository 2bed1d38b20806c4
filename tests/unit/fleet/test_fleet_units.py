"""The fleet's pieces in memory: the feed's ordering and acks, the hub's ack accounting, the
trace shipper's bounds and sampling, and snapshots on the wire (tampering refused)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from relgate.app.fleet import FleetHub
from relgate.app.routing import LOCAL_REPLICA, RoutingTable, local_hub
from relgate.errors import InvalidInputError, ManifestError, NotFoundError
from relgate.gateway.feed import SnapshotFeed
from relgate.gateway.server import Gateway
from relgate.gateway.shipping import TraceShipper
from relgate.manifest import ReleaseManifest
from relgate.routing import ReleaseRoute, RoutingSnapshot
from relgate.traces import Trace, TraceStore
from relgate.wire.routing import snapshot_message, snapshot_of, trace_message, trace_of


def _manifest(tag: str) -> ReleaseManifest:
    return ReleaseManifest.parse(
        json.dumps(
            {
                "model": {"kind": "api", "provider": "p", "model": f"m-{tag}",
                          "endpoint": f"http://127.0.0.1:9/{tag}/v1"},
                "prompt_template": {"ref": tag, "template": "{input}", "variables": ["input"]},
                "dataset": {"ref": "d", "sha256": "ab" * 32},
                "routing": [{}],
                "previous_release": None,
            }
        )
    )  # fmt: skip


M1, M2 = _manifest("v1"), _manifest("v2")
R1, R2 = ReleaseRoute.from_manifest(M1), ReleaseRoute.from_manifest(M2)
MANIFESTS = {M1.sha256: M1.canonical_bytes(), M2.sha256: M2.canonical_bytes()}


def _trace(i: int, slice_name: str = "s", tenant: str = "default") -> Trace:
    return Trace(f"tr_{i}", time.time(), slice_name, "all", "p", "a", 0.01, 200, R1.release_sha256,
                 1, tenant=tenant)  # fmt: skip


def test_feed_applies_in_epoch_version_order_and_never_goes_back() -> None:
    acks: list[tuple[str, int, int]] = []
    feed = SnapshotFeed(Gateway(None), lambda t, e, v: acks.append((t, e, v)))
    assert feed.offer(5, RoutingSnapshot(2, R1))
    assert feed.offer(5, RoutingSnapshot(3, R2))
    assert not feed.offer(5, RoutingSnapshot(2, R1))  # stale: refused, not acked
    assert not feed.offer(4, RoutingSnapshot(9, R1))  # an older control plane
    assert feed.gateway.snapshot_of("default").stable == R2  # type: ignore[union-attr]
    # A new control plane counts from 1 again: served, with the gateway's version still rising.
    assert feed.offer(6, RoutingSnapshot(1, R1))
    assert feed.gateway.snapshot_of("default").version == 4  # type: ignore[union-attr]
    # The same snapshot again (a re-sync): acked again, nothing changes.
    assert feed.offer(6, RoutingSnapshot(1, R1))
    assert acks == [("default", 5, 2), ("default", 5, 3), ("default", 6, 1), ("default", 6, 1)]
    assert feed.state().refused == 2


def test_feed_health_says_stale_when_the_control_plane_is_gone() -> None:
    feed = SnapshotFeed(Gateway(None))
    feed.connection(True)
    feed.offer(1, RoutingSnapshot(1, R1))
    assert feed.health()["status"] == "ok"
    feed.connection(False)
    h = feed.health()
    assert h["status"] == "stale" and not h["control_plane_connected"]
    assert h["serving"] == {"default": {"epoch": 1, "version": 1}}
    assert h["disconnected_for_s"] is not None


def test_hub_waits_for_every_replica_and_names_the_missing() -> None:
    async def run() -> None:
        hub = FleetHub(epoch=7)
        got: list[RoutingSnapshot] = []
        a = hub.connect("a", frozenset({"default"}), lambda e, s: got.append(s), key_sha256="k")
        b = hub.connect("b", frozenset({"default"}), lambda e, s: None, key_sha256="k")
        hub.connect("other", frozenset({"t2"}), lambda e, s: None, key_sha256="k")
        hub.publish(RoutingSnapshot(1, R1))
        hub.ack(a, "default", 7, 1)
        hub.ack(b, "default", 6, 1)  # another epoch: ignored
        partial = await hub.wait_acked("default", 1, 0.05)
        assert not partial.complete
        assert [n for n, _ in partial.acked] == ["a"] and partial.missing == ("b",)
        waiter = asyncio.create_task(hub.wait_acked("default", 1, 5.0))
        await asyncio.sleep(0)
        hub.ack(b, "default", 7, 1)
        done = await waiter
        assert done.complete and {n for n, _ in done.acked} == {"a", "b"}
        assert done.evidence()["missing"] == [] and done.evidence()["complete"]
        # A replica that connects later gets the latest snapshot at once.
        late: list[RoutingSnapshot] = []
        hub.connect("c", frozenset({"default"}), lambda e, s: late.append(s), key_sha256="k")
        assert late == [RoutingSnapshot(1, R1)] and got == late
        with pytest.raises(NotFoundError):
            hub.session(a.id, "another key")
        hub.disconnect(b.id)
        assert {r.name for r in hub.replicas("default")} == {"a", "c"}

    asyncio.run(run())


def test_routing_table_publishes_through_the_hub_to_the_local_gateway() -> None:
    async def run() -> None:
        gw = Gateway(None)
        hub = local_hub(gw)
        acked = []
        table = RoutingTable(
            lambda sha: R1 if sha == R1.release_sha256 else R2,
            gateway=gw, loop=asyncio.get_running_loop(), hub=hub,
            on_acked=lambda change, acks, subject: acked.append(acks),
        )  # fmt: skip
        table.serve_only(R1.release_sha256)
        assert gw.snapshot is not None and gw.snapshot.stable == R1  # swapped in the call
        for _ in range(50):
            if acked:
                break
            await asyncio.sleep(0.01)
        assert acked and acked[0].complete and acked[0].acked[0][0] == LOCAL_REPLICA

    asyncio.run(run())


def test_shipper_is_bounded_counts_drops_and_samples_text_per_slice() -> None:
    sent: list[list[tuple[Trace, bool]]] = []

    async def send(batch: list[tuple[Trace, bool]], dropped: int) -> float:
        sent.append(list(batch))
        return 0.0

    async def run() -> None:
        shipper = TraceShipper(send, max_queue=100, batch=40, text_per_slice_per_s=1000)
        for i in range(150):
            shipper(_trace(i))
        assert shipper.stats().queued == 100 and shipper.stats().dropped == 50
        await shipper.flush()
        shipped = [t for b in sent for t in b]
        assert [t.id for t, _ in shipped] == [f"tr_{i}" for i in range(50, 150)]
        assert all(not e for _, e in shipped)  # within the text budget
        sent.clear()
        sampled = TraceShipper(send, text_per_slice_per_s=10)
        for i in range(100):
            sampled(_trace(i, "hot" if i % 2 else "cold"))
        await sampled.flush()
        shipped = [t for b in sent for t in b]
        assert len(shipped) == 100  # every request travels (as an event at least)
        # Each slice kept its text for about one second's worth (10), the rest went as events.
        kept = {s: sum(1 for t, e in shipped if not e and t.slice == s) for s in ("hot", "cold")}
        assert all(10 <= k <= 12 for k in kept.values()), kept

    asyncio.run(run())


def test_shipper_keeps_a_batch_that_failed_to_send() -> None:
    calls = [0]

    async def send(batch: list[tuple[Trace, bool]], dropped: int) -> float:
        calls[0] += 1
        if calls[0] == 1:
            raise ConnectionError("control plane gone")
        return 0.0

    async def run() -> None:
        shipper = TraceShipper(send, batch=10)
        for i in range(5):
            shipper(_trace(i))
        await shipper.flush()
        assert shipper.stats().queued == 5 and shipper.stats().failed_pushes == 1
        await shipper.flush()
        assert shipper.stats().queued == 0 and shipper.stats().shipped == 5

    asyncio.run(run())


def test_trace_store_sink_and_event_only_records() -> None:
    store = TraceStore()
    seen: list[Trace] = []
    store.add_sink(seen.append)
    store.record(_trace(1))
    store.record_event(_trace(2))
    assert [t.id for t in seen] == ["tr_1"]
    assert [t.id for t in store.all_traces()] == ["tr_1"]  # the replay never sees an event
    assert store.counts(R1.release_sha256, 1e9).total == 2  # the monitors count both


def test_snapshot_round_trips_and_a_tampered_manifest_is_refused() -> None:
    snap = RoutingSnapshot(3, R1, R2, weight_bp=500, tenant="t1")
    msg = snapshot_message(9, snap, MANIFESTS.__getitem__)
    assert snapshot_of(msg) == (9, snap)
    msg.candidate.release_sha256 = R1.release_sha256  # names one release, carries another
    with pytest.raises(InvalidInputError, match="hashes to"):
        snapshot_of(msg)
    msg.candidate.manifest_json = b"{not json"
    with pytest.raises(ManifestError):
        snapshot_of(msg)
    t = Trace("tr_x", 1.0, "s", "all", "p", "a", 0.1, 200, "c" * 64, 5, variables=(("k", "v"),))
    assert trace_of(trace_message(t)) == t
    assert trace_of(trace_message(t, event_only=True)).prompt == ""
