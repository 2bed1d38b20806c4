"""Concurrent writers: one sha and one receipt per content, chains that never fork, and a
writer killed mid-stream leaves releases and receipts in step."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from relgate.manifest import ReleaseManifest
from relgate.receipts import Receipt
from relgate.store import RegisterResult, Store

THREADS = 8


def _assert_linear(receipts: list[Receipt]) -> None:
    assert [r.seq for r in receipts] == list(range(len(receipts)))
    prev = None
    for r in receipts:
        assert r.prev_receipt_sha256 == prev
        prev = r.receipt_sha256


def _run_threads(target: Any, n: int) -> list[Any]:
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_register_of_same_content_threads(
    store: Store, api_manifest: dict[str, Any]
) -> None:
    m = ReleaseManifest.parse(api_manifest)
    results: list[RegisterResult] = _run_threads(
        lambda i: store.register_release(m, actor=f"actor{i}"), THREADS
    )
    assert sum(r.created for r in results) == 1
    assert {r.release.sha256 for r in results} == {m.sha256}
    assert {r.receipt.receipt_sha256 for r in results} == {results[0].receipt.receipt_sha256}
    assert len(store.list_receipts()) == 1


def test_concurrent_decisions_never_fork(store: Store, api_manifest: dict[str, Any]) -> None:
    m = ReleaseManifest.parse(api_manifest)
    store.register_release(m, actor="alice")
    per_thread = 5

    def decide(i: int) -> None:
        for j in range(per_thread):
            store.record_decision(
                tenant="default",
                release_sha=m.sha256,
                kind="checkpoint_promote",
                evidence={"thread": i, "step": j},
                actor=f"t{i}",
                reason="",
                facts=[("rollout_step", {"thread": i, "step": j})],
            )

    _run_threads(decide, THREADS)
    receipts = store.list_receipts()
    assert len(receipts) == 1 + THREADS * per_thread
    _assert_linear(receipts)
    release_chain = store.list_receipts(release_sha=m.sha256)
    for prev, cur in itertools.pairwise(release_chain):
        assert cur.prev_release_receipt_sha256 == prev.receipt_sha256
    assert len(store.facts(m.sha256, tenant="default")) == THREADS * per_thread


def _process_worker(args: tuple[str | None, str, dict[str, Any], int]) -> tuple[bool, str]:
    url, data_dir, manifest, i = args
    store = Store.open(url, data_dir=Path(data_dir))
    try:
        m = ReleaseManifest.parse(manifest)
        result = store.register_release(m, actor=f"proc{i}")
        for step in range(3):
            store.record_decision(
                tenant="default",
                release_sha=m.sha256,
                kind="checkpoint_hold",
                evidence={"proc": i, "step": step},
                actor=f"proc{i}",
                reason="",
            )
        return result.created, result.receipt.receipt_sha256
    finally:
        store.close()


def test_concurrent_processes(
    store: Store, store_url: str | None, api_manifest: dict[str, Any]
) -> None:
    n = 4
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(n) as pool:
        results = pool.map(
            _process_worker, [(store_url, str(store.data_dir), api_manifest, i) for i in range(n)]
        )
    assert sum(created for created, _ in results) == 1
    assert len({sha for _, sha in results}) == 1
    receipts = store.list_receipts()
    assert len(receipts) == 1 + 3 * n
    assert sum(r.kind == "register" for r in receipts) == 1
    _assert_linear(receipts)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from relgate.manifest import ReleaseManifest
    from relgate.store import Store
    import json
    url = sys.argv[1] or None
    store = Store.open(url, data_dir=Path(sys.argv[2]))
    base = json.loads(sys.argv[3])
    i = 0
    while True:
        base["prompt_template"]["ref"] = f"r{i}"
        store.register_release(ReleaseManifest.parse(base), actor="writer")
        i += 1
    """
)


def test_killed_writer_leaves_releases_and_receipts_in_step(
    store: Store, store_url: str | None, api_manifest: dict[str, Any]
) -> None:
    import json

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            store_url or "",
            str(store.data_dir),
            json.dumps(api_manifest),
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        deadline = time.monotonic() + 60
        while len(store.list_receipts()) < 20:
            assert proc.poll() is None, "writer exited early"
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.01)  # polling the store with a deadline, not waiting for state
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    receipts = store.list_receipts()
    releases = store.list_releases(limit=100_000)
    assert {r.release_sha256 for r in receipts} == {r.sha256 for r in releases}
    assert len(receipts) == len(releases)
    _assert_linear(receipts)
