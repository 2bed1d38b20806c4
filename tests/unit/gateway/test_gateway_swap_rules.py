"""Swap rules and SSE text extraction, without sockets."""

from __future__ import annotations

import json
import threading

import pytest
from relgate.errors import InvalidTransitionError
from relgate.gateway.server import Gateway
from relgate.gateway.upstream import SseText
from relgate.manifest import PromptTemplate
from relgate.routing import ReleaseRoute, RoutingSnapshot

TPL = PromptTemplate(ref="t", template="{input}", variables=("input",))
A = ReleaseRoute("a" * 64, "http://127.0.0.1:1/v1", "m-a", TPL)
B = ReleaseRoute("b" * 64, "http://127.0.0.1:2/v1", "m-b", TPL)


def test_swap_replaces_the_reference_and_versions_must_rise() -> None:
    gw = Gateway(RoutingSnapshot(3, A))
    rec = gw.swap(RoutingSnapshot(4, A, B, 500))
    assert (rec.old_version, rec.new_version) == (3, 4)
    assert gw.snapshot is not None and gw.snapshot.version == 4
    for stale in (3, 4):
        with pytest.raises(InvalidTransitionError):
            gw.swap(RoutingSnapshot(stale, B))
    assert gw.snapshot.candidate == B
    # Tenants are independent: another tenant's first snapshot may have any version.
    other = gw.swap(RoutingSnapshot(1, B, tenant="acme"))
    assert (other.tenant, other.old_version, other.new_version) == ("acme", None, 1)
    assert gw.snapshot.version == 4 and gw.snapshot_of("acme") is not None


def test_concurrent_swappers_never_go_backwards() -> None:
    gw = Gateway(None)
    versions = list(range(1, 401))
    errors: list[int] = []
    accepted: list[int] = []
    seen: list[int] = []
    done = threading.Event()

    def writer(vs: list[int]) -> None:
        for v in vs:
            try:
                accepted.append(gw.swap(RoutingSnapshot(v, A)).new_version)
            except InvalidTransitionError:
                errors.append(v)

    def reader() -> None:
        while not done.is_set():
            snap = gw.snapshot
            if snap is not None:
                seen.append(snap.version)

    watcher = threading.Thread(target=reader)
    watcher.start()
    threads = [threading.Thread(target=writer, args=(versions[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    # What a request can read never goes back, and every swap either won or was refused.
    assert seen == sorted(seen)
    assert len(set(accepted)) == len(accepted)
    assert len(accepted) + len(errors) == len(versions)
    assert gw.snapshot is not None and gw.snapshot.version == max(accepted) == 400


def test_sse_text_survives_arbitrary_chunk_boundaries() -> None:
    parts = ["Hel", "lo, ", "wörld"]
    raw = b"".join(
        b"data: " + json.dumps({"choices": [{"delta": {"content": p}}]}).encode() + b"\n\n"
        for p in parts
    )
    raw += b": keep-alive comment\n\ndata: {not json}\n\ndata: [DONE]\n\n"
    for step in (1, 2, 7, len(raw)):
        sse = SseText()
        for i in range(0, len(raw), step):
            sse.feed(raw[i : i + step])
        assert sse.text == "Hello, wörld"
