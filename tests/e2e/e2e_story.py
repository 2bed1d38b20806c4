"""The demo story against a real server, for the browser test.

What is real: the server (gRPC, gateway, SQLite, receipts), the gate (RunGate through
``RelgateClient`` with the CPU embedding judge on the shipped TruthfulQA suite and the recorded
v1/v2 answers, as the demo's gate chapter does), the rollout controller, its monitors and trace
replay, and traffic through the gateway from the load generator. What stands in: the model
servers are TEST BACKENDS (``relgate.testing.backends``) answering with the recorded demo
answers, as in the demo's roll chapter.

The story: v1 and v2 are registered on the shipped suite (v2's previous release is v1) and gated
(v1, a cold start, fails and is overridden; v2 fails on Law). v1 is shadowed for 0 s and
promoted by a human, so it serves everything. v2's failed gate is overridden with a rationale
and v2 is canaried under generated traffic with the demo's holds; the replay monitor catches
Law at 5% and the controller rolls back to v1.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from relgate import dashboard
from relgate._proto.relgate.v1 import gate_pb2
from relgate.answers import load_answers
from relgate.app.gates import GateOptions
from relgate.app.probes import suite_anchors
from relgate.app.rollouts import RolloutOptions
from relgate.client import RelgateClient, answer_source
from relgate.data import demo_answers_path, demo_suite_path
from relgate.demo.gate import demo_manifest
from relgate.demo.roll import DEMO_SLICES, DEMO_SPEC
from relgate.judge.base import Judge
from relgate.service.server import BackgroundServer, RunningServer
from relgate.suite import load_suite
from relgate.testing.backends import BackendKnobs, TestBackend
from relgate.testing.loadgen import LoadSpec, run_load

T = TypeVar("T")
ROLLED_BACK = 8  # relgate.v1.RolloutPhase ROLLED_BACK


def wait_for(what: str, check: Callable[[], T | None], timeout: float) -> T:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


class _Loop:
    """An event loop on a daemon thread (the test backends and the traffic live here)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


