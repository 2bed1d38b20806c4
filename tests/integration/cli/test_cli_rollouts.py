"""`relgate roll list|watch|promote`, `relgate status` and sha prefixes against a real server:
rollouts named by release prefix, a shadow promote refused with the reason, `watch` ending with
an exit code per outcome, and `--json` documents of plain values."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from relgate.cli import app
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rollout"))
from rollout_helpers import Env, start_env


@pytest.fixture(scope="module")
def judge() -> Any:
    """The gate's CPU judge (a rollout checks that its quality monitor scores with the judge
    the release was gated with; these rollouts see no traffic, so it never scores)."""
    from relgate.judge.embedding import EmbeddingJudge

    return EmbeddingJudge()


@pytest.fixture
def env(tmp_path: Path, judge: Any) -> Iterator[Env]:
    yield from start_env(tmp_path, lambda: judge)


def _run(env: Env, *args: str) -> tuple[int, str]:
    key = (env.server.data_dir / "admin.key").read_text().strip()
    result = CliRunner().invoke(
        app, [*args], env={"RELGATE_SERVER": env.server.address, "RELGATE_API_KEY": key}
    )
    return result.exit_code, result.output


def test_shadow_promote_watch_list_and_status_by_prefix(env: Env, tmp_path: Path) -> None:
    v1 = env.register("v1", "b1")
    prefix = v1[:8]
    spec = tmp_path / "shadow.yaml"
    spec.write_text("# a reviewed spec\nshadow_s: 600\n")
    code, out = _run(env, "roll", "start", prefix, "--spec", str(spec), "--json")
    assert code == 0, out
    ro = json.loads(out)
    assert ro["phase"] == "Shadow" and ro["spec"]["shadow_s"] == 600
    assert ro["stable_release_sha256"] is None  # missing is null, not ""
    # Promoting during the shadow is refused with the reason, never exit 0 and ignored.
    code, out = _run(env, "roll", "promote", prefix)
    assert code == 8 and "cold-start shadow for 600 s more" in out, out
    code, out = _run(env, "roll", "list", "--json")
    assert code == 0, out
    listed = json.loads(out)
    assert [r["release_sha256"] for r in listed] == [v1]
    assert isinstance(listed[0]["requests_at_step"], int)
    env.clock.advance(601)
    # A shadow that has run its course waits for a human: watch stops with 32.
    code, out = _run(env, "roll", "watch", prefix)
    assert code == 32 and "shadow complete" in out, out
    code, out = _run(env, "roll", "promote", prefix, "--reason", "shadow looked good")
    assert code == 0, out
    code, out = _run(env, "roll", "watch", ro["rollout_id"], "--json")
    assert code == 0, out
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert events[-1]["phase"] == "Observing"
    code, out = _run(env, "status", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["live"]["release_sha256"] == v1 and doc["live"]["routing_classes"]
    assert doc["live"]["candidate_release_sha256"] is None
    code, out = _run(env, "status")
    assert code == 0 and f"live {v1}" in out, out
    # A second release replacing v1, aborted: watch by its prefix exits 31.
    v2 = env.register("v2", "b2", previous="v1")
    steps = tmp_path / "canary.yaml"
    steps.write_text(
        "steps:\n  - {weight_bp: 500, dwell_s: 60, min_requests: 5, deadline_s: 600}\n"
        "  - {weight_bp: 10000}\n"
    )
    code, out = _run(env, "roll", "start", v2[:10], "--spec", str(steps))
    assert code == 0, out
    code, out = _run(env, "status", "--json")
    live = json.loads(out)["live"]
    assert live["candidate_release_sha256"] == v2 and live["candidate_weight_bp"] == 500
    code, out = _run(env, "roll", "abort", v2[:10], "--reason", "enough")
    assert code == 0, out
    code, out = _run(env, "roll", "watch", v2[:10])
    assert code == 31, out
    code, out = _run(env, "roll", "list", "--release", v2[:7], "--json")
    assert [r["phase"] for r in json.loads(out)] == ["Aborted"]
    # v1's observation ended when v2 started (superseded), v2 was aborted: nothing runs.
    code, out = _run(env, "roll", "list", "--active", "--json")
    assert json.loads(out) == []


def test_bad_handles_are_one_line_errors(env: Env) -> None:
    env.register("v1", "b1")
    code, out = _run(env, "roll", "watch", "ro_nope")
    assert code == 5, out
    code, out = _run(env, "roll", "watch", "abc")  # too short to be a prefix
    assert code == 3 and out.startswith("error: "), out
    code, out = _run(env, "roll", "status", "0" * 64)
    assert code == 5, out
    code, out = _run(env, "roll", "watch", env.shas["v1"][:12])  # no rollout yet
    assert code == 5 and "has no rollout" in out, out
