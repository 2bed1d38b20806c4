"""Helpers for the roll-and-observe integration tests: a real server (gRPC + gateway + SQLite)
with a manual clock, TEST BACKENDS on their own loop, releases that point at them, traffic from
the bounded load generator, and polling with deadlines (no sleeps)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from relgate._proto.relgate.v1 import rollout_pb2
from relgate.answers import load_answers
from relgate.app.probes import ProbeOptions, suite_anchors
from relgate.app.rollouts import ActiveRollout, RolloutOptions
from relgate.client import RelgateClient
from relgate.data import demo_calibration_answers_path, demo_suite_path
from relgate.errors import JudgeUnavailableError
from relgate.judge.base import Judge
from relgate.rollout.clock import ManualClock
from relgate.service.server import BackgroundServer, RunningServer
from relgate.store import Store
from relgate.testing.backends import BackendKnobs, TestBackend
from relgate.testing.loadgen import LoadResult, LoadSpec, run_load

T = TypeVar("T")
SLICES = ("Law", "Health")
PHASE = rollout_pb2.RolloutPhase

# Fast test spec: one-minute holds at 5% and 25%, small minimum counts (the test backends see
# a few hundred requests), every observer trace sampled. The p95 ratio is loose here because a
# p95 over a handful of candidate requests on a busy CI machine is noise; the latency test
# sets the real 1.2 on slower backends.
FAST_SPEC: dict[str, Any] = {
    "steps": [
        {"weight_bp": 500, "dwell_s": 60, "min_requests": 5, "deadline_s": 600},
        {"weight_bp": 2500, "dwell_s": 60, "min_requests": 5, "deadline_s": 600},
        {"weight_bp": 10000},
    ],
    "thresholds": {
        "p95_ratio": 3.0,
        "min_latency_samples": 5,
        "min_error_requests": 5,
        "min_error_events": 3,
        "min_replay_rows": 10,
    },
    "observer": {"sample_rate": 1.0, "n_min": 5},
}


def demo_qa(per_slice: int = 25) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Prompts per slice and their TruthfulQA best answers (what a healthy release says)."""
    suite = pl.read_csv(demo_suite_path())
    best = dict(load_answers(demo_calibration_answers_path()))
    prompts: dict[str, list[str]] = {}
    answers: dict[str, str] = {}
    for name in SLICES:
        rows = suite.filter(pl.col("slice") == name).unique("item_id", keep="first")
        rows = rows.sort("item_id").head(per_slice)
        prompts[name] = rows["prompt"].to_list()
        for item, prompt in zip(rows["item_id"].to_list(), rows["prompt"].to_list(), strict=True):
            answers[prompt] = str(best[item])
    return prompts, answers


class LoopThread:
    """An event loop on a daemon thread (the test backends live here)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 60) -> T:
        async def wrap() -> T:
            return await coro

        fut: Future[T] = asyncio.run_coroutine_threadsafe(wrap(), self.loop)
        return fut.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


def manifest(tag: str, backend: TestBackend, previous: str | None) -> bytes:
    """A closed-weight release served by ``backend``: model ``model-<tag>``, system message
    ``system of <tag>``, template ``[<tag>] {input}`` (so echoes name all three)."""
    doc = {
        "model": {
            "kind": "api",
            "provider": "openai-compatible",
            "model": f"model-{tag}",
            "endpoint": backend.base_url,
        },
        "prompt_template": {
            "ref": f"test/{tag}",
            "system": f"system of {tag}",
            "template": f"[{tag}] {{input}}",
            "variables": ["input"],
        },
        "routing": [{}],
        "dataset": {"ref": "truthfulqa-demo", "sha256": "ab" * 32},
        "previous_release": previous,
    }
    return json.dumps(doc).encode()


@dataclass
class Env:
    """One running server with a manual clock and two test backends (stable, candidate)."""

    server: RunningServer
    clock: ManualClock
    client: RelgateClient
    loop: LoopThread
    backends: dict[str, TestBackend]
    prompts: dict[str, list[str]]
    judge_down: list[bool] = field(default_factory=lambda: [False])
    shas: dict[str, str] = field(default_factory=dict)

    @property
    def gateway_chat(self) -> str:
        return self.server.gateway_url + "/v1/chat/completions"

    def register(
        self, tag: str, backend: str, previous: str | None = None, gate: str = "pass"
    ) -> str:
        """Register a release on ``backend`` and record its gate decision in the store."""
        prev = self.shas.get(previous, previous) if previous else None
        reply = self.client.register_release(manifest(tag, self.backends[backend], prev))
        sha = reply.release.sha256
        self.shas[tag] = sha
        if gate:
            record_gate(self.server, sha, gate)
        return sha

    def make_live(self, tag: str) -> None:
        """Cold start ``tag`` (shadow of 0 s, then a human promote): it serves everything."""
        ro = self.client.start_rollout(self.shas[tag], overrides={"shadow_s": 0})
        self.client.control("Promote", ro.rollout_id, "bootstrap")
        wait_for(lambda: self.server.rollouts.live_release("default") == self.shas[tag])

    def traffic(self, n: int, *, rate: float = 400.0) -> LoadResult:
        """``n`` requests spread over the slices' prompts, one session each."""
        return traffic(self.gateway_chat, self.prompts, n, rate=rate)

    def rollout(self, rid: str) -> ActiveRollout:
        return self.server.rollouts.get(rid)

    def phase(self, rid: str) -> int:
        return self.client.get_rollout(rid).status.phase

    def wait_phase(self, rid: str, *phases: int, timeout: float = 30) -> rollout_pb2.Rollout:
        try:
            wait_for(lambda: self.phase(rid) in phases, timeout, f"phase in {phases}")
        except AssertionError as exc:
            # Say where the rollout stands and why, so a timeout on a loaded machine is readable.
            status = self.client.get_rollout(rid).status
            raise AssertionError(f"{exc}; rollout is at {status}") from None
        return self.client.get_rollout(rid)

    def receipts(self, sha: str) -> list[Any]:
        return self.server.store.list_receipts(release_sha=sha)

    def kinds(self, sha: str) -> list[str]:
        return [r.kind for r in self.receipts(sha)]


