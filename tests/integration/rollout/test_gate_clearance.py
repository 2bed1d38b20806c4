"""An override clears only the gate result it names: a newer gate run is not cleared by an
override of an older one (the rollout refuses the release until the newer result is passed or
overridden)."""

from __future__ import annotations

import pytest
from relgate import errors
from rollout_helpers import FAST_SPEC, Env


def _record(env: Env, sha: str, kind: str, fact: str, payload: dict) -> None:
    env.server.store.record_decision(
        tenant="default",
        release_sha=sha,
        kind=kind,
        evidence=payload,
        actor="test",
        reason=f"test {kind}",
        facts=[(fact, payload)],
    )


def test_an_override_of_an_older_gate_result_does_not_clear_a_newer_one(env: Env) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1", gate="override")  # overrides result "cd"*32
    judge = env.server.rollouts.options.judge
    assert judge is not None
    newer = {
        "verdict": "fail",
        "gate_result_sha256": "ee" * 32,
        "judge_sha256": judge().judge_sha256,
    }
    _record(env, v2, "gate_fail", "gate_result", newer)
    with pytest.raises(errors.GateError, match="older gate result does not clear"):
        env.client.start_rollout(v2, overrides=FAST_SPEC)
    override = {
        "gate_override_sha256": "34" * 32,
        "rationale": "reviewed the newer result",
        "actor": "test",
        "gate_result_sha256": newer["gate_result_sha256"],
    }
    _record(env, v2, "gate_override", "gate_override", override)
    ro = env.client.start_rollout(v2, overrides=FAST_SPEC)
    assert ro.status.weight_bp == 500
    start = next(r.evidence for r in env.receipts(v2) if r.kind == "rollout_start")
    assert start["gate_override"]["rationale"] == "reviewed the newer result"
    assert start["gate_result"]["gate_result_sha256"] == "ee" * 32


def test_a_release_gated_with_another_judge_does_not_roll(env: Env) -> None:
    """The quality monitor scores on the gate's judge's scale: a release whose gate ran with
    another judge is refused at start, naming both judges (before: the monitor silently used
    the server's default judge)."""
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1", gate="")
    other = {"verdict": "pass", "gate_result_sha256": "ab" * 32, "judge_sha256": "0f" * 32}
    _record(env, v2, "gate_pass", "gate_result", other)
    with pytest.raises(errors.GateError, match="gated with judge 0f0f0f0f0f0f, but"):
        env.client.start_rollout(v2, overrides=FAST_SPEC)
    assert "rollout_start" not in env.kinds(v2)
