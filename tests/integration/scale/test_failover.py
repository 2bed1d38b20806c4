"""Two ``relgate serve`` processes on one PostgreSQL: one leads (ticks, decides), the other
follows (serves reads, refuses commands, its gateway follows the routing). SIGKILL the leader
mid-canary: the follower takes the lease over with the next epoch and finishes the rollout, with
no duplicate decision and one unbroken receipt chain. The failover time is measured."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from relgate.client import RelgateClient
from relgate.errors import InvalidTransitionError, NotFoundError
from relgate.store import Store
from relgate.testing.backends import BackendKnobs, TestBackend
from scale_helpers import assert_one_chain, default_judge_sha, fresh_postgres, wait_for_lease

from rollout_helpers import (  # isort: skip (on the path once scale_helpers is imported)
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

TTL_S = 2.0
SPEC = {
    # 100x clock: each 300 s hold is 3 s of wall time.
    "steps": [
        {"weight_bp": 2500, "dwell_s": 300, "min_requests": 5, "deadline_s": 30000},
        {"weight_bp": 5000, "dwell_s": 300, "min_requests": 5, "deadline_s": 30000},
        {"weight_bp": 10000},
    ],
    "thresholds": {
        "p95_ratio": 3.0,
        "min_latency_samples": 5,
        "min_error_requests": 5,
        "min_replay_rows": 5,
    },
}
DECISIONS = ("rollout_start", "checkpoint_promote", "rollout_complete", "auto_rollback")


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


@pytest.mark.slow
def test_sigkill_the_leader_mid_canary(tmp_path: Path, backends: dict[str, TestBackend]) -> None:
    data = tmp_path / "data"
    prompts, _ = demo_qa()
    procs: list[ServeProc] = []
    with fresh_postgres() as url:
        args = (
            "--store", url, "--time-scale", "100", "--rollout-tick", "0.05",
            "--lease-ttl", str(TTL_S), "--log-level", "INFO",
        )  # fmt: skip
        store = Store.open(url, data_dir=tmp_path / "observer")
        try:
            leader = start_serve(data, *args)
            procs.append(leader)
            first, _ = wait_for_lease(store, not_holder=None, timeout=30)
            follower = start_serve(data, *args)  # the same keys and clock anchor
            procs.append(follower)
            key = (data / "admin.key").read_text().strip()
            with (
                RelgateClient(leader.address, api_key=key, timeout=60) as c,
                RelgateClient(follower.address, api_key=key, timeout=60) as f,
            ):
                v1 = c.register_release(manifest("v1", backends["b1"], None)).release.sha256
                record_gate(store, v1, "pass", default_judge_sha())
                boot = c.start_rollout(v1, overrides={"shadow_s": 0})
                c.control("Promote", boot.rollout_id, "bootstrap")
                v2 = c.register_release(manifest("v2", backends["b2"], v1)).release.sha256
                record_gate(store, v2, "pass", default_judge_sha())
                ro = c.start_rollout(v2, overrides=SPEC)

                # The follower serves reads and the same routing, rebuilt from the store...
                def sees_canary() -> bool:
                    try:
                        return f.get_rollout(ro.rollout_id).status.weight_bp == 2500
                    except NotFoundError:
                        return False  # not refreshed yet

                wait_for(sees_canary, timeout=30, what="the follower to see the canary")
                # ...and refuses commands, naming the leader.
                with pytest.raises(InvalidTransitionError, match="follows; the leader is"):
                    f.control("Pause", ro.rollout_id, "not here")
                fgw = follower.gateway + "/v1/chat/completions"
                assert releases_of(traffic(fgw, prompts, 80).records) == {v1, v2}
                load = traffic(leader.gateway + "/v1/chat/completions", prompts, 80)
                assert releases_of(load.records) == {v1, v2}
                mid = c.get_rollout(ro.rollout_id)
                assert mid.status.phase == PHASE.ROLLOUT_PHASE_PROGRESSING

                t_kill = time.monotonic()
                leader.kill()  # mid-canary: no shutdown code runs, the lease is left to expire
                taken, t_taken = wait_for_lease(store, not_holder=first.holder, timeout=30)
                failover_s = t_taken - t_kill
                print(f"failover: {failover_s:.3f} s (lease ttl {TTL_S} s)")
                assert taken.epoch == first.epoch + 1
                assert failover_s <= TTL_S + 1.0

                def finished() -> bool:
                    traffic(fgw, prompts, 40)
                    phase = f.get_rollout(ro.rollout_id).status.phase
                    return phase == PHASE.ROLLOUT_PHASE_OBSERVING

                wait_for(finished, timeout=120, what="the new leader to finish the rollout")
                assert releases_of(traffic(fgw, prompts, 40).records) == {v2}
        finally:
            for p in procs:
                p.stop()
            receipts = store.list_receipts()
            store.close()
        assert_one_chain(receipts)
        mine = [r for r in receipts if r.release_sha256 == v2]
        kinds = [r.kind for r in mine]
        # Each decision once: one start, one promote per step (25% -> 50% -> 100%), no rollback.
        assert kinds.count("rollout_start") == 1
        assert kinds.count("checkpoint_promote") == 2
        assert "auto_rollback" not in kinds
        epochs = [r.evidence["leader_epoch"] for r in mine if "leader_epoch" in r.evidence]
        assert epochs == sorted(epochs) and epochs[0] == first.epoch and epochs[-1] == taken.epoch
        # The follower's log says when it took over.
        assert any("leading the control plane" in line for line in follower.stderr)
