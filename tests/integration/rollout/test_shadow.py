"""Cold start: a release with no previous release is shadowed against the live one (mirrored
traffic, answered and recorded, never served). Its mirrored answers are paired with the live
release's answers to the same requests and scored with the gate's judge (rollout/shadow.py):
no harm enters the first canary step, harm on a slice rolls back naming it, too few pairs pause
for a human. Every answer comes from the test backends' answer tables (per release), through
the real gateway on loopback; no backend knob reads the slice header."""

from __future__ import annotations

import polars as pl
import pytest
from relgate.cli.roll import rollout_dict
from relgate.dashboard.rollouts import rollout_view
from relgate.data import demo_suite_path
from relgate.errors import InvalidTransitionError
from relgate.traces import served_trace_id
from rollout_helpers import FAST_SPEC, PHASE, Env, releases_of, wait_for

SHADOW_SPEC = {**FAST_SPEC, "shadow_s": 600}


def wrong_answers(prompts: list[str]) -> dict[str, str]:
    """Each prompt's first TruthfulQA incorrect answer in the demo suite (a release that is
    confidently wrong on these prompts)."""
    suite = pl.read_csv(demo_suite_path()).filter(pl.col("origin") == "truthfulqa:incorrect")
    first = suite.sort("item_id", "reference").unique("prompt", keep="first")
    table = dict(zip(first["prompt"].to_list(), first["reference"].to_list(), strict=True))
    return {p: table[p] for p in prompts}


def start_shadow(env: Env, n: int) -> tuple[str, str, str]:
    """v1 live on b1, a fresh model line on b2 shadowed; ``n`` requests mirrored."""
    env.register("v1", "b1")
    env.make_live("v1")
    fresh = env.register("fresh", "b2")  # previous_release is null: a cold start
    ro = env.client.start_rollout(fresh, overrides=SHADOW_SPEC)
    assert ro.status.phase == PHASE.ROLLOUT_PHASE_SHADOW
    assert "shadow_start" in env.kinds(fresh)
    load = env.traffic(n)
    assert releases_of(load.records) == {env.shas["v1"]}  # nothing served by the shadow
    traces = env.server.rollouts.traces
    wait_for(
        lambda: sum(1 for t in traces.all_traces() if t.shadow) >= n, what="every mirror traced"
    )
    return env.shas["v1"], fresh, ro.rollout_id


def scored(env: Env, rid: str) -> bool:
    readings = env.client.get_rollout(rid).status.readings
    return any(r.monitor.startswith("quality:") for r in readings)


def receipt(env: Env, sha: str, kind: str) -> dict[str, object]:
    found = [r for r in env.receipts(sha) if r.kind == kind]
    assert found, f"no {kind} receipt among {env.kinds(sha)}"
    return found[-1].evidence


