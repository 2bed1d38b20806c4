"""A gateway fleet end to end: a control plane (SQLite; PostgreSQL when
RELGATE_TEST_POSTGRES_URL is set), three ``relgate gateway`` processes on loopback, test backends.

A canary of v2 rolls under traffic spread over the three replicas; v2's backend fails a third of
its requests, so the first checkpoint rolls it back automatically. Every swap (the canary step
and the rollback) is acked by every replica within its deadline (a ``swap_acked`` receipt per
swap says so), and no request is lost or mixed: each answer comes from the backend, model and
system prompt of the release its ``x-relgate-release`` header names.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from relgate._proto.relgate.v1 import rollout_pb2
from relgate.app.probes import ProbeOptions
from relgate.app.rollouts import RolloutOptions
from relgate.client import RelgateClient
from relgate.judge.base import Judge
from relgate.service.server import BackgroundServer, RunningServer
from relgate.testing.backends import BackendKnobs, TestBackend
from relgate.testing.fleet import Replica, start_replicas, stop_replicas
from relgate.testing.loadgen import LoadResult, LoadSpec, run_load

pytestmark = pytest.mark.slow
PHASE = rollout_pb2.RolloutPhase
ACK_DEADLINE_S = 5.0


def _manifest(tag: str, backend: TestBackend, previous: str | None) -> bytes:
    return json.dumps(
        {
            "model": {"kind": "api", "provider": "openai-compatible", "model": f"model-{tag}",
                      "endpoint": backend.base_url},
            "prompt_template": {"ref": f"test/{tag}", "system": f"system of {tag}",
                                "template": f"[{tag}] {{input}}", "variables": ["input"]},
            "routing": [{}],
            "dataset": {"ref": "truthfulqa-demo", "sha256": "ab" * 32},
            "previous_release": previous,
        }
    ).encode()  # fmt: skip


def _gate(server: RunningServer, sha: str) -> None:
    # Gated with the judge the server's quality monitor scores with (a rollout refuses others).
    assert server.rollouts.options.judge is not None
    judge_sha = server.rollouts.options.judge().judge_sha256
    result = {"verdict": "pass", "gate_result_sha256": "cd" * 32, "judge_sha256": judge_sha}
    server.store.record_decision(
        tenant="default", release_sha=sha, kind="gate_pass", evidence=result, actor="test",
        reason="test gate", facts=[("gate_result", result)],
    )  # fmt: skip


@pytest.fixture(scope="module")
def judge() -> Judge:
    """The gate's CPU judge on the shipped MiniLM model (the quality monitor's)."""
    from relgate.judge.embedding import EmbeddingJudge

    return EmbeddingJudge()


def _wait(pred: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def fleet(
    tmp_path: Path, store_url: str | None, judge: Judge
) -> Iterator[tuple[RunningServer, RelgateClient, dict, list[Replica]]]:
    loop = _Loop()
    backends = {n: TestBackend(n, BackendKnobs(base_latency_s=0.01), seed=i)
                for i, n in enumerate(("b1", "b2"))}  # fmt: skip
    for b in backends.values():
        loop.run(b.start())
    options = RolloutOptions(
        tick_interval_s=0.05, judge=lambda: judge, drain_deadline_s=5.0,
        ack_deadline_s=ACK_DEADLINE_S, probe=ProbeOptions(replay_interval_s=3600.0),
    )  # fmt: skip
    # SQLite, and PostgreSQL too when RELGATE_TEST_POSTGRES_URL is set (tests/conftest.py).
    bg = BackgroundServer(tmp_path / "data", rollout=options, store_url=store_url)
    server = bg.start()
    key = (tmp_path / "data" / "admin.key").read_text().strip()
    client = RelgateClient(server.address, api_key=key, timeout=60)
    replicas: list[Replica] = []
    try:
        replicas = start_replicas(server.address, key, 3)
        yield server, client, backends, replicas
    finally:
        stop_replicas(replicas)
        client.close()
        bg.stop()
        for b in backends.values():
            loop.run(b.stop())
        loop.close()


def _load(replicas: list[Replica], seconds: float, rate: float, tag: str) -> list[LoadResult]:
    """Traffic spread over every replica at once (one load generator per replica)."""
    out: list[LoadResult] = []

    def one(r: Replica) -> None:
        spec = LoadSpec(
            url=r.url + "/v1/chat/completions",
            rate_per_s=rate,
            max_requests=int(rate * seconds),
            max_seconds=seconds + 30,
            sessions=100_000,
            session_prefix=f"{tag}-{r.name}-",
            timeout_s=30,
        )
        out.append(asyncio.run(run_load(spec)))

    threads = [threading.Thread(target=one, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_a_canary_rolled_back_automatically_is_acked_by_every_replica(fleet: Any) -> None:
    server, client, backends, replicas = fleet
    v1 = client.register_release(_manifest("v1", backends["b1"], None)).release.sha256
    v2 = client.register_release(_manifest("v2", backends["b2"], v1)).release.sha256
    _gate(server, v1)
    _gate(server, v2)
    tag_of = {v1: ("v1", "b1"), v2: ("v2", "b2")}
    boot = client.start_rollout(v1, overrides={"shadow_s": 0})
    client.control("Promote", boot.rollout_id, "bootstrap")
    _wait(lambda: all(r.health()["serving"] for r in replicas), 20, "replicas serving v1")
    assert all(r.health()["control_plane_connected"] for r in replicas)

    backends["b2"].set_knobs(error_probability=0.35)
    spec = {
        "steps": [
            {"weight_bp": 5000, "dwell_s": 2, "min_requests": 30, "deadline_s": 120},
            {"weight_bp": 10000},
        ],
        "thresholds": {"min_error_requests": 30, "min_error_events": 5, "min_latency_samples": 5,
                       "p95_ratio": 50.0, "min_replay_rows": 3},
    }  # fmt: skip
    ro = client.start_rollout(v2, overrides=spec, reason="fleet canary")
    results: list[LoadResult] = []
    runner = threading.Thread(target=lambda: results.extend(_load(replicas, 6.0, 40.0, "a")))
    runner.start()
    try:
        _wait(lambda: client.get_rollout(ro.rollout_id).status.phase
              == PHASE.ROLLOUT_PHASE_ROLLED_BACK, 60, "the automatic rollback")  # fmt: skip
    finally:
        runner.join()
    kinds = [r.kind for r in server.store.list_receipts(release_sha=v2)]
    assert "auto_rollback" in kinds

    # Every replica acked every swap of the rollout within the deadline.
    def acked() -> list[Any]:
        return [r for r in server.store.list_receipts(release_sha=v2) if r.kind == "swap_acked"]

    def rolled_back() -> bool:
        return any(r.evidence["serves"] == v1 and r.evidence["candidate"] is None for r in acked())

    _wait(rolled_back, 2 * ACK_DEADLINE_S + 5, "the rollback's swap_acked")
    names = {r.name for r in replicas} | {"in-process"}
    for receipt in acked():
        ev = receipt.evidence
        assert ev["complete"], ev
        assert set(ev["acked"]) == names, ev
        assert ev["missing"] == []
        assert all(0 <= ms < ACK_DEADLINE_S * 1e3 for ms in ev["acked"].values())
    rollback = [r for r in acked() if r.evidence["candidate"] is None][-1]
    assert rollback.evidence["serves"] == v1
    # The rollback swaps before its receipt is committed; its ack still follows it in the chain.
    chain = [r.receipt_sha256 for r in server.store.list_receipts(release_sha=v2)]
    decision = next(
        r for r in server.store.list_receipts(release_sha=v2) if r.kind == "auto_rollback"
    )
    assert chain.index(decision.receipt_sha256) < chain.index(rollback.receipt_sha256)
    versions = {r.health()["serving"]["default"]["version"] for r in replicas}
    assert versions == {rollback.evidence["version"]}

    # No request lost, none mixed: every request was answered by a release's own backend,
    # model and prompt; the only failures are the candidate backend's injected 500s.
    records = [rec for res in results for rec in res.records if not rec.skipped]
    assert len(records) == 3 * 240
    for rec in records:
        assert rec.release in tag_of, rec
        tag, backend = tag_of[rec.release]
        if rec.status == 200:
            assert f"backend={backend} model=model-{tag} system='system of {tag}'" in rec.answer
        else:
            assert (rec.status, tag) == (500, "v2"), rec
    assert any(rec.release == v2 for rec in records)
    after = [rec for res in _load(replicas, 1.0, 40.0, "b") for rec in res.records]
    assert {rec.release for rec in after} == {v1}
    assert all(rec.status == 200 for rec in after)
    # The replicas' traces reached the control plane: its monitors saw the fleet's traffic.
    assert server.rollouts.traces.served(v2) > 0
