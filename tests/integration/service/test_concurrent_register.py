"""Concurrent registration of the same content: one sha, one release, one receipt."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

from relgate.client import RelgateClient
from relgate.service.server import RunningServer
from service_helpers import manifest_bytes


def test_same_content_from_many_clients(server: RunningServer, admin_key: str) -> None:
    clients = [RelgateClient(server.address, api_key=admin_key) for _ in range(8)]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            results = list(pool.map(lambda c: c.register_release(manifest_bytes(42)), clients * 3))
    finally:
        for c in clients:
            c.close()
    assert len({r.release.sha256 for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len({r.receipt.receipt_sha256 for r in results}) == 1
    with RelgateClient(server.address, api_key=admin_key) as admin:
        assert len(admin.list_releases()) == 1
        receipts = admin.list_receipts()
        assert [r.kind for r in receipts] == ["register"]


def test_different_content_concurrently_keeps_one_chain(
    server: RunningServer, admin_key: str
) -> None:
    with RelgateClient(server.address, api_key=admin_key) as admin, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: admin.register_release(manifest_bytes(n)), range(24)))
        assert all(r.created for r in results)
        receipts = admin.list_receipts()
    assert len(receipts) == 24
    # One linear tenant chain: each receipt links to the one before it, no forks.
    assert [r.seq for r in receipts] == list(range(24))
    for before, after in itertools.pairwise(receipts):
        assert after.prev_receipt_sha256 == before.receipt_sha256
