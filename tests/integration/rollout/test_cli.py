"""`relgate roll start|status|watch|pause|resume|promote|abort` and `relgate rollback` against a
real server."""

from __future__ import annotations

import json
from pathlib import Path

from relgate.cli import app
from rollout_helpers import FAST_SPEC, Env, wait_for
from typer.testing import CliRunner


def _run(env: Env, *args: str) -> tuple[int, str]:
    key = (env.server.data_dir / "admin.key").read_text().strip()
    result = CliRunner().invoke(
        app, [*args], env={"RELGATE_SERVER": env.server.address, "RELGATE_API_KEY": key}
    )
    return result.exit_code, result.output


def test_roll_verbs_and_rollback(env: Env, tmp_path: Path) -> None:
    env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(FAST_SPEC))
    code, out = _run(env, "roll", "start", v2, "--spec", str(spec), "--reason", "cli", "--json")
    assert code == 0, out
    ro = json.loads(out)
    assert ro["phase"] == "Progressing" and ro["weight_bp"] == 500
    rid = ro["rollout_id"]
    code, out = _run(env, "roll", "pause", rid, "--reason", "lunch", "--json")
    assert code == 0 and json.loads(out)["phase"] == "Paused"
    code, out = _run(env, "roll", "pause", rid)
    assert code == 0  # pausing twice is harmless
    code, out = _run(env, "roll", "resume", rid, "--json")
    assert code == 0 and json.loads(out)["phase"] == "Progressing"
    code, out = _run(env, "roll", "status", rid)
    assert code == 0 and rid in out
    code, out = _run(env, "roll", "abort", rid, "--reason", "enough", "--json")
    assert code == 0 and json.loads(out)["phase"] == "Aborted"
    code, out = _run(env, "roll", "watch", rid, "--json")
    assert code == 31, out  # roll watch's exit code says the rollout was aborted
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert events[-1]["phase"] == "Aborted"
    code, out = _run(env, "roll", "resume", rid)
    assert code == 8, out  # InvalidTransitionError: not paused, and over
    code, out = _run(env, "roll", "status", "ro_nope")
    assert code == 5
    code, out = _run(env, "rollback", "--to", v2, "--reason", "skip the canary")
    assert code == 8, out  # v2 never served: a rollback cannot bypass its canary
    # A new model line: shadowed against v1 and scored (the same answers: no harm), then
    # straight to 100% (docs/rollout-spec.md, shadow_s).
    v3 = env.register("v3", "b1")
    straight = {**FAST_SPEC, "shadow_s": 30, "steps": [{"weight_bp": 10000}]}
    spec.write_text(json.dumps(straight))
    code, out = _run(env, "roll", "start", v3, "--spec", str(spec), "--json")
    assert code == 0 and json.loads(out)["phase"] == "Shadow", out
    env.traffic(100)
    traces = env.server.rollouts.traces
    wait_for(lambda: sum(t.shadow for t in traces.all_traces()) >= 100, what="mirrors")
    env.clock.advance(31)
    wait_for(lambda: env.server.rollouts.live_release("default") == v3, 120, what="v3 live")
    v1 = env.shas["v1"]
    code, out = _run(env, "rollback", "--to", v1, "--reason", "v3 misbehaves", "--json")
    assert code == 0, out
    assert json.loads(out)["receipt"]["kind"] == "manual_rollback"
    assert env.server.rollouts.live_release("default") == v1
