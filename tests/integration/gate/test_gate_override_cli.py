"""OverrideGate (releaser role, written rationale, gate_override_sha256), the rollout's refusal
of a failed release until it is overridden, and `relgate gate run/show/reapply/override` exit
codes, on a small suite (three slices of the shipped one) in the server's suites directory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import rfc8785
from gate_helpers import GateEnv, first_table_row, gate_env, manifest_json
from relgate import errors
from relgate._proto.relgate.v1 import gate_pb2
from relgate.cli import app
from relgate.cli.gate import EXIT_FAIL, EXIT_INSUFFICIENT, EXIT_PASS, EXIT_PASS_WITH_WARNINGS
from relgate.client import RelgateClient, answer_source
from relgate.data import demo_answers_path, demo_calibration_answers_path, demo_suite_path
from relgate.judge.base import Judge
from relgate.suite import load_suite
from typer.testing import CliRunner

V = gate_pb2
SLICES = ["Health", "Law", "Misconceptions"]


@dataclass
class Small:
    env: GateEnv
    suite_sha256: str
    tmp: Path
    n: list[int]

    def register(self, previous: str | None = None) -> str:
        """A fresh release (a new model tag each time) on the small suite."""
        self.n[0] += 1
        doc = manifest_json(
            f"t{self.n[0]}",
            suite_ref="small.csv",
            suite_sha256=self.suite_sha256,
            previous=previous,
        )
        return self.env.admin.register_release(doc).release.sha256

    def gate(self, sha: str, answers: str) -> gate_pb2.GateResult:
        return self.env.admin.run_gate(
            sha, answers=answer_source(answers=demo_answers_path(answers))
        )

    def pair(self) -> tuple[str, str]:
        """v1 (best answers, gated) and v2 (hedges on Law, gated against v1: fails)."""
        v1 = self.register()
        self.gate(v1, "v1")
        v2 = self.register(previous=v1)
        assert self.gate(v2, "v2").verdict == V.GATE_VERDICT_FAIL
        return v1, v2


@pytest.fixture(scope="module")
def small(
    tmp_path_factory: pytest.TempPathFactory, judge: Judge, score_cache: Path
) -> Iterator[Small]:
    tmp = tmp_path_factory.mktemp("small")
    suites = tmp / "suites"
    suites.mkdir()
    suite = load_suite(demo_suite_path()).select_slices(SLICES)
    suite.write(suites / "small.csv")
    (suites / "small.good_answers.jsonl").write_bytes(demo_calibration_answers_path().read_bytes())
    with gate_env(tmp / "data", lambda c: judge, suites_dir=suites, score_cache=score_cache) as env:
        yield Small(env=env, suite_sha256=suite.sha256, tmp=tmp, n=[0])


def test_override_needs_releaser_role_and_a_rationale(small: Small) -> None:
    _, v2 = small.pair()
    viewer = small.env.client("viewer")
    with pytest.raises(errors.AuthError):
        viewer.override_gate(v2, "viewers cannot decide this")
    releaser = small.env.client("releaser")
    with pytest.raises(errors.InvalidInputError, match="rationale"):
        releaser.override_gate(v2, "   ")
    with pytest.raises(errors.InvalidTransitionError, match="not the release's latest"):
        releaser.override_gate(v2, "reviewed", gate_result_sha256="0" * 64)
    assert not small.env.server.store.facts(v2, "gate_override", tenant="default")
    # Viewers may read the result.
    assert viewer.get_gate_result(v2).archived


def test_override_records_its_sha_and_opens_the_rollout(small: Small) -> None:
    _, v2 = small.pair()
    rollouts = RelgateClient(small.env.server.address, api_key=small.env.admin_key)
    try:
        with pytest.raises(errors.GateError, match="gate failed"):
            rollouts.start_rollout(v2)
        releaser = small.env.client("releaser")
        result = releaser.get_gate_result(v2)
        rationale = "Legal signed off on hedging for this quarter (TICKET-42)."
        response = releaser.override_gate(
            v2, rationale, gate_result_sha256=result.gate_result_sha256
        )
        actor = response.receipt.actor
        assert actor.startswith("key:test-releaser:")
        expected = hashlib.sha256(
            rfc8785.dumps(
                {
                    "release_sha256": v2,
                    "gate_result_sha256": result.gate_result_sha256,
                    "rationale": rationale,
                    "actor": actor,
                }
            )
        ).hexdigest()
        assert response.gate_override_sha256 == expected
        assert response.receipt.kind == "gate_override"
        evidence = json.loads(response.receipt.evidence_json)
        assert evidence["gate_override_sha256"] == expected
        assert evidence["failed_slices"] == ["Law"]
        fact = small.env.server.store.facts(v2, "gate_override", tenant="default")[-1].payload
        assert fact == {
            "gate_override_sha256": expected,
            "rationale": rationale,
            "actor": actor,
            "gate_result_sha256": result.gate_result_sha256,
        }
        after = releaser.get_gate_result(v2)
        assert after.gate_override_sha256 == expected and not after.archived
        # The gate no longer blocks: what refuses now is that v1 is not live.
        with pytest.raises(errors.InvalidTransitionError, match="live release"):
            rollouts.start_rollout(v2)
    finally:
        rollouts.close()


def test_a_passed_gate_has_nothing_to_override(small: Small) -> None:
    v1, _ = small.pair()
    v3 = small.register(previous=v1)
    assert small.gate(v3, "v1").verdict == V.GATE_VERDICT_PASS
    with pytest.raises(errors.InvalidTransitionError, match="nothing to override"):
        small.env.admin.override_gate(v3, "no reason to")


def _cli(small: Small, key: str, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        app,
        list(args),
        env={"RELGATE_SERVER": small.env.server.address, "RELGATE_API_KEY": key},
    )
    return result.exit_code, result.stdout, result.stderr


def test_cli_exit_codes(small: Small, tmp_path: Path) -> None:
    admin = small.env.admin_key
    answers = str(demo_answers_path("v1"))
    # A cold start fails whatever its slices say: it passes only through an override.
    v0 = small.register()
    code, out, _ = _cli(small, admin, "gate", "run", v0, "--answers", answers)
    assert code == EXIT_FAIL, out
    assert "cold start" in out and "release archived" in out and "failed slices" not in out
    receipt = small.env.server.store.list_receipts(release_sha=v0)[-1]
    assert receipt.kind == "gate_fail"
    assert receipt.reason.startswith("cold start: no previous release; passes only through")
    v1 = small.register(previous=v0)
    code, out, _ = _cli(small, admin, "gate", "run", v1, "--answers", answers)
    assert code == EXIT_PASS, out
    assert "verdict: PASS" in out and "NOT decisive" in out and "HTML report:" in out

    v2 = small.register(previous=v1)
    hedged = str(demo_answers_path("v2"))
    code, out, _ = _cli(small, admin, "gate", "run", v2, "--answers", hedged, "--json")
    assert code == EXIT_FAIL
    assert json.loads(out)["slices"][0]["slice"] == "Law"

    code, out, _ = _cli(small, admin, "gate", "show", v2)
    assert code == EXIT_FAIL
    row = first_table_row(out)
    assert row.startswith("Law") and "FAIL" in row
    assert "aggregate (mean over slices, NOT decisive)" in out
    assert "failed slices: Law" in out and "release archived" in out

    strict = tmp_path / "strict.yaml"
    strict.write_text("gate_policy:\n  min_rows: 100000\n")
    code, out, _ = _cli(small, admin, "gate", "show", v1, "--policy", str(strict))
    assert code == EXIT_INSUFFICIENT and "what-if" in out
    # Only the release's own policy is ever recorded: a looser (or any other) policy given to
    # `run`/`reapply` is a usage error, and `reapply` re-decides with the manifest's policy.
    untrusting = tmp_path / "untrusting.json"
    untrusting.write_text(json.dumps({"min_ceiling": 0.99}))
    code, _, _ = _cli(small, admin, "gate", "reapply", v1, "--policy", str(untrusting))
    assert code == 2
    code, _, _ = _cli(small, admin, "gate", "run", v1, "--reuse-scores", "--policy", str(strict))
    assert code == 2
    before = small.env.server.store.list_receipts(release_sha=v1)[-1]
    code, out, _ = _cli(small, admin, "gate", "reapply", v1, "--json")
    again = small.env.server.store.list_receipts(release_sha=v1)[-1]
    assert again.receipt_sha256 != before.receipt_sha256 and again.kind == before.kind
    assert again.evidence["policy"] == before.evidence["policy"]
    assert again.evidence["policy_source"] == "manifest"

    viewer = small.env.client("viewer")
    viewer_key = viewer._metadata[0][1].removeprefix("Bearer ")
    code, _, err = _cli(small, viewer_key, "gate", "override", v2, "--rationale", "no")
    assert code == 6 and err.startswith("error:")
    code, _, err = _cli(small, admin, "gate", "override", v2, "--rationale", " ")
    assert code == 3 and "rationale" in err
    code, out, _ = _cli(small, admin, "gate", "override", v2, "--rationale", "signed off")
    assert code == 0 and "gate_override_sha256" in out
    code, _, err = _cli(small, admin, "gate", "show", "f" * 64)
    assert code == 5 and err.count("\n") == 1
    code, _, err = _cli(small, admin, "gate", "run", v1)
    assert code == 3 and "--answers" in err


def test_cli_pass_with_warnings_exit_code(small: Small, tmp_path: Path) -> None:
    v0 = small.register()
    small.gate(v0, "v1")
    v1 = small.register(previous=v0)
    small.gate(v1, "v1")
    # A ceiling bar only the best-resolved slice clears: a pass that names the others.
    lows = sorted(s.ceiling_ci.low for s in small.env.admin.get_gate_result(v1).slices)
    assert lows[-1] > lows[-2]
    lenient = tmp_path / "p.json"
    lenient.write_text(json.dumps({"min_ceiling": (lows[-1] + lows[-2]) / 2}))
    code, out, _ = _cli(small, small.env.admin_key, "gate", "show", v1, "--policy", str(lenient))
    assert code == EXIT_PASS_WITH_WARNINGS, out
    assert "not vouched for" in out and "what-if" in out
