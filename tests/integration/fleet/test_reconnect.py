"""A replica that loses the control plane keeps serving its last snapshot, says so on /healthz,
and re-syncs when a control plane is back (a new epoch: its snapshot is served, never an older
release than the one acked)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from relgate.client import RelgateClient
from relgate.service.server import BackgroundServer
from relgate.testing.backends import BackendKnobs, TestBackend
from relgate.testing.fleet import start_replicas, stop_replicas
from relgate.testing.loadgen import LoadSpec, run_load

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(pred: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _manifest(url: str) -> bytes:
    return json.dumps(
        {
            "model": {"kind": "api", "provider": "t", "model": "m-v1", "endpoint": url},
            "prompt_template": {"ref": "v1", "template": "{input}", "variables": ["input"]},
            "routing": [{}],
            "dataset": {"ref": "d", "sha256": "ab" * 32},
            "previous_release": None,
        }
    ).encode()


def test_replica_serves_through_a_control_plane_outage_and_resyncs(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    backend = TestBackend("b1", BackendKnobs())
    asyncio.run_coroutine_threadsafe(backend.start(), loop).result(10)
    port = _free_port()
    data = tmp_path / "data"
    bg = BackgroundServer(data, grpc_port=port, web_port=0)
    server = bg.start()
    key = (data / "admin.key").read_text().strip()
    replicas = []
    try:
        with RelgateClient(server.address, api_key=key) as c:
            v1 = c.register_release(_manifest(backend.base_url)).release.sha256
        assert server.rollouts.options.judge is not None  # the monitor's judge names the gate's
        judge_sha = server.rollouts.options.judge().judge_sha256
        result = {"verdict": "pass", "gate_result_sha256": "cd" * 32, "judge_sha256": judge_sha}
        server.store.record_decision(
            tenant="default", release_sha=v1, kind="gate_pass", evidence=result, actor="t",
            reason="t", facts=[("gate_result", result)],
        )  # fmt: skip
        with RelgateClient(server.address, api_key=key) as c:
            boot = c.start_rollout(v1, overrides={"shadow_s": 0})
            c.control("Promote", boot.rollout_id, "bootstrap")
        replicas = start_replicas(server.address, key, 1)
        (r,) = replicas
        _wait(lambda: r.health().get("serving"), 20, "the replica's first snapshot")
        first = r.health()["serving"]["default"]

        bg.stop()  # the control plane is gone
        _wait(lambda: r.health()["status"] == "stale", 20, "the replica to notice")
        h = r.health()
        assert not h["control_plane_connected"] and h["serving"]["default"] == first
        spec = LoadSpec(url=r.url + "/v1/chat/completions", rate_per_s=50, max_requests=20,
                        max_seconds=10, sessions=100)  # fmt: skip
        load = asyncio.run(run_load(spec))
        assert {x.status for x in load.records} == {200}
        assert {x.release for x in load.records} == {v1}

        bg = BackgroundServer(data, grpc_port=port, web_port=0)  # back, on the same address
        bg.start()
        _wait(lambda: r.health()["status"] == "ok", 30, "the replica to re-sync")
        now = r.health()["serving"]["default"]
        assert now["epoch"] > first["epoch"]  # the new control plane's snapshot is served
        load = asyncio.run(run_load(spec))
        assert {x.status for x in load.records} == {200}
        assert {x.release for x in load.records} == {v1}
    finally:
        stop_replicas(replicas)
        bg.stop()
        asyncio.run_coroutine_threadsafe(backend.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
