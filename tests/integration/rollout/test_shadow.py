"""Cold start: a release with no previous release is shadowed against the live one (mirrored
traffic, answered and recorded, never served) until a human promotes it after the shadow."""

from __future__ import annotations

import pytest
from relgate.errors import InvalidTransitionError
from rollout_helpers import FAST_SPEC, PHASE, Env, releases_of, wait_for


def test_cold_start_is_shadowed_then_promoted_by_a_human(env: Env) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    v1 = env.shas["v1"]
    fresh = env.register("fresh", "b2")  # a new model line: previous_release is null
    ro = env.client.start_rollout(fresh, overrides={**FAST_SPEC, "shadow_s": 600})
    assert ro.status.phase == PHASE.ROLLOUT_PHASE_SHADOW
    assert "shadow_start" in env.kinds(fresh)
    load = env.traffic(100)
    assert releases_of(load.records) == {v1}  # nothing served by the shadow
    traces = env.server.rollouts.traces
    wait_for(lambda: len(traces.slices(shadow=True)) == 2, what="mirrored traces")
    mirrored = [t for t in traces.all_traces() if t.shadow]
    assert mirrored and {t.release_sha256 for t in mirrored} == {fresh}
    assert all(t.answer for t in mirrored)
    # A promote during the shadow is refused with the reason (never accepted and ignored);
    # after it, a human promotes.
    with pytest.raises(InvalidTransitionError, match=r"cold-start shadow for 600 s more"):
        env.client.control("Promote", ro.rollout_id, "too early")
    env.clock.advance(601)
    wait_for(
        lambda: "Shadow: shadow complete" in env.client.get_rollout(ro.rollout_id).status.message
    )
    assert env.server.rollouts.live_release("default") == v1
    env.client.control("Promote", ro.rollout_id, "shadow looked good")
    env.wait_phase(ro.rollout_id, PHASE.ROLLOUT_PHASE_OBSERVING)
    assert "shadow_end" in env.kinds(fresh)
    assert releases_of(env.traffic(40).records) == {fresh}
