"""SIGKILL ``relgate serve`` mid-canary and start it again on the same gateway port while a
client keeps asking: every answer the gateway gives is served by the live releases of the
canary (no 503 window, no wrong release), from the very first one; and the rollout resumes with
the request count it had (not 0 of its minimum)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from relgate.client import RelgateClient
from relgate.routing import SESSION_HEADER
from relgate.store import Store
from relgate.testing.backends import BackendKnobs, TestBackend
from scale_helpers import assert_one_chain, default_judge_sha

from rollout_helpers import (  # isort: skip (on the path once scale_helpers is imported)
    PHASE,
    LoopThread,
    ServeProc,
    demo_qa,
    manifest,
    record_gate,
    start_serve,
    traffic,
    wait_for,
)

SPEC = {
    # A hold the restart lands in: 10 000 s of dwell at 100x is 100 s of wall time.
    "steps": [
        {"weight_bp": 5000, "dwell_s": 10000, "min_requests": 100000, "deadline_s": 100000},
        {"weight_bp": 10000},
    ],
}


@pytest.fixture
def backends() -> Iterator[dict[str, TestBackend]]:
    loop = LoopThread()
    _, answers = demo_qa()
    made = {
        n: TestBackend(n, BackendKnobs(answers=answers, base_latency_s=0.005)) for n in ("b1", "b2")
    }
    for b in made.values():
        loop.run(b.start())
    yield made
    for b in made.values():
        loop.run(b.stop())
    loop.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Asker:
    """Asks the gateway again and again; keeps the status and release of every HTTP answer
    (a refused connection is no answer: nothing listens yet)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[tuple[int, str]] = []
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Asker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        body = json.dumps({"model": "relgate", "messages": [{"role": "user", "content": "hi"}]})
        i = 0
        while not self._stop.is_set() and len(self.answers) < 5000:
            i += 1
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request(
                    "POST", "/v1/chat/completions", body=body,
                    headers={"content-type": "application/json", SESSION_HEADER: f"a{i}"},
                )  # fmt: skip
                r = conn.getresponse()
                r.read()
                self.answers.append((r.status, r.getheader("x-relgate-release") or ""))
            except (ConnectionError, OSError):
                self.refused += 1
                self._stop.wait(0.005)
            finally:
                conn.close()


@pytest.mark.slow
def test_restart_serves_the_live_routing_from_the_first_request(
    tmp_path: Path, backends: dict[str, TestBackend]
) -> None:
    data = tmp_path / "data"
    port = _free_port()
    prompts, _ = demo_qa()
    args = (
        "--gateway-port", str(port), "--time-scale", "100", "--rollout-tick", "0.05",
        "--log-level", "WARNING",
    )  # fmt: skip
    procs: list[ServeProc] = []
    try:
        first = start_serve(data, *args)
        procs.append(first)
        key = (data / "admin.key").read_text().strip()
        store = Store.open(None, data_dir=data)
        try:
            with RelgateClient(first.address, api_key=key, timeout=60) as c:
                v1 = c.register_release(manifest("v1", backends["b1"], None)).release.sha256
                record_gate(store, v1, "pass", default_judge_sha())
                boot = c.start_rollout(v1, overrides={"shadow_s": 0})
                c.control("Promote", boot.rollout_id, "bootstrap")
                v2 = c.register_release(manifest("v2", backends["b2"], v1)).release.sha256
                record_gate(store, v2, "pass", default_judge_sha())
                ro = c.start_rollout(v2, overrides=SPEC)
                traffic(f"http://127.0.0.1:{port}/v1/chat/completions", prompts, 60)
                wait_for(
                    lambda: c.get_rollout(ro.rollout_id).status.requests_at_step > 0,
                    what="requests counted",
                )
                seen = c.get_rollout(ro.rollout_id).status.requests_at_step
        finally:
            store.close()
        with _Asker(port) as asker:
            first.kill()
            second = start_serve(data, *args)
            procs.append(second)
            wait_for(lambda: len(asker.answers) >= 50, what="answers after the restart")
        assert asker.answers, "no answer at all"
        statuses = {s for s, _ in asker.answers}
        assert statuses == {200}, f"answers other than 200 after the restart: {statuses}"
        assert {r for _, r in asker.answers} == {v1, v2}  # the canary's split, from the start
        with RelgateClient(second.address, api_key=key, timeout=60) as c:
            again = c.get_rollout(ro.rollout_id)
            assert again.status.phase == PHASE.ROLLOUT_PHASE_PROGRESSING
            # The requests counted before the crash still count (persisted with the facts).
            assert again.status.requests_at_step >= seen
        with Store.open(None, data_dir=data) as store:
            assert_one_chain(store.list_receipts())
    finally:
        for p in procs:
            p.stop()
