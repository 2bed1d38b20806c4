"""Concurrent registration through gRPC: one sha, one release, one receipt; one linear chain.

Runs on every configured store backend (SQLite always; PostgreSQL when
RELGATE_TEST_POSTGRES_URL is set, see tests/conftest.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from relgate.client import RelgateClient
from relgate.service.server import BackgroundServer, RunningServer
from service_helpers import manifest_bytes


@pytest.fixture
def backend_server(store_url: str | None, tmp_path: Path) -> Iterator[RunningServer]:
    with BackgroundServer(tmp_path / "data", store_url=store_url) as running:
        yield running


def _key(server: RunningServer) -> str:
    assert server.admin_key_path is not None
    return server.admin_key_path.read_text().strip()


def test_same_content_from_many_clients(backend_server: RunningServer) -> None:
    key = _key(backend_server)
    clients = [RelgateClient(backend_server.address, api_key=key) for _ in range(8)]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            results = list(pool.map(lambda c: c.register_release(manifest_bytes(42)), clients * 3))
    finally:
        for c in clients:
            c.close()
    assert len({r.release.sha256 for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len({r.receipt.receipt_sha256 for r in results}) == 1
    with RelgateClient(backend_server.address, api_key=key) as admin:
        assert len(admin.list_releases()) == 1
        assert [r.kind for r in admin.list_receipts()] == ["key_create", "register"]


def test_different_content_concurrently_keeps_one_chain(backend_server: RunningServer) -> None:
    with (
        RelgateClient(backend_server.address, api_key=_key(backend_server)) as admin,
        ThreadPoolExecutor(8) as pool,
    ):
        results = list(pool.map(lambda n: admin.register_release(manifest_bytes(n)), range(24)))
        assert all(r.created for r in results)
        receipts = admin.list_receipts()
        assert admin.verify_receipts().ok
    # The bootstrap key's key_create receipt, then the 24 registrations.
    assert len(receipts) == 25 and receipts[0].kind == "key_create"
    # One linear tenant chain: each receipt links to the one before it, no forks.
    assert [r.seq for r in receipts] == list(range(25))
    for before, after in itertools.pairwise(receipts):
        assert after.prev_receipt_sha256 == before.receipt_sha256
