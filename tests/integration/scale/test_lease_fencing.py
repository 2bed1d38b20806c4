"""The leader lease and its fencing token on the real store (SQLite, and PostgreSQL when
configured): one holder at a time, a takeover only after expiry and with a higher epoch, a
deposed leader's decision refused in its own transaction (nothing written), and a rollout's
readings and request counts persisted between decisions so that whoever resumes it decides on
the same evidence."""

from __future__ import annotations

import itertools
import json

import pytest
from relgate.app.leader import LeaderOptions, Leadership
from relgate.app.rollout_runtime import FACT_KIND, StoreFactLog
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.rollout.clock import ManualClock
from relgate.rollout.controller import Readings, RolloutController
from relgate.rollout.spec import RolloutSpec
from relgate.rollout.status import RolloutStatus
from relgate.store import Store
from relgate.store.control import CONTROL_PLANE_LEASE, LeaseLostError
from relgate.store.schema import rollout_evidence

SPEC = RolloutSpec().with_overrides(
    {
        "steps": [
            {"weight_bp": 500, "dwell_s": 60, "min_requests": 3, "deadline_s": 600},
            {"weight_bp": 10000},
        ]
    }
)


class _Routing:
    def set_weight(self, weight_bp: int) -> None: ...
    def swap_to(self, release: str) -> None: ...
    def set_shadow(self, enabled: bool) -> None: ...


def _release(store: Store, n: int, previous: str | None) -> str:
    doc = {
        "model": {"kind": "api", "provider": "x", "model": f"m{n}",
                  "endpoint": "http://127.0.0.1:9/v1"},
        "prompt_template": {"ref": "p", "system": "", "template": "{input}",
                            "variables": ["input"]},
        "routing": [{}],
        "dataset": {"ref": "d", "sha256": "ab" * 32},
        "previous_release": previous,
    }  # fmt: skip
    manifest = ReleaseManifest.parse(json.dumps(doc))
    return store.register_release(manifest, actor="t").release.sha256


def _controller(
    store: Store, v1: str, v2: str, clock: ManualClock, requests: list[int], lead: Leadership | None
) -> tuple[RolloutController, StoreFactLog]:
    log = StoreFactLog(
        store, tenant="default", candidate=v2, stable=v1, rollout_id="ro_x",
        fence=None if lead is None else lead.require,
    )  # fmt: skip

    def readings() -> Readings:
        n = sum(requests)
        requests.clear()
        return Readings(requests=n)

    c = RolloutController(
        SPEC, candidate=v2, stable=v1, clock=clock, readings=readings, routing=_Routing(),
        record=log.record, log=log, rollout_id="ro_x",
    )  # fmt: skip
    return c, log


def _resumed(store: Store, v1: str, v2: str, clock: ManualClock) -> RolloutStatus:
    log = StoreFactLog(store, tenant="default", candidate=v2, stable=v1, rollout_id="ro_x")
    c = RolloutController.resume(
        log, clock=clock, readings=Readings, routing=_Routing(), record=log.record,
        rollout_id="ro_x",
    )  # fmt: skip
    return c.status


def test_one_holder_takeover_after_expiry_with_a_higher_epoch(store: Store) -> None:
    wall = ManualClock(1000.0)
    a = Leadership(store, LeaderOptions(ttl_s=5.0, holder="a", wall=wall))
    b = Leadership(store, LeaderOptions(ttl_s=5.0, holder="b", wall=wall))
    first = a.poll()
    assert first.leading and first.new_term and first.lease.epoch == 1
    second = b.poll()
    assert not second.leading and second.lease.holder == "a"
    with pytest.raises(LeaseLostError, match="the leader is a"):
        b.require()
    wall.advance(2.0)  # a renews (past ttl / 3): still epoch 1, not a new term
    renewed = a.poll()
    assert renewed.leading and not renewed.new_term and renewed.lease.expires_at == 1007.0
    wall.advance(4.0)  # a's renewal has not expired yet
    assert not b.poll().leading
    wall.advance(1.5)  # expired: b takes over with the next epoch
    took = b.poll()
    assert took.leading and took.new_term and took.lease.epoch == 2
    lost = a.poll()
    assert not lost.leading and lost.lease.holder == "b"
    # A clean shutdown hands the lease on at once.
    b.release()
    back = a.poll()
    assert back.leading and back.new_term and back.lease.epoch == 3
    lease = store.control.lease(CONTROL_PLANE_LEASE)
    assert lease is not None and (lease.holder, lease.epoch) == ("a", 3)
    with pytest.raises(InvalidInputError):
        store.control.acquire(CONTROL_PLANE_LEASE, "c", ttl_s=0, now=wall())


