"""SIGKILL of ``relgate serve`` mid-rollout: the restarted server resumes the same rollout at the
same step with the same hold clock, re-applies its routing, and finishes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from relgate.client import RelgateClient
from relgate.judge.base import Judge
from relgate.store import Store
from relgate.testing.backends import BackendKnobs, TestBackend
from rollout_helpers import (
    PHASE,
    LoopThread,
    ServeProc,
    demo_qa,
    manifest,
    record_gate,
    releases_of,
    start_serve,
    traffic,
    wait_for,
)

SPEC = {
    # 100x clock: a 300 s hold is 3 s of wall time.
    "steps": [
        {"weight_bp": 2500, "dwell_s": 300, "min_requests": 5, "deadline_s": 30000},
        {"weight_bp": 10000},
    ],
    "thresholds": {
        "p95_ratio": 3.0,
        "min_latency_samples": 5,
        "min_error_requests": 5,
        "min_replay_rows": 5,
    },
}


@pytest.fixture
def backends() -> Iterator[dict[str, TestBackend]]:
    loop = LoopThread()
    _, answers = demo_qa()
    made = {
        n: TestBackend(n, BackendKnobs(answers=answers, base_latency_s=0.01)) for n in ("b1", "b2")
    }
    for b in made.values():
        loop.run(b.start())
    yield made
    for b in made.values():
        loop.run(b.stop())
    loop.close()


def test_sigkill_mid_rollout_resumes(
    tmp_path: Path, backends: dict[str, TestBackend], judge: Judge
) -> None:
    """(``judge``: the server's default, the embedding judge, which the gate results name.)"""
    data = tmp_path / "data"
    prompts, _ = demo_qa()
    args = ("--time-scale", "100", "--rollout-tick", "0.05", "--log-level", "WARNING")
    procs: list[ServeProc] = []
    try:
        first = start_serve(data, *args)
        procs.append(first)
        key = (data / "admin.key").read_text().strip()
        store = Store.open(None, data_dir=data)
        try:
            with RelgateClient(first.address, api_key=key, timeout=60) as c:
                v1 = c.register_release(manifest("v1", backends["b1"], None)).release.sha256
                record_gate(store, v1, "pass", judge.judge_sha256)
                boot = c.start_rollout(v1, overrides={"shadow_s": 0})
                c.control("Promote", boot.rollout_id, "bootstrap")
                v2 = c.register_release(manifest("v2", backends["b2"], v1)).release.sha256
                record_gate(store, v2, "pass", judge.judge_sha256)
                ro = c.start_rollout(v2, overrides=SPEC)
                before = c.get_rollout(ro.rollout_id)
                load = traffic(first.gateway + "/v1/chat/completions", prompts, 80)
                assert releases_of(load.records) == {v1, v2}  # the canary is live
                mid = c.get_rollout(ro.rollout_id)
                assert mid.status.phase == PHASE.ROLLOUT_PHASE_PROGRESSING
                assert mid.status.weight_bp == 2500
        finally:
            store.close()
        first.kill()  # mid-hold: no shutdown code runs

        second = start_serve(data, *args)
        procs.append(second)
        url = second.gateway + "/v1/chat/completions"
        with RelgateClient(second.address, api_key=key, timeout=60) as c:
            again = c.get_rollout(ro.rollout_id)
            assert again.release_sha256 == v2
            assert again.status.step_index == 0 and again.status.weight_bp == 2500
            # Same hold clock: the step started when it started, not at the restart.
            assert again.status.step_started_at == before.status.step_started_at
            # The routing was re-applied from the facts: the canary serves again.
            assert releases_of(traffic(url, prompts, 80).records) == {v1, v2}

            def finished() -> bool:
                traffic(url, prompts, 40)
                return c.get_rollout(ro.rollout_id).status.phase == PHASE.ROLLOUT_PHASE_OBSERVING

            wait_for(finished, timeout=90, what="the resumed rollout to complete")
            assert releases_of(traffic(url, prompts, 40).records) == {v2}
            kinds = [r.kind for r in c.list_receipts(release_sha256=v2)]
        assert kinds.count("rollout_start") == 1
        assert kinds.count("checkpoint_promote") == 1
    finally:
        for p in procs:
            p.stop()
