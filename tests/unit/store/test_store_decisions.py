"""Decisions: receipt + facts in one transaction, tenant and release chains."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from relgate.canonical import canonical_json, sha256_hex
from relgate.errors import InvalidInputError, NotFoundError
from relgate.manifest import ReleaseManifest
from relgate.receipts.model import TENANT_SUBJECT
from relgate.store import Store


def _register(store: Store, manifest: dict[str, Any], ref: str, tenant: str = "default") -> str:
    manifest["prompt_template"]["ref"] = ref
    m = ReleaseManifest.parse(manifest)
    store.register_release(m, actor="alice", tenant=tenant)
    return m.sha256


def test_decision_writes_receipt_and_facts(store: Store, api_manifest: dict[str, Any]) -> None:
    sha = _register(store, api_manifest, "a")
    receipt = store.record_decision(
        tenant="default",
        release_sha=sha,
        kind="gate_pass",
        evidence={"worst_slice": {"name": "law", "q": 0.91, "ci": [0.8, 0.97]}},
        actor="gate",
        reason="every slice above the floor",
        facts=[("gate_result", {"verdict": "PASS"}), ("calibration", {"law": 0.42})],
    )
    assert receipt.kind == "gate_pass"
    assert receipt.seq == 1
    assert receipt.receipt_sha256 == sha256_hex(canonical_json(receipt.body()))
    assert receipt.time == "2026-11-26T12:00:02.000000Z"  # the injected clock's second reading
    facts = store.facts(sha, tenant="default")
    assert [(f.kind, f.payload) for f in facts] == [
        ("gate_result", {"verdict": "PASS"}),
        ("calibration", {"law": 0.42}),
    ]
    assert {f.receipt_sha256 for f in facts} == {receipt.receipt_sha256}
    assert [f.kind for f in store.facts(sha, "calibration", tenant="default")] == ["calibration"]
    assert store.list_receipts()[-1] == receipt


def test_tenant_and_release_chains(store: Store, api_manifest: dict[str, Any]) -> None:
    a = _register(store, api_manifest, "a")
    b = _register(store, api_manifest, "b")
    kinds = [(a, "gate_pass"), (b, "gate_fail"), (a, "shadow_start"), (a, "shadow_end")]
    for sha, kind in kinds:
        store.record_decision(
            tenant="default", release_sha=sha, kind=kind, evidence={}, actor="x", reason=kind
        )
    receipts = store.list_receipts()
    assert [r.seq for r in receipts] == list(range(6))
    for prev, cur in itertools.pairwise(receipts):
        assert cur.prev_receipt_sha256 == prev.receipt_sha256
    chain_a = store.list_receipts(release_sha=a)
    assert [r.kind for r in chain_a] == ["register", "gate_pass", "shadow_start", "shadow_end"]
    assert chain_a[0].prev_release_receipt_sha256 is None
    for prev, cur in itertools.pairwise(chain_a):
        assert cur.prev_release_receipt_sha256 == prev.receipt_sha256
    assert [r.seq for r in store.list_receipts(limit=2)] == [0, 1]
    assert [r.seq for r in store.list_receipts(after_seq=3)] == [4, 5]
    assert store.receipt_shas() == [r.receipt_sha256 for r in receipts]


def test_unknown_release_and_bad_fields(store: Store, api_manifest: dict[str, Any]) -> None:
    sha = _register(store, api_manifest, "a")
    ok: dict[str, Any] = {
        "tenant": "default",
        "release_sha": sha,
        "kind": "gate_pass",
        "evidence": {},
        "actor": "gate",
        "reason": "",
    }
    with pytest.raises(NotFoundError):
        store.record_decision(**{**ok, "release_sha": "1" * 64})
    with pytest.raises(InvalidInputError, match="gate_pass is about a release"):
        store.record_decision(**{**ok, "release_sha": TENANT_SUBJECT})
    with pytest.raises(InvalidInputError, match="key_revoke is about the tenant"):
        store.record_decision(**{**ok, "kind": "key_revoke"})
    with pytest.raises(InvalidInputError, match="unknown receipt kind"):
        store.record_decision(**{**ok, "kind": "vibes"})
    with pytest.raises(InvalidInputError, match="register_release"):
        store.record_decision(**{**ok, "kind": "register"})
    with pytest.raises(InvalidInputError, match="canonicalized"):
        store.record_decision(**{**ok, "evidence": {"x": float("nan")}})
    with pytest.raises(InvalidInputError, match="payload"):
        store.record_decision(**{**ok, "facts": [("gate_result", [1])]})
    with pytest.raises(InvalidInputError, match="actor"):
        store.record_decision(**{**ok, "actor": ""})
    assert len(store.list_receipts()) == 1
    assert store.facts(sha, tenant="default") == []


def test_decision_and_facts_commit_together_or_not_at_all(
    store: Store, api_manifest: dict[str, Any]
) -> None:
    """A failure while writing the second fact leaves neither the receipt nor the first fact."""
    sha = _register(store, api_manifest, "a")
    with store.db.engine.begin() as conn:  # a database-side failure on one fact kind
        if store.dialect == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER boom BEFORE INSERT ON facts WHEN NEW.kind = 'boom' "
                "BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.kind = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER boom BEFORE INSERT ON facts FOR EACH ROW EXECUTE FUNCTION boom()"
            )
    with pytest.raises(Exception, match="boom"):
        store.record_decision(
            tenant="default",
            release_sha=sha,
            kind="gate_pass",
            evidence={},
            actor="gate",
            reason="",
            facts=[("gate_result", {"verdict": "PASS"}), ("boom", {})],
        )
    assert [r.kind for r in store.list_receipts()] == ["register"]
    assert store.facts(sha, tenant="default") == []
    # The chain goes on from the last committed receipt.
    nxt = store.record_decision(
        tenant="default", release_sha=sha, kind="gate_pass", evidence={}, actor="g", reason=""
    )
    assert nxt.seq == 1