@dataclass
class Story:
    """The running server and what happened on it."""

    server: RunningServer
    admin_key: str
    shas: dict[str, str] = field(default_factory=dict)
    rollouts: dict[str, str] = field(default_factory=dict)
    failed_slices: tuple[str, ...] = ()
    _bg: BackgroundServer | None = None
    _loop: _Loop | None = None
    _backends: list[TestBackend] = field(default_factory=list)
    _traffic_stop: asyncio.Event | None = None
    _traffic: Future[Any] | None = None

    # ---- setup ------------------------------------------------------------------------------

    @classmethod
    def start(cls, data_dir: Path, judge: Judge, score_cache: Path) -> Story:
        """Backends for v1 and v2, and a server whose clock runs 60x (holds of minutes pass
        in seconds) with the gate's judge and score cache injected."""
        loop = _Loop()
        suite = pl.read_csv(demo_suite_path()).unique("item_id", keep="first")
        prompt_of = dict(zip(suite["item_id"].to_list(), suite["prompt"].to_list(), strict=True))
        backends = []
        for tag in ("v1", "v2"):
            table = {prompt_of[i]: a for i, a in dict(load_answers(demo_answers_path(tag))).items()}
            b = TestBackend(f"demo-{tag}", BackendKnobs(base_latency_s=0.05, answers=table))
            loop.run(b.start())
            backends.append(b)
        anchors = suite_anchors(demo_suite_path())
        bg = BackgroundServer(
            data_dir,
            time_scale=60.0,
            rollout=RolloutOptions(tick_interval_s=0.1, anchors=lambda sha: anchors),
            gate=GateOptions(judge_factory=lambda choice: judge, score_cache=score_cache),
            web_extension=dashboard.mount,
        )
        running = bg.start()
        assert running.admin_key_path is not None
        story = cls(
            server=running,
            admin_key=running.admin_key_path.read_text().strip(),
            _bg=bg,
            _loop=loop,
            _backends=backends,
        )
        return story

    def stop(self) -> None:
        """Stop the traffic, the server and the backends."""
        self.stop_traffic()
        if self._bg is not None:
            self._bg.stop()
        if self._loop is not None:
            for b in self._backends:
                self._loop.run(b.stop())
            self._loop.close()

    def gates(self) -> RelgateClient:
        return RelgateClient(self.server.address, api_key=self.admin_key, timeout=600)

    def rollout_client(self) -> RelgateClient:
        return RelgateClient(self.server.address, api_key=self.admin_key, timeout=120)

    # ---- the story --------------------------------------------------------------------------

    def register_and_gate(self) -> None:
        """Register v1 and v2 (endpoints: their backends; the prompt passes through) and gate
        both through RunGate on their recorded answers."""
        suite_sha = load_suite(demo_suite_path()).sha256
        client = self.gates()
        try:
            prev = None
            for tag, backend in zip(("v1", "v2"), self._backends, strict=True):
                doc = demo_manifest(tag, suite_sha, prev)
                doc["model"]["endpoint"] = backend.base_url
                doc["prompt_template"].update(template="{input}", variables=["input"])
                doc["prompt_template"]["ref"] = f"truthfulqa-qa/{tag}"
                prev = client.register_release(json.dumps(doc)).release.sha256
                self.shas[tag] = prev
            for tag in ("v1", "v2"):
                result = client.run_gate(
                    self.shas[tag], answers=answer_source(answers=demo_answers_path(tag))
                )
                if tag == "v1":
                    # A cold start fails its gate; it passes only through an override.
                    client.override_gate(
                        self.shas["v1"],
                        "v1 is the first release this server sees (cold start)",
                        gate_result_sha256=result.gate_result_sha256,
                    )
                if tag == "v2":
                    self.failed_slices = tuple(
                        s.slice for s in result.slices if s.verdict == gate_pb2.SLICE_VERDICT_FAIL
                    )
        finally:
            client.close()

    def roll_v1(self) -> None:
        """v1 (a cold start) shadowed for 0 s and promoted by a human: it serves everything."""
        client = self.rollout_client()
        try:
            ro = client.start_rollout(self.shas["v1"], overrides={"shadow_s": 0}, reason="v1")
            self.rollouts["v1"] = ro.rollout_id
            client.control("Promote", ro.rollout_id, "v1 serves from now on")
        finally:
            client.close()
        wait_for(
            "v1 to go live",
            lambda: self.server.rollouts.live_release("default") == self.shas["v1"],
            60,
        )

    def start_traffic(self, rate: float = 200.0) -> None:
        """Users on the demo's six large slices through the gateway until ``stop_traffic``."""
        assert self._loop is not None
        suite = pl.read_csv(demo_suite_path()).unique("item_id", keep="first").sort("item_id")
        suite = suite.filter(pl.col("slice").is_in(DEMO_SLICES))
        spec = LoadSpec(
            url=self.server.gateway_url + "/v1/chat/completions",
            rate_per_s=rate,
            max_requests=10_000_000,
            max_seconds=900,
            sessions=5000,
            session_prefix="user-",
            slices=tuple(suite["slice"].to_list()),
            prompts=tuple(suite["prompt"].to_list()),
        )

        async def make_stop() -> asyncio.Event:
            return asyncio.Event()

        self._traffic_stop = self._loop.run(make_stop())
        self._traffic = asyncio.run_coroutine_threadsafe(
            run_load(spec, stop=self._traffic_stop), self._loop.loop
        )

    def stop_traffic(self) -> None:
        if self._loop is not None and self._traffic_stop is not None:
            self._loop.loop.call_soon_threadsafe(self._traffic_stop.set)
            if self._traffic is not None:
                self._traffic.result(60)
            self._traffic_stop = self._traffic = None

    def override_and_roll_v2(self) -> str:
        """Override v2's failed gate with a rationale and start its canary; returns its id."""
        gates = self.gates()
        try:
            gates.override_gate(
                self.shas["v2"],
                "demo: ship v2 anyway to show the canary catching what the gate caught",
            )
        finally:
            gates.close()
        client = self.rollout_client()
        try:
            ro = client.start_rollout(self.shas["v2"], overrides=DEMO_SPEC, reason="v2 override")
        finally:
            client.close()
        self.rollouts["v2"] = ro.rollout_id
        return str(ro.rollout_id)

    def wait_rolled_back(self, timeout: float = 240) -> None:
        """Until v2's rollout is rolled back (the replay monitor's doing)."""
        client = self.rollout_client()
        try:
            wait_for(
                "v2 to be rolled back",
                lambda: client.get_rollout(self.rollouts["v2"]).status.phase == ROLLED_BACK,
                timeout,
            )
        finally:
            client.close()