def test_a_shadow_without_harm_enters_its_first_canary_step(env: Env) -> None:
    v1, fresh, rid = start_shadow(env, 100)
    traces = env.server.rollouts.traces
    mirrored = [t for t in traces.all_traces() if t.shadow]
    assert {t.release_sha256 for t in mirrored} == {fresh} and all(t.answer for t in mirrored)
    # Each mirror names the request it mirrors, served by the live release.
    assert all(traces.get(served_trace_id(t.id) or "").release_sha256 == v1 for t in mirrored)
    with pytest.raises(InvalidTransitionError, match=r"cold-start shadow for 600 s more"):
        env.client.control("Promote", rid, "too early")

    env.clock.advance(31)  # the next scoring of the mirrored pairs
    wait_for(lambda: scored(env, rid), 120, what="a shadow quality reading")
    shown = rollout_dict(env.client.get_rollout(rid))  # what roll status --json prints
    assert shown["phase"] == "Shadow" and "shadowing (PASS" in shown["message"]
    by_monitor = {r["monitor"]: r for r in shown["readings"]}
    quality = {k: r for k, r in by_monitor.items() if k.startswith("quality:")}
    assert set(quality) == {"quality:Law", "quality:Health"}
    assert all(r["verdict"] == "HOLDS" and r["samples"] >= 10 for r in quality.values())

    # The dashboard's rollout page shows the same reading as the shadow's monitor.
    view = rollout_view(env.server.store, "default", rid, clock=env.clock, live=env.server.rollouts)
    assert [m.monitor for m in view.monitors] == ["quality"]
    assert {row["slice"] for row in view.monitors[0].evidence["slices"]} == {"Law", "Health"}

    env.clock.advance(570)  # past the end of the shadow
    wait_for(lambda: "checkpoint_promote" in env.kinds(fresh), what="the decision")
    env.wait_phase(rid, PHASE.ROLLOUT_PHASE_PROGRESSING)
    promote = receipt(env, fresh, "checkpoint_promote")
    shadow = promote["shadow"]
    assert isinstance(shadow, dict) and shadow["outcome"] == "PASS"
    assert set(shadow["pairs"]) == {"Law", "Health"} and min(shadow["pairs"].values()) >= 10
    assert promote["to_weight_bp"] == 500 and promote["mirror"] == v1
    snap = env.server.rollouts.routing("default").snapshot
    assert snap is not None and snap.candidate is not None and not snap.shadow
    assert (snap.stable.release_sha256, snap.candidate.release_sha256) == (v1, fresh)
    assert snap.weight_bp == 500
    assert env.server.rollouts.live_release("default") == v1


def test_harm_on_a_slice_ends_the_shadow_with_a_receipt_naming_it(env: Env) -> None:
    # The candidate's model answers every Law prompt wrongly, every Health prompt well.
    b2 = env.backends["b2"]
    b2.set_knobs(answers={**b2.knobs.answers, **wrong_answers(env.prompts["Law"])})
    v1, fresh, rid = start_shadow(env, 100)
    env.clock.advance(31)
    wait_for(lambda: "auto_rollback" in env.kinds(fresh), 120, what="the decision")
    env.wait_phase(rid, PHASE.ROLLOUT_PHASE_ROLLED_BACK)
    evidence = receipt(env, fresh, "auto_rollback")
    shadow = evidence["shadow"]
    assert evidence["cause"] == "shadow" and isinstance(shadow, dict)
    assert shadow["outcome"] == "FAIL" and shadow["failed_slices"] == ["Law"]
    verdicts = {s["slice"]: s["verdict"] for s in shadow["quality"]["slices"]}
    assert verdicts["Law"] == "FAIL" and verdicts["Health"] != "FAIL"
    assert "Law" in str(evidence["reason"])
    assert env.server.rollouts.live_release("default") == v1
    snap = env.server.rollouts.routing("default").snapshot
    assert snap is not None and snap.candidate is None  # mirroring stopped
    assert releases_of(env.traffic(20).records) == {v1}


def test_too_few_mirrored_pairs_pause_the_shadow_as_insufficient(env: Env) -> None:
    _v1, fresh, rid = start_shadow(env, 6)  # the load's first 6 prompts: Law; 10 needed
    env.clock.advance(601)
    # (The phase shown is computed at the clock's time; the decision is the tick's receipt.)
    wait_for(lambda: "checkpoint_inconclusive" in env.kinds(fresh), what="the decision")
    ro = env.wait_phase(rid, PHASE.ROLLOUT_PHASE_INCONCLUSIVE)
    assert "shadow INSUFFICIENT: too few mirrored pairs" in ro.status.message
    evidence = receipt(env, fresh, "checkpoint_inconclusive")
    shadow = evidence["shadow"]
    assert isinstance(shadow, dict) and shadow["outcome"] == "INSUFFICIENT"
    assert shadow["pairs"] == {"Law": 6}
    assert "Law 6 < 10" in ro.status.message
    assert "checkpoint_promote" not in env.kinds(fresh)
