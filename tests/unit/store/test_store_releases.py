"""Register, look up and list releases; API keys."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from relgate.errors import (
    IntegrityError,
    InvalidInputError,
    InvalidTransitionError,
    ManifestConflictError,
    NotFoundError,
)
from relgate.manifest import ReleaseManifest
from relgate.receipts.model import TENANT_SUBJECT
from relgate.store import Store


def test_register_creates_release_and_receipt(store: Store, api_manifest: dict[str, Any]) -> None:
    m = ReleaseManifest.parse(api_manifest)
    result = store.register_release(m, actor="alice")
    assert result.created
    assert result.release.sha256 == m.sha256
    assert result.release.release_id == m.release_id
    assert result.release.manifest == m
    assert (result.release.actor, result.release.tenant) == ("alice", "default")
    receipt = result.receipt
    assert (receipt.kind, receipt.seq, receipt.release_sha256) == ("register", 0, m.sha256)
    assert receipt.prev_receipt_sha256 is None
    assert receipt.prev_release_receipt_sha256 is None
    assert receipt.evidence["manifest_sha256"] == m.sha256
    assert receipt.evidence["weights"]["attestable"] is False
    assert "cannot be measured" in receipt.evidence["weights"]["why"]
    assert store.list_receipts() == [receipt]


def test_register_is_idempotent(store: Store, api_manifest: dict[str, Any]) -> None:
    m = ReleaseManifest.parse(api_manifest)
    first = store.register_release(m, actor="alice")
    again = store.register_release(
        ReleaseManifest.parse(dict(reversed(api_manifest.items()))), actor="bob"
    )
    assert not again.created
    assert again.release == first.release
    assert again.receipt == first.receipt
    assert len(store.list_receipts()) == 1


def test_expected_sha_mismatch_is_rejected(store: Store, api_manifest: dict[str, Any]) -> None:
    m = ReleaseManifest.parse(api_manifest)
    with pytest.raises(ManifestConflictError, match="hashes to"):
        store.register_release(m, actor="alice", expected_sha256="0" * 64)
    assert store.list_releases() == []
    assert store.register_release(m, actor="alice", expected_sha256=m.sha256).created


def test_previous_release_must_exist(store: Store, api_manifest: dict[str, Any]) -> None:
    first = ReleaseManifest.parse(api_manifest)
    api_manifest["previous_release"] = first.sha256
    api_manifest["model"]["model"] = "gpt-4o-2024-08-06"
    second = ReleaseManifest.parse(api_manifest)
    with pytest.raises(NotFoundError, match="previous_release"):
        store.register_release(second, actor="alice")
    assert store.list_receipts() == []
    store.register_release(first, actor="alice")
    result = store.register_release(second, actor="alice")
    assert result.receipt.prev_receipt_sha256 == store.list_receipts()[0].receipt_sha256
    assert result.receipt.evidence["previous_release"] == first.sha256


def test_get_release_by_sha_or_id(store: Store, api_manifest: dict[str, Any]) -> None:
    m = ReleaseManifest.parse(api_manifest)
    store.register_release(m, actor="alice")
    assert store.get_release(m.sha256, tenant="default").sha256 == m.sha256
    assert store.get_release(m.release_id, tenant="default").sha256 == m.sha256
    with pytest.raises(NotFoundError):
        store.get_release("0" * 64, tenant="default")
    with pytest.raises(NotFoundError):
        store.get_release("rel_000000000000", tenant="default")
    assert store.get_release(m.sha256[:6], tenant="default").sha256 == m.sha256  # as git takes
    assert store.get_release(m.sha256.upper(), tenant="default").sha256 == m.sha256
    with pytest.raises(NotFoundError):
        store.get_release("A" * 64, tenant="default")
    for bad in ("xyz", "rel_12", m.sha256[:5], "g" * 64, "%" * 8, ""):
        with pytest.raises(InvalidInputError):
            store.get_release(bad, tenant="default")


def test_list_releases_per_tenant(store: Store, api_manifest: dict[str, Any]) -> None:
    shas = []
    for i in range(3):
        api_manifest["prompt_template"]["ref"] = f"v{i}"
        m = ReleaseManifest.parse(api_manifest)
        store.register_release(m, actor="alice", tenant="acme")
        shas.append(m.sha256)
    assert [r.sha256 for r in store.list_releases(tenant="acme")] == shas[::-1]
    assert len(store.list_releases(tenant="acme", limit=2)) == 2
    assert store.list_releases() == []
    # Each tenant has its own chain.
    assert [r.seq for r in store.list_receipts(tenant="acme")] == [0, 1, 2]


@pytest.mark.parametrize("field", ["actor", "tenant"])
def test_blank_names_are_rejected(store: Store, api_manifest: dict[str, Any], field: str) -> None:
    m = ReleaseManifest.parse(api_manifest)
    kwargs: dict[str, Any] = {"actor": "alice", "tenant": "default", field: "  "}
    with pytest.raises(InvalidInputError):
        store.register_release(m, **kwargs)


def test_api_keys_and_their_receipts(store: Store) -> None:
    h1, h2 = "a1" * 32, "b2" * 32
    assert store.keys.find(h1) is None
    made = store.keys.create(key_hash=h1, role="admin", name="ops", tenant="t", actor="op")
    key = store.keys.find(h1)
    assert key is not None and key.revoked_at is None
    assert (key.role, key.name, key.tenant) == ("admin", "ops", "t")
    assert (made.kind, made.tenant, made.release_sha256) == ("key_create", "t", TENANT_SUBJECT)
    assert made.evidence == {"key_sha256": h1, "role": "admin", "name": "ops"}
    with pytest.raises(InvalidInputError, match="already exists"):
        store.keys.create(key_hash=h1, role="viewer", name="again", tenant="t", actor="op")
    with pytest.raises(InvalidInputError, match="role"):
        store.keys.create(key_hash=h2, role="root", name="x", tenant="t", actor="op")
    # A key is named by a prefix of its hash, only within its tenant.
    assert store.keys.resolve(h1[:8], tenant="t").key_hash == h1
    with pytest.raises(NotFoundError):
        store.keys.resolve(h1[:8], tenant="other")
    revoked = store.keys.revoke(key, actor="op", reason="left the team")
    assert (revoked.kind, revoked.prev_receipt_sha256) == ("key_revoke", made.receipt_sha256)
    again = store.keys.find(h1)
    assert again is not None and (again.revoked_by, again.revoke_reason) == ("op", "left the team")
    with pytest.raises(InvalidTransitionError, match="already revoked"):
        store.keys.revoke(again, actor="op", reason="twice")
    assert [k.key_hash for k in store.keys.list(tenant="t")] == [h1]
    assert store.keys.list(tenant="other") == []
    assert [r.kind for r in store.list_receipts(tenant="t")] == ["key_create", "key_revoke"]


def test_reopen_keeps_data_and_does_not_remigrate(
    store: Store, store_url: str | None, api_manifest: dict[str, Any]
) -> None:
    m = ReleaseManifest.parse(api_manifest)
    store.register_release(m, actor="alice")
    again = Store.open(store_url, data_dir=store.data_dir)
    try:
        assert again.get_release(m.sha256, tenant="default").manifest == m
    finally:
        again.close()


def test_stored_manifest_altered_in_database_is_detected(
    store: Store, api_manifest: dict[str, Any], bypass_append_only: Any
) -> None:
    m = ReleaseManifest.parse(api_manifest)
    store.register_release(m, actor="alice")
    altered = m.canonical_bytes().decode().replace("gpt-4o-mini", "gpt-4o-max!")
    with bypass_append_only(store, "releases") as conn:
        conn.execute(sa.text("UPDATE releases SET manifest = :m"), {"m": altered})
    with pytest.raises(IntegrityError, match="altered in the database"):
        store.get_release(m.sha256, tenant="default")


def test_short_id_collision_is_refused_not_fatal(
    store: Store, api_manifest: dict[str, Any]
) -> None:
    """Two releases whose sha256 share the first 12 hex both register; the short id then
    names neither, the sha256 names each."""
    from relgate.store.schema import releases, tenant_releases

    m = ReleaseManifest.parse(api_manifest)
    store.register_release(m, actor="alice")
    twin = m.sha256[:12] + "f" * 52
    with store.db.engine.begin() as conn:  # a second release with the same short id
        for table in (releases, tenant_releases):
            row = conn.execute(sa.select(table).where(table.c.sha256 == m.sha256)).one()
            conn.execute(table.insert().values({**row._asdict(), "sha256": twin}))
    assert store.get_release(m.sha256, tenant="default").sha256 == m.sha256
    with pytest.raises(InvalidInputError, match="more than one release"):
        store.get_release(m.release_id, tenant="default")
    with pytest.raises(InvalidInputError, match="more than one release"):
        store.get_release(m.sha256[:12], tenant="default")


def test_persistent_constraint_refusal_is_an_integrity_error(
    store: Store, api_manifest: dict[str, Any]
) -> None:
    with store.db.engine.begin() as conn:  # the database refuses every new release
        if store.dialect == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON releases "
                "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE unique_violation USING MESSAGE = 'refused by test'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON releases "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
    with pytest.raises(IntegrityError, match="refused by test") as info:
        store.register_release(ReleaseManifest.parse(api_manifest), actor="alice")
    assert info.value.rule == "store_constraint"
    assert store.list_receipts() == []
