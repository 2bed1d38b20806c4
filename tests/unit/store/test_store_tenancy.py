"""Tenancy is a boundary: what one tenant registered, decided or keyed does not exist for
another, and nothing stored can be replaced, even with SQL the store never writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from relgate.errors import NotFoundError
from relgate.manifest import ReleaseManifest
from relgate.store import Store
from relgate.store.migrate import alembic_config


def _manifest(
    api_manifest: dict[str, Any], ref: str, previous: str | None = None
) -> ReleaseManifest:
    data = {**api_manifest, "prompt_template": {**api_manifest["prompt_template"], "ref": ref}}
    if previous is not None:
        data["previous_release"] = previous
    return ReleaseManifest.parse(data)


def test_the_same_content_is_a_release_of_each_tenant_that_registers_it(
    store: Store, api_manifest: dict[str, Any]
) -> None:
    """Tenant squatting: b registering a's manifest first must not take it from a, nor hand
    a's chain to b; each gets its own release and register receipt."""
    m = _manifest(api_manifest, "v1")
    b = store.register_release(m, actor="bob", tenant="b")
    a = store.register_release(m, actor="alice", tenant="a")
    assert a.created and b.created
    assert (a.receipt.tenant, a.receipt.seq, a.receipt.actor) == ("a", 0, "alice")
    assert store.get_release(m.sha256, tenant="a").actor == "alice"
    assert store.get_release(m.sha256, tenant="b").actor == "bob"
    again = store.register_release(m, actor="alice", tenant="a")
    assert not again.created and again.receipt == a.receipt


def test_another_tenants_release_does_not_exist(store: Store, api_manifest: dict[str, Any]) -> None:
    m = _manifest(api_manifest, "secret")
    store.register_release(m, actor="alice", tenant="a")
    store.record_decision(
        tenant="a",
        release_sha=m.sha256,
        kind="gate_pass",
        evidence={},
        actor="gate",
        reason="",
        facts=[("gate_result", {"verdict": "PASS"})],
    )
    for handle in (m.sha256, m.sha256[:8], m.release_id):
        with pytest.raises(NotFoundError):
            store.get_release(handle, tenant="b")
    assert store.list_releases(tenant="b") == []
    assert store.facts(m.sha256, tenant="b") == []
    assert store.list_receipts(tenant="b") == []
    with pytest.raises(NotFoundError):
        store.record_decision(
            tenant="b",
            release_sha=m.sha256,
            kind="gate_override",
            evidence={},
            actor="mallory",
            reason="",
        )


def test_previous_release_must_be_the_tenants_own(
    store: Store, api_manifest: dict[str, Any]
) -> None:
    first = _manifest(api_manifest, "v1")
    store.register_release(first, actor="alice", tenant="a")
    second = _manifest(api_manifest, "v2", previous=first.sha256)
    with pytest.raises(NotFoundError, match="previous_release"):
        store.register_release(second, actor="bob", tenant="b")
    assert store.register_release(second, actor="alice", tenant="a").created


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("releases", "sha256"),
        ("tenant_releases", "sha256"),
        ("receipts", "receipt_sha256"),
        ("api_keys", "key_hash"),
    ],
)
def test_sqlite_insert_or_replace_cannot_swap_a_row(
    store: Store, api_manifest: dict[str, Any], table: str, column: str
) -> None:
    """REPLACE deletes the old row without firing DELETE triggers; BEFORE INSERT triggers
    refuse it, so an append-only row cannot be swapped for another with the same key."""
    if store.dialect != "sqlite":
        pytest.skip("INSERT OR REPLACE is SQLite's")
    m = _manifest(api_manifest, "v1")
    store.register_release(m, actor="alice")
    store.keys.create(key_hash="ab" * 32, role="viewer", name="v", tenant="default", actor="op")
    with store.db.engine.connect() as conn:
        row = conn.execute(sa.text(f"SELECT * FROM {table} LIMIT 1")).mappings().one()
    changed = {k: ("evil" if k in ("actor", "name", "body") else v) for k, v in row.items()}
    if table == "api_keys":
        changed["role"] = "operator"
    cols = ", ".join(changed)
    params = ", ".join(f":{k}" for k in changed)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.db.engine.begin() as conn:
        conn.execute(sa.text(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({params})"), changed)
    with store.db.engine.connect() as conn:
        after = (
            conn.execute(sa.text(f"SELECT * FROM {table} WHERE {column} = :v"), {"v": row[column]})
            .mappings()
            .one()
        )
    assert dict(after) == dict(row)


def test_upgrade_keeps_every_release_with_its_tenant(
    tmp_path: Path, api_manifest: dict[str, Any]
) -> None:
    """A store written before tenant_releases existed upgrades with its releases, receipts and
    keys intact, each release its registering tenant's."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    m = _manifest(api_manifest, "v1")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        command.upgrade(alembic_config(conn), "0002")
        conn.execute(
            sa.text(
                "INSERT INTO releases (sha256, release_id, tenant, manifest, previous_release, "
                "actor, created_at) VALUES (:s, :i, 't1', :m, NULL, 'alice', '2026-01-01')"
            ),
            {"s": m.sha256, "i": m.release_id, "m": m.canonical_bytes().decode()},
        )
        conn.execute(
            sa.text(
                "INSERT INTO api_keys (key_hash, role, name, tenant, created_at) "
                "VALUES ('ab', 'admin', 'old', 't1', '2026-01-01')"
            )
        )
    engine.dispose()
    store = Store.open(url, data_dir=tmp_path)
    try:
        assert store.get_release(m.sha256, tenant="t1").actor == "alice"
        with pytest.raises(NotFoundError):
            store.get_release(m.sha256, tenant="default")
        key = store.keys.find("ab")
        assert key is not None and (key.role, key.tenant, key.revoked_at) == ("admin", "t1", None)
    finally:
        store.close()
