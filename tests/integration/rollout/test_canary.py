"""Canary rollouts end to end: real server, gateway, test backends, judge, SQLite."""

from __future__ import annotations

import json
import threading

import pytest
from relgate import errors
from rollout_helpers import FAST_SPEC, PHASE, SLICES, Env, releases_of, wait_for


def _evidence(env: Env, sha: str, kind: str) -> dict:
    return next(r.evidence for r in env.receipts(sha) if r.kind == kind)


def _monitor(evidence: dict, name: str) -> dict:
    return next(m for m in evidence["monitors"] if m["monitor"] == name)


def test_quality_only_regression_on_one_slice_is_rolled_back_at_5pct(env: Env) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    env.backends["b2"].set_knobs(degraded_slices=frozenset({"Law"}))
    ro = env.client.start_rollout(v2, overrides=FAST_SPEC, reason="canary")
    assert ro.status.weight_bp == 500
    assert ro.status.phase == PHASE.ROLLOUT_PHASE_PROGRESSING

    load = env.traffic(300)
    assert all(r.status == 200 for r in load.records)
    served_v2 = [r for r in load.records if r.release == v2]
    # Sticky 5% split: some sessions see the candidate, most do not.
    assert 0 < len(served_v2) < 60
    env.clock.advance(61)
    done = env.wait_phase(ro.rollout_id, PHASE.ROLLOUT_PHASE_ROLLED_BACK)
    assert done.status.step_index == 0  # caught at the first checkpoint

    ev = _evidence(env, v2, "auto_rollback")
    quality = _monitor(ev, "quality")
    assert quality["verdict"] == "FAIL"
    assert quality["slices"][0]["slice"] == "Law"  # the worst slice leads
    assert quality["slices"][0]["verdict"] == "FAIL"
    health = next(s for s in quality["slices"] if s["slice"] == "Health")
    assert health["verdict"] == "PASS"
    assert _monitor(ev, "latency_p95")["verdict"] != "FAIL"
    assert _monitor(ev, "error_rate")["verdict"] != "FAIL"
    assert quality["judge_sha256"] and quality["sample_sha256"]
    assert ev["live_release"] == env.shas["v1"]

    # One atomic swap back: every request now goes to v1.
    after = env.traffic(60)
    assert releases_of(after.records) == {env.shas["v1"]}
    assert env.server.rollouts.live_release("default") == env.shas["v1"]


def test_1_3x_p95_fails_the_step(env: Env) -> None:
    # A base latency well above the gateway's own queueing under CPU contention (which adds to
    # both arms alike and so pulls the ratio towards 1): 1.3x stays clearly above 1.2.
    for b in env.backends.values():
        b.set_knobs(base_latency_s=0.5)
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    env.backends["b2"].set_knobs(latency_factor=1.3)
    spec = json.loads(json.dumps(FAST_SPEC))
    spec["thresholds"]["p95_ratio"] = 1.2
    ro = env.client.start_rollout(v2, overrides=spec)
    # A rate the two cores keep up with: at 200/s, 100 requests were in flight at once and the
    # queueing tail landed on either arm at random, which once pulled the ratio under 1.2 on CI.
    env.traffic(300, rate=40)
    env.clock.advance(61)
    # The checkpoint's replay goes through the slower candidate before the decision is recorded;
    # on a loaded CI machine that has taken over 30 s, so this wait is generous (it returns as
    # soon as the rollback lands: about 3 s on a quiet machine).
    env.wait_phase(ro.rollout_id, PHASE.ROLLOUT_PHASE_ROLLED_BACK, timeout=120)
    ev = _evidence(env, v2, "auto_rollback")
    latency = _monitor(ev, "latency_p95")
    assert latency["verdict"] == "FAIL"
    assert latency["ratio"] > 1.2
    assert _monitor(ev, "error_rate")["verdict"] != "FAIL"


def test_tiny_5xx_count_is_inconclusive_then_pauses_at_the_deadline(env: Env) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    env.backends["b2"].set_knobs(error_probability=0.25)
    spec = json.loads(json.dumps(FAST_SPEC))
    spec["thresholds"]["min_error_events"] = 100
    ro = env.client.start_rollout(v2, overrides=spec)
    load = env.traffic(300)
    assert any(r.status == 500 for r in load.records if r.release == v2)
    env.clock.advance(61)
    wait_for(lambda: "checkpoint_hold" in env.kinds(v2), what="checkpoint_hold")
    hold = _evidence(env, v2, "checkpoint_hold")
    errors_v = _monitor(hold, "error_rate")
    assert errors_v["verdict"] == "INCONCLUSIVE"
    assert "only" in errors_v["reason"]  # worse, but on too few events
    assert env.client.get_rollout(ro.rollout_id).status.phase == PHASE.ROLLOUT_PHASE_PROGRESSING
    env.clock.advance(600)  # past the step's deadline: never a silent pass
    env.wait_phase(ro.rollout_id, PHASE.ROLLOUT_PHASE_INCONCLUSIVE)
    wait_for(lambda: env.client.get_rollout(ro.rollout_id).status.paused, what="paused")
    assert "checkpoint_inconclusive" in env.kinds(v2)
    assert "checkpoint_promote" not in env.kinds(v2)


