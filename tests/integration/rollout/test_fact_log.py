"""The store-backed fact log: each decision's receipt and its facts in one transaction, a
failed write leaves neither (and no duplicate on retry), and a rebuilt controller resumes
from the store exactly where the facts say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from relgate.app.rollout_runtime import FACT_KIND, StoreFactLog
from relgate.manifest import ReleaseManifest
from relgate.rollout.clock import ManualClock
from relgate.rollout.controller import Readings, RolloutController
from relgate.rollout.spec import RolloutSpec
from relgate.rollout.status import FactKind
from relgate.store import Store

SPEC = RolloutSpec().with_overrides(
    {
        "steps": [
            {"weight_bp": 500, "dwell_s": 60, "min_requests": 3, "deadline_s": 600},
            {"weight_bp": 10000},
        ]
    }
)


class _Routing:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def set_weight(self, weight_bp: int) -> None:
        self.calls.append(("weight", weight_bp))

    def swap_to(self, release: str) -> None:
        self.calls.append(("swap", release))

    def set_shadow(self, enabled: bool) -> None:
        self.calls.append(("shadow", enabled))


def _release(store: Store, n: int, previous: str | None) -> str:
    doc = {
        "model": {
            "kind": "api",
            "provider": "x",
            "model": f"m{n}",
            "endpoint": "http://127.0.0.1:9/v1",
        },
        "prompt_template": {
            "ref": "p",
            "system": "",
            "template": "{input}",
            "variables": ["input"],
        },
        "routing": [{}],
        "dataset": {"ref": "d", "sha256": "ab" * 32},
        "previous_release": previous,
    }
    manifest = ReleaseManifest.parse(json.dumps(doc))
    return store.register_release(manifest, actor="t").release.sha256


def _controller(
    store: Store, v1: str, v2: str, clock: ManualClock, routing: _Routing, requests: list[int]
) -> tuple[RolloutController, StoreFactLog]:
    log = StoreFactLog(store, tenant="default", candidate=v2, stable=v1, rollout_id="ro_x")

    def readings() -> Readings:
        n = sum(requests)
        requests.clear()
        return Readings(requests=n)

    c = RolloutController(
        SPEC, candidate=v2, stable=v1, clock=clock, readings=readings, routing=routing,
        record=log.record, log=log, rollout_id="ro_x",
    )  # fmt: skip
    return c, log


def test_decision_and_facts_commit_together_and_resume(tmp_path: Path) -> None:
    store = Store.open(None, data_dir=tmp_path)
    try:
        v1 = _release(store, 1, None)
        v2 = _release(store, 2, v1)
        clock, routing, requests = ManualClock(), _Routing(), [0]
        c, _ = _controller(store, v1, v2, clock, routing, requests)
        c.tick()
        kinds = [r.kind for r in store.list_receipts(release_sha=v2)]
        assert kinds == ["register", "rollout_start"]
        start = store.list_receipts(release_sha=v2)[-1]
        facts = store.facts(v2, FACT_KIND, tenant="default")
        assert {f.receipt_sha256 for f in facts} == {start.receipt_sha256}
        assert [f.payload["fact"]["kind"] for f in facts] == ["started", "step_entered"]

        requests.append(2)
        c.tick()  # a reading, no decision: buffered, not a receipt of its own
        assert len(store.facts(v2, FACT_KIND, tenant="default")) == 2

        # A decision whose write fails leaves neither receipt nor facts...
        requests.append(5)
        clock.advance(61)
        real = store.record_decision

        def broken(**kw: object) -> object:
            raise OSError("disk full")

        store.record_decision = broken  # type: ignore[method-assign]
        with pytest.raises(OSError):
            c.tick()
        store.record_decision = real  # type: ignore[method-assign]
        assert len(store.facts(v2, FACT_KIND, tenant="default")) == 2
        assert c.status.step_index == 0
        # ...and the retry decides once (monitors without readings: one hold, not two).
        c.tick()
        rows = [f.payload["fact"]["kind"] for f in store.facts(v2, FACT_KIND, tenant="default")]
        assert rows == ["started", "step_entered", "requests", "requests", "hold_extended"]
        kinds = [r.kind for r in store.list_receipts(release_sha=v2)]
        assert kinds == ["register", "rollout_start", "checkpoint_hold"]

        # A new controller built from the store alone is where this one is.
        routing2 = _Routing()
        log2 = StoreFactLog(store, tenant="default", candidate=v2, stable=v1, rollout_id="ro_x")
        again = RolloutController.resume(
            log2, clock=clock, readings=Readings, routing=routing2, record=log2.record,
            rollout_id="ro_x",
        )  # fmt: skip
        assert again.status == c.status
        assert again.status.requests_in_step == 7
        assert routing2.calls == [("weight", 500)]  # reconciled: the canary serves again
        assert FactKind.HOLD_EXTENDED in {f.kind for f in log2.load()}
    finally:
        store.close()