def traffic(url: str, prompts: dict[str, list[str]], n: int, *, rate: float = 400.0) -> LoadResult:
    """``n`` requests to ``url`` over the slices' prompts (slice header set), one session each."""
    flat = [p for name in SLICES for p in prompts[name]]
    slices = [name for name in SLICES for _ in prompts[name]]
    # loadgen picks prompts[i % len] and slices[i % len]: equal lengths keep them paired.
    spec = LoadSpec(
        url=url,
        rate_per_s=rate,
        max_requests=n,
        max_seconds=60,
        sessions=100_000,
        session_prefix=f"s{time.monotonic_ns()}-",
        slices=tuple(slices),
        prompts=tuple(flat),
        timeout_s=30,
    )
    return asyncio.run(run_load(spec))


def record_gate(
    server: RunningServer | Store, sha: str, verdict: str, judge_sha256: str | None = None
) -> None:
    """What the gate records (the contract with the gate's service): a gate_result fact with
    its receipt; ``override`` adds a gate_override. The result names the judge the server's
    quality monitor uses (a rollout refuses a release gated with another judge)."""
    if judge_sha256 is None:
        assert isinstance(server, RunningServer) and server.rollouts.options.judge is not None
        judge_sha256 = server.rollouts.options.judge().judge_sha256
    result = {
        "verdict": "fail" if verdict == "override" else verdict,
        "gate_result_sha256": "cd" * 32,
        "judge_sha256": judge_sha256,
        "suite_sha256": "ab" * 32,
    }
    kind = "gate_pass" if result["verdict"] == "pass" else "gate_fail"
    store = server if isinstance(server, Store) else server.store
    store.record_decision(
        tenant="default",
        release_sha=sha,
        kind=kind,
        evidence=result,
        actor="test",
        reason="test gate",
        facts=[("gate_result", result)],
    )
    if verdict == "override":
        store.record_decision(
            tenant="default",
            release_sha=sha,
            kind="gate_override",
            evidence={"rationale": "test override"},
            actor="test",
            reason="test override",
            facts=[
                (
                    "gate_override",
                    {
                        "gate_override_sha256": "12" * 32,
                        "rationale": "ok",
                        "actor": "test",
                        "gate_result_sha256": result["gate_result_sha256"],
                    },
                )
            ],
        )


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``predicate`` until true or the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


def start_env(
    tmp: Path,
    judge: Callable[[], Judge],
    *,
    latency_s: float = 0.02,
    answers: bool = True,
) -> Iterator[Env]:
    """A server + backends; yields the env, tears everything down."""
    prompts, table = demo_qa()
    loop = LoopThread()
    knobs = BackendKnobs(base_latency_s=latency_s, answers=table if answers else {})
    backends = {name: TestBackend(name, knobs, seed=i) for i, name in enumerate(("b1", "b2"))}
    for b in backends.values():
        loop.run(b.start())
    clock = ManualClock()
    down = [False]

    def the_judge() -> Judge:
        if down[0]:
            raise JudgeUnavailableError("judge backend down")
        return judge()

    anchors = suite_anchors(demo_suite_path())
    options = RolloutOptions(
        clock=clock,
        tick_interval_s=0.02,
        judge=the_judge,
        anchors=lambda sha: anchors,
        drain_deadline_s=5.0,
        probe=ProbeOptions(replay_interval_s=30.0),
    )
    bg = BackgroundServer(tmp / "data", rollout=options)
    server = bg.start()
    key = (tmp / "data" / "admin.key").read_text().strip()
    client = RelgateClient(server.address, api_key=key, timeout=60)
    try:
        yield Env(server, clock, client, loop, backends, prompts, down)
    finally:
        client.close()
        bg.stop()
        for b in backends.values():
            loop.run(b.stop())
        loop.close()


def releases_of(records: Sequence[Any]) -> set[str]:
    return {r.release for r in records}


@dataclass
class ServeProc:
    """A ``relgate serve`` subprocess with its bound addresses."""

    proc: subprocess.Popen[str]
    address: str
    gateway: str
    stderr: list[str]

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


_SERVING = re.compile(r"relgate serving grpc=(\S+) web=\S+ admin_key=\S+ gateway=(\S+)")


def start_serve(data_dir: Path, *extra: str, timeout: float = 60) -> ServeProc:
    """``python -m relgate serve`` on free ports; waits for its serving line."""
    argv = [sys.executable, "-m", "relgate", "serve", "--data-dir", str(data_dir)]
    argv += ["--grpc-port", "0", "--web-port", "0", "--gateway-port", "0", *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    threading.Thread(
        target=lambda: lines.extend(iter(proc.stderr.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    ).start()
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    match = _SERVING.search(found[0]) if found else None
    if match is None:
        proc.kill()
        proc.wait()
        raise AssertionError(f"serve did not start: {found} {''.join(lines)[-3000:]}")
    return ServeProc(proc, match.group(1), match.group(2), lines)
