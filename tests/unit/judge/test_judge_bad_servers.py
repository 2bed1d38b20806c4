"""A judge server that dies, hangs, returns garbage or no logprobs: a named JudgeError from the
LLM judge and INCONCLUSIVE from the replay monitor, never a score and never a pass. Also the
prefill anchor of ``relgate bench judge`` against a server double."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator

import numpy as np
import pytest
from aiohttp import web
from relgate.bench.judge import measure_prefill
from relgate.errors import JudgeError, JudgeUnavailableError
from relgate.judge.llm import OpenAIJudge
from relgate.rollout.monitors import Verdict, evaluate_quality
from relgate.rollout.replay import ReplayTrace, replay_quality
from relgate.rollout.spec import MonitorThresholds

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    """TEST DOUBLE of an OpenAI-compatible server on 127.0.0.1 answering with ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.port = 0
        self.hits = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        return await self.handler(request)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> Server:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


async def garbage(_r: web.Request) -> web.StreamResponse:
    return web.Response(status=200, text="<html>not json</html>", content_type="text/html")


async def no_logprobs(_r: web.Request) -> web.StreamResponse:
    return web.json_response({"choices": [{"message": {"content": "Yes"}}]})


async def hang(_r: web.Request) -> web.StreamResponse:
    await asyncio.sleep(4)  # far past the judge's 0.5 s timeout; short enough to shut down
    return web.json_response({})


async def prefill(r: web.Request) -> web.StreamResponse:
    body = await r.json()
    assert body["max_tokens"] == 1 and "logprobs" not in body
    n = sum(len(m["content"].split()) for m in body["messages"])
    return web.json_response({"choices": [{"message": {"content": "No"}}],
                              "usage": {"prompt_tokens": n, "completion_tokens": 1}})  # fmt: skip


@pytest.fixture(params=["garbage", "no_logprobs", "hang", "dead"])
def bad_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "dead":
        # Bound but never listening, and held for the test: connections are refused, and no
        # other process can take the port meanwhile.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            yield f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        return
    handler = {"garbage": garbage, "no_logprobs": no_logprobs, "hang": hang}[request.param]
    with Server(handler) as srv:
        yield srv.base_url


def test_a_bad_judge_server_is_a_named_judge_error(bad_url: str) -> None:
    judge = OpenAIJudge(bad_url, "m", retries=1, timeout_s=0.5)
    with pytest.raises(JudgeError) as info:
        judge.score(["a", "b"], ["a", "c"])
    assert bad_url.split("/v1")[0] in str(info.value)
    assert isinstance(info.value, JudgeError | JudgeUnavailableError)


def test_a_bad_judge_server_makes_the_replay_monitor_inconclusive(bad_url: str) -> None:
    judge = OpenAIJudge(bad_url, "m", retries=0, timeout_s=0.5)
    traces = {"Law": [ReplayTrace(f"t{i}", "Law", "q", f"served {i}", float(i)) for i in range(25)]}
    answers = {f"t{i}": f"answer {i}" for i in range(25)}
    reading = replay_quality(
        traces, answers, {"Law": ["I have no comment."]}, judge.score, stable_rerun=answers
    )
    assert reading.judge_error is not None and not reading.slices
    verdict = evaluate_quality(reading, MonitorThresholds())
    assert verdict.verdict is Verdict.INCONCLUSIVE
    assert "judge error" in verdict.reason


def test_prefill_anchor_measures_the_same_prompts_and_the_ratio() -> None:
    with Server(prefill) as srv:
        anchor = measure_prefill(
            srv.base_url, "m", ["a b", "c"], ["d", "e f"], judge_pairs_per_s=4.0, concurrency=2
        )
        assert srv.hits == 3  # one warm-up, then every pair once
    assert anchor.pairs == 2 and anchor.prompt_tokens > 0 and anchor.pairs_per_s > 0
    assert anchor.ratio == pytest.approx(4.0 / anchor.pairs_per_s)
    assert np.isfinite(anchor.prompt_tokens_per_s)


def test_prefill_anchor_without_usage_is_a_judge_error() -> None:
    with Server(no_logprobs) as srv, pytest.raises(JudgeError, match=r"usage\.prompt_tokens"):
        measure_prefill(srv.base_url, "m", ["a"], ["b"], judge_pairs_per_s=1.0)
