"""The schema: migrations match the tables, append-only triggers, fork-proof constraints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.store import Store
from relgate.store.schema import APPEND_ONLY_TABLES, GENESIS, metadata


def _seed(store: Store, api_manifest: dict[str, Any]) -> str:
    m = ReleaseManifest.parse(api_manifest)
    store.register_release(m, actor="alice")
    store.record_decision(
        tenant="default",
        release_sha=m.sha256,
        kind="gate_pass",
        evidence={},
        actor="gate",
        reason="",
        facts=[("gate_result", {"verdict": "PASS"})],
    )
    store.audit.add_tree_head(
        tenant="default",
        tree_size=2,
        root_hex="ab" * 32,
        timestamp="t",
        signature_b64="s",
        public_key_b64="k",
    )
    store.audit.add_anchor(tenant="default", tree_size=2, root_hex="ab" * 32, sink="dir", ref="f")
    store.keys.create(key_hash="cd" * 32, role="viewer", name="v", tenant="default", actor="alice")
    store.keys.revoke(store.keys.resolve("cd" * 4, tenant="default"), actor="alice", reason="r")
    return m.sha256


def test_migrations_match_the_table_definitions(store: Store) -> None:
    with store.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = Store.open(data_dir=tmp_path)
    try:
        with store.db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (tmp_path / "relgate.db").exists()
    finally:
        store.close()


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
@pytest.mark.parametrize("statement", ["UPDATE {t} SET {c} = 'evil'", "DELETE FROM {t}"])
def test_append_only_tables_refuse_update_and_delete(
    store: Store, api_manifest: dict[str, Any], table: str, statement: str
) -> None:
    _seed(store, api_manifest)
    column = "tenant" if "tenant" in metadata.tables[table].c else "actor"
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.db.engine.begin() as conn:
        conn.exec_driver_sql(statement.format(t=table, c=column))
    with store.db.engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() >= 1
        evil = f"SELECT count(*) FROM {table} WHERE {column} = 'evil'"
        assert conn.exec_driver_sql(evil).scalar() == 0


def test_postgres_refuses_truncate(store: Store, api_manifest: dict[str, Any]) -> None:
    if store.dialect != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL only")
    _seed(store, api_manifest)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.db.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE receipts CASCADE")


def _raw_receipt(**overrides: Any) -> dict[str, Any]:
    row = {
        "receipt_sha256": "ee" * 32,
        "tenant": "default",
        "seq": 99,
        "kind": "gate_pass",
        "release_sha256": "",
        "prev_receipt_sha256": GENESIS,
        "prev_release_receipt_sha256": "dd" * 32,
        "body": "{}",
        "created_at": "t",
    }
    return {**row, **overrides}


@pytest.mark.parametrize(
    "override",
    [
        {},  # a second receipt on the genesis sentinel: a fork of the tenant chain
        {"prev_receipt_sha256": "ff" * 32, "seq": 0},  # a second leaf 0
        {"prev_receipt_sha256": "ff" * 32, "prev_release_receipt_sha256": GENESIS},
        {"prev_receipt_sha256": "ff" * 32, "kind": "register", "seq": 98},
    ],
)
def test_schema_makes_forks_impossible(
    store: Store, api_manifest: dict[str, Any], override: dict[str, Any]
) -> None:
    sha = ReleaseManifest.parse(api_manifest).sha256
    store.register_release(ReleaseManifest.parse(api_manifest), actor="alice")
    from relgate.store.schema import receipts

    with pytest.raises(sa.exc.IntegrityError), store.db.engine.begin() as conn:
        conn.execute(receipts.insert().values(**_raw_receipt(release_sha256=sha, **override)))
    # The same row on a fresh predecessor is accepted: the constraints, not luck, refused it.
    with store.db.engine.begin() as conn:
        conn.execute(
            receipts.insert().values(
                **_raw_receipt(release_sha256=sha, prev_receipt_sha256="ab" * 32)
            )
        )


def test_open_rejects_unusable_urls(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="in memory"):
        Store.open("sqlite://", data_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="unsupported store"):
        Store.open("mysql://u@h/db", data_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="not a database URL"):
        Store.open("::nonsense::", data_dir=tmp_path)


def test_sqlite_writers_take_the_write_lock_up_front(
    tmp_path: Path, api_manifest: dict[str, Any]
) -> None:
    """Writers start with BEGIN IMMEDIATE (two deferred writers could both read the same
    chain head before either locks); readers stay deferred so they never block writers."""
    store = Store.open(data_dir=tmp_path)
    begins: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    sa.event.listen(store.db.engine, "before_cursor_execute", record)
    try:
        store.register_release(ReleaseManifest.parse(api_manifest), actor="alice")
        store.list_receipts()
    finally:
        store.close()
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


@pytest.mark.parametrize(("sync", "level"), [(True, 2), (False, 1)])
def test_sqlite_commit_durability_setting(tmp_path: Path, sync: bool, level: int) -> None:
    store = Store.open(data_dir=tmp_path, sync_commits=sync)
    try:
        with store.db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level  # FULL=2
    finally:
        store.close()
