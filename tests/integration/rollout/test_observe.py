"""After 100%: the observer's counted minutes, the automatic rollback, manual rollback, and the
swap under load (no request lost, none mixed, none admitted after the swap on the old route)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from relgate import errors
from relgate.testing.loadgen import LoadResult, LoadSpec, run_load
from rollout_helpers import FAST_SPEC, PHASE, Env, releases_of, wait_for


def _complete(env: Env) -> str:
    """v1 live, v2 (healthy) rolled to 100%; returns the rollout id. The observer runs the
    streak rule (these tests pin its minute-by-minute semantics; the sequential rule is
    tested in tests/unit/rollout/test_rollout_sequential.py)."""
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    spec = {**FAST_SPEC, "observer": {**FAST_SPEC.get("observer", {}), "rule": "streak"}}
    ro = env.client.start_rollout(v2, overrides=spec)
    for weight in (2500, 10000):
        env.traffic(200)
        env.clock.advance(61)
        wait_for(lambda w=weight: env.client.get_rollout(ro.rollout_id).status.weight_bp == w)
    env.wait_phase(ro.rollout_id, PHASE.ROLLOUT_PHASE_OBSERVING)
    assert env.server.rollouts.live_release("default") == v2
    kinds = env.kinds(v2)
    assert kinds.count("checkpoint_promote") == 2
    assert releases_of(env.traffic(40).records) == {v2}
    return ro.rollout_id


def _minute(env: Env, rid: str, *, bad: bool) -> None:
    """One observed minute of traffic, Law hedging or not; waits until it is folded in."""
    env.backends["b2"].set_knobs(degraded_slices=frozenset({"Law"} if bad else set()))
    seen = len(env.rollout(rid).status.minutes)
    env.traffic(40)
    env.clock.advance(60)
    wait_for(lambda: len(env.rollout(rid).status.minutes) > seen, what="an observer minute")
    law = next(s for s in env.rollout(rid).status.minutes[-1].slices if s.slice == "Law")
    assert law.n >= 5  # a counted minute
    assert law.q is not None and (law.q < 0.5525) == bad


def test_observer_rolls_back_after_exactly_three_bad_minutes(env: Env) -> None:
    rid = _complete(env)
    v1, v2 = env.shas["v1"], env.shas["v2"]
    _minute(env, rid, bad=True)
    _minute(env, rid, bad=True)
    _minute(env, rid, bad=False)  # bad, bad, good: the streak resets
    assert env.phase(rid) == PHASE.ROLLOUT_PHASE_OBSERVING
    _minute(env, rid, bad=True)
    _minute(env, rid, bad=True)
    assert env.phase(rid) == PHASE.ROLLOUT_PHASE_OBSERVING
    assert "auto_rollback" not in env.kinds(v2)
    _minute(env, rid, bad=True)  # the third consecutive counted bad minute
    env.wait_phase(rid, PHASE.ROLLOUT_PHASE_ROLLED_BACK)
    ev = next(r.evidence for r in env.receipts(v2) if r.kind == "auto_rollback")
    assert ev["cause"] == "observer" and ev["slice"] == "Law"
    assert len(ev["bad_minutes"]) == 3
    assert ev["live_release"] == v1
    # Model, endpoint and prompt went back together.
    back = env.traffic(40)
    assert releases_of(back.records) == {v1}


def test_manual_rollback_to_an_earlier_release(env: Env) -> None:
    rid = _complete(env)
    v1, v2 = env.shas["v1"], env.shas["v2"]
    with pytest.raises(errors.InvalidInputError):
        env.client.rollback(v1, "")
    reply = env.client.rollback(v1, "pager: Law answers look off")
    assert reply.receipt.kind == "manual_rollback"
    assert reply.routing_version > 0
    assert releases_of(env.traffic(30).records) == {v1}
    assert env.phase(rid) == PHASE.ROLLOUT_PHASE_COMPLETED  # the observer stopped
    with pytest.raises(errors.InvalidTransitionError):
        env.client.rollback(v1, "again")
    env.client.rollback(v2, "roll forward again")
    assert releases_of(env.traffic(30).records) == {v2}


def test_swap_under_load_loses_nothing_and_mixes_nothing(env: Env) -> None:
    for b in env.backends.values():
        b.set_knobs(answers={}, base_latency_s=0.03)  # echo: backend, model and system
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    spec = {**FAST_SPEC, "steps": [{"weight_bp": 5000, "dwell_s": 600, "deadline_s": 6000},
                                   {"weight_bp": 10000}]}  # fmt: skip
    ro = env.client.start_rollout(v2, overrides=spec)
    load_spec = LoadSpec(
        url=env.gateway_chat,
        rate_per_s=300,
        max_requests=900,
        max_seconds=30,
        sessions=100_000,
        session_prefix="swap-",
        slices=("Law",),
        prompts=("What is the law on jaywalking?",),
    )
    out: list[LoadResult] = []
    runner = threading.Thread(target=lambda: out.append(asyncio.run(run_load(load_spec))))
    runner.start()
    traces = env.server.rollouts.traces
    wait_for(lambda: traces.served(v2) >= 100, what="traffic on both releases")
    env.client.control("Abort", ro.rollout_id, "swap under load")
    runner.join(timeout=60)
    result = out[0]
    assert len(result.records) == 900
    assert all(r.status == 200 for r in result.records), {r.status for r in result.records}
    tags = {
        env.shas["v1"]: ("b1", "model-v1", "system of v1"),
        v2: ("b2", "model-v2", "system of v2"),
    }
    for r in result.records:
        backend, model, system = tags[r.release]
        # One release per response: its backend, its model name, its prompt.
        assert f"backend={backend} model={model} system='{system}'" in r.answer
    history = env.server.rollouts.routing("default").history
    swap = max((h for h in history if h.candidate is None), key=lambda h: h.version)
    late = [t for t in traces.all_traces() if t.snapshot_version >= swap.version and not t.shadow]
    assert late and {t.release_sha256 for t in late} == {env.shas["v1"]}
    assert any(r.release == v2 for r in result.records)
    # The drain after the swap waited for the requests pinned to the canary snapshot.
    wait_for(lambda: any(h.drain is not None and h.version == swap.version for h in history))
    drained = next(h.drain for h in history if h.drain is not None and h.version == swap.version)
    assert drained is not None and drained.cut_off == 0
