"""The traces the replay needs outlive the control plane (app/trace_log.py): a server's
gateway traffic is written to the store in the background, and another control plane started
on the same store (a restart, a new leader) has them in its buffers before it ticks."""

from __future__ import annotations

from pathlib import Path

from relgate.service.server import BackgroundServer
from rollout_helpers import Env, wait_for


def test_a_restarted_control_plane_replays_the_traffic_it_had(env: Env, tmp_path: Path) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    v1 = env.shas["v1"]
    env.traffic(40)
    first = env.server.rollouts.traces
    served = {t.id for t in first.all_traces() if t.release_sha256 == v1 and not t.shadow}
    assert len(served) == 40
    store = env.server.store
    wait_for(lambda: store.traces.count() >= 40, what="the traces written in the background")
    assert env.server.trace_log is not None and env.server.trace_log.queued == 0

    other = BackgroundServer(env.server.data_dir, rollout=env.server.rollouts.options)
    second = other.start()
    try:
        restored = second.rollouts.traces
        assert {t.id for t in restored.all_traces()} >= served
        law = restored.recent("Law", 50, release=v1)
        assert law and all(t.answer and t.prompt for t in law)
        # Restored for the replay only: this process served none of them.
        assert restored.served(v1) == 0 and restored.recorded == 0
    finally:
        other.stop()