def test_a_deposed_leaders_decision_is_refused_and_writes_nothing(store: Store) -> None:
    v1 = _release(store, 1, None)
    v2 = _release(store, 2, v1)
    wall, clock = ManualClock(1000.0), ManualClock()
    a = Leadership(store, LeaderOptions(ttl_s=5.0, holder="a", wall=wall))
    b = Leadership(store, LeaderOptions(ttl_s=5.0, holder="b", wall=wall))
    assert a.poll().leading
    requests = [0]
    ca, _ = _controller(store, v1, v2, clock, requests, a)
    ca.tick()
    start = store.list_receipts(release_sha=v2)[-1]
    assert start.kind == "rollout_start" and start.evidence["leader_epoch"] == 1

    # a stalls past its lease (a pause, a partition); b takes over and resumes the rollout.
    wall.advance(6.0)
    assert b.poll().leading
    before = store.list_receipts()
    facts_before = store.facts(v2, FACT_KIND, tenant="default")
    # a wakes up believing it leads (its cached fence) and decides: refused in the write's
    # own transaction, both the evidence and the decision.
    requests.append(2)
    with pytest.raises(LeaseLostError, match="epoch 2 of b"):
        ca.tick()
    requests.append(5)
    clock.advance(61)
    with pytest.raises(LeaseLostError):
        ca.tick()
    assert store.list_receipts() == before
    assert store.facts(v2, FACT_KIND, tenant="default") == facts_before
    assert ca.status.step_index == 0  # the refused decision was not applied either

    # b, resumed from the store, decides once with its own epoch.
    requests_b = [5]
    log_b = StoreFactLog(
        store, tenant="default", candidate=v2, stable=v1, rollout_id="ro_x", fence=b.require
    )
    cb = RolloutController.resume(
        log_b, clock=clock, readings=lambda: Readings(requests=sum(requests_b)),
        routing=_Routing(), record=log_b.record, rollout_id="ro_x",
    )  # fmt: skip
    cb.tick()
    after = store.list_receipts(release_sha=v2)
    assert [r.kind for r in after] == ["register", "rollout_start", "checkpoint_hold"]
    assert after[-1].evidence["leader_epoch"] == 2
    chain = store.list_receipts()
    assert [r.seq for r in chain] == list(range(len(chain)))
    for prev, nxt in itertools.pairwise(chain):
        assert nxt.prev_receipt_sha256 == prev.receipt_sha256


def test_readings_and_request_counts_survive_a_restart(store: Store) -> None:
    v1 = _release(store, 1, None)
    v2 = _release(store, 2, v1)
    clock, requests = ManualClock(), [0]
    c, _ = _controller(store, v1, v2, clock, requests, None)
    c.tick()
    for n in (2, 3):
        requests.append(n)
        clock.advance(10)
        c.tick()  # readings, no decision: no receipt, but persisted as evidence
    assert [r.kind for r in store.list_receipts(release_sha=v2)] == ["register", "rollout_start"]
    assert c.status.requests_in_step == 5
    # A restarted control plane sees the same count (not 0 of 3).
    restarted = _resumed(store, v1, v2, clock)
    assert restarted == c.status and restarted.requests_in_step == 5

    # The next decision commits them as facts with its receipt and forgets the evidence rows.
    clock.advance(45)
    c.tick()
    kinds = [r.kind for r in store.list_receipts(release_sha=v2)]
    assert kinds[-1] == "checkpoint_hold"
    committed = [f.payload["fact"]["kind"] for f in store.facts(v2, FACT_KIND, tenant="default")]
    assert committed.count("requests") == 2
    with store.db.read() as conn:
        left = conn.execute(rollout_evidence.select()).all()
    assert left == []
    assert _resumed(store, v1, v2, clock) == c.status