def test_abort_beats_a_pending_promote(env: Env) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    ro = env.client.start_rollout(v2, overrides=FAST_SPEC)
    env.traffic(100)
    # The hold is not met and no replay ran: the promote stays pending...
    pending = env.client.control("Promote", ro.rollout_id, "ship it")
    assert "promote pending" in pending.status.message
    aborted = env.client.control("Abort", ro.rollout_id, "changed my mind")
    assert aborted.status.phase == PHASE.ROLLOUT_PHASE_ABORTED
    kinds = env.kinds(v2)
    assert "checkpoint_promote" not in kinds
    assert kinds[-3:] == ["rollout_promote", "rollout_abort", "manual_rollback"]
    rb = _evidence(env, v2, "manual_rollback")
    assert rb["abort"] is True and rb["live_release"] == env.shas["v1"]
    assert releases_of(env.traffic(40).records) == {env.shas["v1"]}
    with pytest.raises(errors.InvalidTransitionError):
        env.client.control("Promote", ro.rollout_id)


def test_start_refuses_ungated_and_wrong_previous(env: Env) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    ungated = env.register("v2", "b2", previous="v1", gate="")
    with pytest.raises(errors.GateError, match="no gate result"):
        env.client.start_rollout(ungated)
    failed = env.register("v3", "b2", previous="v1", gate="fail")
    with pytest.raises(errors.GateError, match="gate failed"):
        env.client.start_rollout(failed)
    env.register("v0", "b2")
    stale = env.register("v5", "b2", previous="v0")  # replaces v0, but v1 is live
    with pytest.raises(errors.InvalidTransitionError, match="live release"):
        env.client.start_rollout(stale)
    overridden = env.register("v4", "b2", previous="v1", gate="override")
    ro = env.client.start_rollout(overridden, overrides=FAST_SPEC)
    assert ro.status.weight_bp == 500
    start = _evidence(env, overridden, "rollout_start")
    assert start["gate_override"]["rationale"] == "ok"
    assert set(SLICES)  # the env serves both slices


def test_judge_outage_is_inconclusive(env: Env) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    env.judge_down[0] = True
    # A rollout does not start while its monitor's judge cannot be named (it must be the gate's).
    with pytest.raises(errors.JudgeUnavailableError, match="judge backend down"):
        env.client.start_rollout(v2, overrides=FAST_SPEC)
    env.judge_down[0] = False
    ro = env.client.start_rollout(v2, overrides=FAST_SPEC)
    env.judge_down[0] = True  # ...and goes down mid-step
    env.traffic(300)
    env.clock.advance(61)
    wait_for(lambda: "checkpoint_hold" in env.kinds(v2), what="checkpoint_hold")
    quality = _monitor(_evidence(env, v2, "checkpoint_hold"), "quality")
    assert quality["verdict"] == "INCONCLUSIVE"
    assert "judge backend down" in quality["judge_error"]
    assert "auto_rollback" not in env.kinds(v2)
    # The judge comes back: the next replay promotes.
    env.judge_down[0] = False
    env.clock.advance(31)
    wait_for(lambda: env.client.get_rollout(ro.rollout_id).status.weight_bp == 2500)


def test_watch_streams_every_change_until_the_end(env: Env) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    ro = env.client.start_rollout(v2, overrides=FAST_SPEC)
    events: list = []
    watcher = threading.Thread(
        target=lambda: events.extend(env.client.watch_rollout(ro.rollout_id, timeout=60))
    )
    watcher.start()
    wait_for(lambda: len(events) >= 1, what="the first event")
    env.client.control("Pause", ro.rollout_id, "look")
    paused = PHASE.ROLLOUT_PHASE_PAUSED
    wait_for(lambda: any(e.rollout.status.phase == paused for e in events), what="paused event")
    env.client.control("Resume", ro.rollout_id)
    env.client.control("Abort", ro.rollout_id, "done")
    watcher.join(timeout=60)
    assert not watcher.is_alive()  # the stream ends with the rollout
    phases = [e.rollout.status.phase for e in events]
    assert phases[0] == PHASE.ROLLOUT_PHASE_PROGRESSING
    assert PHASE.ROLLOUT_PHASE_PAUSED in phases
    assert phases[-1] == PHASE.ROLLOUT_PHASE_ABORTED
    kinds = [e.receipt.kind for e in events if e.HasField("receipt")]
    assert "rollout_pause" in kinds and kinds[-1] in ("manual_rollback", "rollout_abort")
