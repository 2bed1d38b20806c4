"""Judge workers against a real control plane on loopback: a `relgate worker` process scores
gate jobs exactly like the in-process judge, a worker SIGKILLed mid-job loses no result, a
worker of another judge is never used, and unknown workers or non-worker keys are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from relgate.access import DEFAULT_TENANT, Role, acting_as
from relgate.answers import load_answers
from relgate.app.jobs import Dispatcher
from relgate.app.remote_judge import RemoteJudge
from relgate.client import RelgateClient
from relgate.data import demo_answers_path
from relgate.errors import AuthError, JudgeUnavailableError
from relgate.gate.run import score_release
from relgate.gate.sources import JudgeChoice
from relgate.judge.base import Judge
from relgate.rollout.monitors import MonitorThresholds, Verdict, evaluate_quality
from relgate.rollout.replay import ReplayTrace, replay_quality
from relgate.service.auth import create_key
from relgate.service.server import RunningServer
from relgate.service.state_metrics import CountingJudge
from relgate.suite import load_suite
from relgate.worker.runner import WorkerRunner

HERE = Path(__file__).parent
DEADLINE_S = 90.0


def _until(what: str, check: Callable[[], Any], timeout: float = DEADLINE_S) -> Any:
    """Poll `check` until it returns something truthy (no fixed sleeps)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _workers(control: RunningServer) -> Dispatcher:
    assert control.workers is not None
    return control.workers


@contextmanager
def _process(args: list[str], key: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "RELGATE_API_KEY": key}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


@contextmanager
def _thread_worker(control: RunningServer, key: str, judge: Judge) -> Iterator[WorkerRunner]:
    runner = WorkerRunner(control.address, key, judge, backends=["embedding"], poll_ms=200)
    stop = threading.Event()
    t = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    t.start()
    try:
        yield runner
    finally:
        stop.set()
        t.join(timeout=30)


def _worker_cli(control: RunningServer) -> list[str]:
    return [sys.executable, "-m", "relgate", "worker", "--control", control.address]


def test_worker_process_scores_a_gate_like_the_in_process_judge(
    control: RunningServer, worker_key: str, judge: Judge, small_suite: Path
) -> None:
    suite = load_suite(small_suite)
    v1, v2 = load_answers(demo_answers_path("v1")), load_answers(demo_answers_path("v2"))
    d = _workers(control)
    with _process([*_worker_cli(control), "--backend", "embedding"], worker_key):
        live = _until("the worker to register", lambda: d.live_workers(judge.judge_sha256))
        assert live[0].backends == ("embedding",)
        # Through the gate's own judge factory: backend "worker" names the judge by its sha.
        assert control.gates is not None
        choice = JudgeChoice("worker", {"judge_sha256": judge.judge_sha256, "timeout": 60.0})
        remote = control.gates.judges.get(choice)
        assert isinstance(remote, CountingJudge) and isinstance(remote.wrapped, RemoteJudge)
        with acting_as(DEFAULT_TENANT):  # the gate runner sets this for its release's tenant
            through_worker = score_release(suite, remote, v2, v1)
        _until("a heartbeat", lambda: d.live_workers(judge.judge_sha256)[0].heartbeats >= 1)
        # v1 and v2 answer these 120 rows alike: the second call's batch is the same content,
        # so it attaches to the first's job (content-addressed) and reuses its result.
        assert d.live_workers(judge.judge_sha256)[0].completed == 1
        assert remote.description == judge.description
    in_process = score_release(suite, judge, v2, v1)
    for column in ("x_candidate", "x_previous"):
        np.testing.assert_allclose(
            through_worker.rows[column].to_numpy(),
            in_process.rows[column].to_numpy(),
            rtol=0,
            atol=1e-6,
        )


def test_worker_killed_mid_job_loses_no_result(
    control: RunningServer, worker_key: str, judge: Judge
) -> None:
    d = _workers(control)
    answers = [f"The answer is {i}." for i in range(40)]
    references = [f"It is {i % 7}." for i in range(40)]
    expected = judge.score(answers, references)
    remote = RemoteJudge(d, judge.judge_sha256, timeout=60.0, batch_rows=40)
    got: dict[str, Any] = {}

    def call() -> None:
        try:
            with acting_as(DEFAULT_TENANT):
                got["scores"] = remote.score(answers, references)
        except BaseException as exc:  # surfaced by the assertions below
            got["error"] = exc

    args = [sys.executable, str(HERE / "hanging_worker.py"), control.address]
    with _process(args, worker_key) as hanging:
        assert hanging.stdout is not None
        caller = threading.Thread(target=call)
        caller.start()
        # The only live worker takes the job and stalls; then it dies without a word.
        assert hanging.stdout.readline() == "holding a job\n"
        assert d.stats()["leased"] == 1
        hanging.send_signal(signal.SIGKILL)
        hanging.wait(timeout=30)
        with _thread_worker(control, worker_key, judge):
            caller.join(timeout=DEADLINE_S)
    assert "error" not in got, got.get("error")
    np.testing.assert_array_equal(got["scores"], expected)
    assert d.stats()["retried"] >= 1


def test_worker_of_another_judge_is_never_used(
    control: RunningServer, worker_key: str, judge: Judge
) -> None:
    d = _workers(control)
    other_sha = "0" * 64
    with _thread_worker(control, worker_key, judge) as runner:
        _until("the worker", lambda: d.live_workers(judge.judge_sha256))
        with (
            acting_as(DEFAULT_TENANT),
            pytest.raises(JudgeUnavailableError, match="no live worker of tenant 'default' runs"),
        ):
            RemoteJudge(d, other_sha, timeout=1.0).score(["a"], ["b"])
        assert runner.done == 0


