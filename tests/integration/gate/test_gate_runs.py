"""RunGate's inputs and re-application: progress streaming, suites pinned by sha256 (clear
errors), a stricter policy re-applied to stored scores with no judge at all (a raising judge
double proves it), and the answers a paired comparison needs."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from gate_helpers import GateEnv, RaisingJudgeDouble, gate_env, manifest_json
from relgate import errors
from relgate._proto.relgate.v1 import gate_pb2
from relgate.client import answer_source
from relgate.data import demo_answers_path, demo_calibration_answers_path, demo_suite_path
from relgate.judge.base import Judge
from relgate.suite import load_suite

V = gate_pb2
SUITE_SHA = load_suite(demo_suite_path()).sha256


def _register(env: GateEnv, tag: str, previous: str | None = None, **kw: str) -> str:
    ref = kw.pop("suite_ref", "truthfulqa-demo")
    sha = kw.pop("suite_sha256", SUITE_SHA)
    doc = manifest_json(tag, suite_ref=ref, suite_sha256=sha, previous=previous)
    return env.admin.register_release(doc).release.sha256


def _gate(env: GateEnv, sha: str, answers: str = "v1", **kw: object) -> gate_pb2.GateResult:
    return env.admin.run_gate(sha, answers=answer_source(answers=demo_answers_path(answers)), **kw)  # type: ignore[arg-type]


def test_progress_stages_stream_before_the_result(
    tmp_path: Path, judge: Judge, score_cache: Path
) -> None:
    with gate_env(tmp_path / "data", lambda c: judge, score_cache=score_cache) as env:
        sha = _register(env, "v1")
        stages: list[tuple[str, int, int]] = []
        result = _gate(env, sha, on_stage=lambda s: stages.append((s.stage, s.done, s.total)))
    names = [s for s, _, _ in stages]
    for stage in ("answers", "calibration", "judge", "statistics", "receipt"):
        assert stage in names
    assert names.index("answers") < names.index("judge") < names.index("receipt")
    n_rows = load_suite(demo_suite_path()).n_rows
    assert ("judge", n_rows, n_rows) in stages
    # A cold start: it fails (passes only through an override) and keeps its per-slice results.
    assert result.verdict == V.GATE_VERDICT_FAIL and result.cold_start and result.archived
    verdicts = {s.verdict for s in result.slices}
    assert V.SLICE_VERDICT_PASS in verdicts and V.SLICE_VERDICT_FAIL not in verdicts


def test_another_policy_is_a_what_if_and_reapply_decides_with_the_manifests(
    tmp_path: Path, judge: Judge, score_cache: Path
) -> None:
    data = tmp_path / "data"
    with gate_env(data, lambda c: judge, score_cache=score_cache) as env:
        sha = _register(env, "v1")
        first = _gate(env, sha)
    assert first.verdict == V.GATE_VERDICT_FAIL and first.cold_start  # a cold start
    # Restart on the same data directory with a judge double that raises, and no score cache
    # of the session: anything that scored a row would fail loudly.
    double = RaisingJudgeDouble(judge.judge_sha256)
    with gate_env(data, lambda c: double) as env:
        receipts_before = len(env.server.store.list_receipts(release_sha=sha))
        what_if = env.admin.get_gate_result(sha, what_if_policy={"strict": True})
        assert what_if.what_if and what_if.verdict == V.GATE_VERDICT_INSUFFICIENT
        assert len(env.server.store.list_receipts(release_sha=sha)) == receipts_before
        assert env.admin.get_gate_result(sha).gate_result_sha256 == first.gate_result_sha256

        again = env.admin.run_gate(sha, reuse_scores=True)
        assert again.verdict == first.verdict and again.archived
        assert again.gate_result_sha256 == first.gate_result_sha256  # same scores, same policy
        assert again.sample_set_sha256 == first.sample_set_sha256
        receipt = env.server.store.list_receipts(release_sha=sha)[-1]
        assert receipt.kind == "gate_fail"
        assert receipt.evidence["policy"]["strict"] is False  # the manifest's, never a request's
        assert receipt.evidence["reused_scores"] is True
        assert receipt.evidence["reapplied_to"] == first.gate_result_sha256
        assert double.calls == 0
        # The double is live: a run that needs scores reaches it and fails.
        with pytest.raises(errors.JudgeUnavailableError, match="must not call a judge"):
            _gate(env, sha)
        assert double.calls == 1


def test_suite_sha256_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    double = RaisingJudgeDouble("0" * 64)
    with gate_env(tmp_path / "data", lambda c: double, suites_dir=tmp_path) as env:
        sha = _register(env, "wrong-suite", suite_sha256="ab" * 32)
        with pytest.raises(errors.IntegrityError) as info:
            _gate(env, sha)
        message = str(info.value)
        assert SUITE_SHA in message and "ab" * 32 in message and "dataset.sha256" in message
        assert not env.server.store.facts(sha, "gate_result", tenant="default")

        missing = _register(env, "missing-suite", suite_ref="nope.csv")
        with pytest.raises(errors.NotFoundError, match=r"nope\.csv"):
            _gate(env, missing)
        outside = _register(env, "outside", suite_ref="../elsewhere.csv")
        with pytest.raises(errors.InvalidInputError, match="leaves the server's suites"):
            _gate(env, outside)
        with pytest.raises(errors.InvalidInputError, match="answers"):
            env.admin.run_gate(_register(env, "no-answers"))
    assert double.calls == 0


def test_a_suite_file_under_suites_dir_with_its_good_answers(
    tmp_path: Path, judge: Judge, score_cache: Path
) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    small = load_suite(demo_suite_path()).select_slices(["Health", "Law", "Misconceptions"])
    small.write(suites / "small.csv")
    (suites / "small.good_answers.jsonl").write_bytes(
        demo_calibration_answers_path().read_bytes()  # the held-out best answers
    )
    with gate_env(
        tmp_path / "data", lambda c: judge, suites_dir=suites, score_cache=score_cache
    ) as env:
        sha = _register(env, "small", suite_ref="small.csv", suite_sha256=small.sha256)
        result = _gate(env, sha)
        # Every slice passes, but a cold start fails until it is overridden.
        assert result.verdict == V.GATE_VERDICT_FAIL and result.cold_start
        assert {s.verdict for s in result.slices} == {V.SLICE_VERDICT_PASS}
        assert sorted(s.slice for s in result.slices) == ["Health", "Law", "Misconceptions"]
        # The model's answers are not the calibration answers: q is not trivially 1.
        assert all(s.q < 0.99 for s in result.slices)


def test_the_previous_release_must_have_been_gated(tmp_path: Path) -> None:
    double = RaisingJudgeDouble("0" * 64)
    with gate_env(tmp_path / "data", lambda c: double) as env:
        v1 = _register(env, "v1")
        v2 = _register(env, "v2", previous=v1)
        with pytest.raises(errors.GateError, match="gate it first"):
            _gate(env, v2, "v2")
        with pytest.raises(errors.NotFoundError, match="no gate result"):
            env.admin.get_gate_result(v1)
    assert double.calls == 0


def test_a_request_cannot_loosen_the_gate(tmp_path: Path, judge: Judge, score_cache: Path) -> None:
    """The bypass of issue 15: RunGate used to merge a request's policy over the manifest's, so a
    releaser re-applied ``floor=-1`` and a wide margin to a failed release and recorded a real
    gate_pass. The old field (6) is refused as unknown now, and nothing is recorded."""
    from relgate._proto.relgate.v1 import gate_pb2

    with gate_env(tmp_path / "data", lambda c: judge, score_cache=score_cache) as env:
        sha = _register(env, "v1")
        first = _gate(env, sha)
        assert first.verdict == V.GATE_VERDICT_FAIL  # a cold start
        before = env.server.store.list_receipts(release_sha=sha)
        loose = gate_pb2.GatePolicy(floor=-1.0, non_inferiority_margin=2.0).SerializeToString()
        request = gate_pb2.RunGateRequest(release_sha256=sha, reuse_scores=True)
        payload = request.SerializeToString() + b"\x32" + bytes([len(loose)]) + loose
        stub = env.admin._channel.unary_stream(
            "/relgate.v1.GateService/RunGate",
            request_serializer=None,
            response_deserializer=gate_pb2.GateProgress.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            list(stub(payload, metadata=env.admin._metadata, timeout=30))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unknown field" in (info.value.details() or "")
        assert env.server.store.list_receipts(release_sha=sha) == before
        assert env.admin.get_gate_result(sha).gate_result_sha256 == first.gate_result_sha256