def test_worker_of_another_tenant_never_sees_the_job(control: RunningServer, judge: Judge) -> None:
    """Jobs carry a tenant's answers and references: a worker keyed to another tenant, running
    the very same judge, is never handed one."""
    d = _workers(control)
    theirs = create_key(control.store.keys, role=Role.WORKER, name="w-b", tenant="team-b")
    with _thread_worker(control, theirs, judge) as runner:
        _until("the worker", lambda: d.live_workers(judge.judge_sha256))
        # (Workers of earlier tests in this module may still count as live until they expire,
        # so the message varies; what matters is that no job reached team-b's worker.)
        with acting_as(DEFAULT_TENANT), pytest.raises(JudgeUnavailableError):
            RemoteJudge(d, judge.judge_sha256, timeout=1.0).score(["a"], ["b"])
        assert runner.done == 0


def test_no_live_worker_makes_the_quality_monitor_inconclusive_in_time(
    control: RunningServer,
) -> None:
    remote = RemoteJudge(_workers(control), "f" * 64, timeout=0.5)
    traces = {"Law": [ReplayTrace("t1", "Law", "q?", "stable answer", 0.0)]}
    start = time.monotonic()
    with acting_as(DEFAULT_TENANT):
        reading = replay_quality(
            traces, {"t1": "candidate"}, {"Law": ["I have no comment."]}, remote.score
        )
    assert time.monotonic() - start < 5.0
    assert reading.judge_error is not None and "no live worker" in reading.judge_error
    verdict = evaluate_quality(reading, MonitorThresholds())
    assert verdict.verdict is Verdict.INCONCLUSIVE


def test_unknown_worker_and_non_worker_keys_are_refused(
    control: RunningServer, worker_key: str
) -> None:
    from relgate._proto.relgate.v1 import worker_pb2

    request = worker_pb2.SubmitResultRequest(worker_id="w-forged", job_id="j-1", scores=[0.5])
    with (
        RelgateClient(control.address, api_key=worker_key) as client,
        pytest.raises(AuthError, match="unknown worker"),
    ):
        client.submit_result(request)
    admin = (control.data_dir / "admin.key").read_text().strip()
    releaser = create_key(control.store.keys, role=Role.RELEASER, name="rel")
    for key in (admin, releaser):
        with RelgateClient(control.address, api_key=key) as client, pytest.raises(AuthError):
            client.register_worker(
                worker_pb2.RegisterWorkerRequest(judge_sha256="a" * 64, capacity=1)
            )
    with RelgateClient(control.address) as client, pytest.raises(AuthError):
        client.submit_result(request)
    # A worker key opens nothing but the WorkerService.
    with RelgateClient(control.address, api_key=worker_key) as client, pytest.raises(AuthError):
        client.list_releases()


def test_replay_batch_generates_on_the_candidate_and_scores(
    control: RunningServer, worker_key: str, judge: Judge
) -> None:
    import asyncio

    from relgate.testing.backends import BackendKnobs, TestBackend

    table = {"Capital of France?": "Paris.", "Largest planet?": "Jupiter is the largest."}
    backend = TestBackend("cand", BackendKnobs(answers=table))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(backend.start(), loop).result(timeout=30)
    try:
        remote = RemoteJudge(_workers(control), judge.judge_sha256, timeout=60.0)
        prompts = list(table)
        references = ["Paris is the capital.", "I have no comment.", "Jupiter."]
        index = [0, 0, 1]
        with _thread_worker(control, worker_key, judge), acting_as(DEFAULT_TENANT):
            answers, scores = remote.replay(
                prompts, index, references, endpoint=backend.base_url, model="cand-model"
            )
    finally:
        asyncio.run_coroutine_threadsafe(backend.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
    assert answers == [table[p] for p in prompts]
    expected = judge.score([answers[i] for i in index], references)
    np.testing.assert_array_equal(scores, expected)


def test_a_worker_gate_judge_is_also_the_monitors_judge(tmp_path: Path) -> None:
    from relgate.app.gates import GateOptions
    from relgate.service.server import BackgroundServer

    choice = JudgeChoice("worker", {"judge_sha256": "e" * 64, "timeout": 0.2})
    background = BackgroundServer(tmp_path, gateway_port=None, gate=GateOptions(judge=choice))
    server = background.start()
    try:
        make = server.rollouts.options.judge
        assert make is not None
        judge = make()
        assert isinstance(judge, CountingJudge) and isinstance(judge.wrapped, RemoteJudge)
        assert judge.judge_sha256 == "e" * 64
        with acting_as(DEFAULT_TENANT), pytest.raises(JudgeUnavailableError):
            judge.score(["a"], ["b"])
    finally:
        background.stop(grace=1.0)


def test_keys_create_role_worker_through_the_cli(control: RunningServer, judge: Judge) -> None:
    from relgate.cli import app
    from typer.testing import CliRunner

    admin = (control.data_dir / "admin.key").read_text().strip()
    result = CliRunner().invoke(
        app,
        ["keys", "create", "--role", "worker", "--name", "gpu-1", "--json"],
        env={"RELGATE_SERVER": control.address, "RELGATE_API_KEY": admin},
    )
    assert result.exit_code == 0, result.output
    import json

    key = json.loads(result.output)["key"]
    runner = WorkerRunner(control.address, key, judge, backends=["embedding"])
    try:
        worker_id = runner.register()
    finally:
        runner.close()
    assert any(w.worker_id == worker_id for w in _workers(control).live_workers())
