"""Release answers: recorded files, and an OpenAI-compatible endpoint served by a loopback
TEST DOUBLE (echoes the rendered prompt; fails the first requests to exercise retries)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from relgate.answers import Answers, from_endpoint, load_answers
from relgate.errors import InvalidInputError, JudgeUnavailableError, NotFoundError, RelgateError
from relgate.manifest import PromptTemplate


def test_sha_is_order_and_format_independent(tmp_path: Path) -> None:
    a = Answers({"q1": "yes", "q2": "no"})
    b = Answers({"q2": "no", "q1": "yes"})
    assert a.sha256 == b.sha256 != Answers({"q1": "yes", "q2": "No"}).sha256
    assert a.answer_sha256["q1"] != a.answer_sha256["q2"]
    for name in ("a.jsonl", "a.parquet"):
        assert load_answers(a.write(tmp_path / name)).sha256 == a.sha256
    csv = tmp_path / "a.csv"
    csv.write_text("item_id,answer\nq1,yes\nq2,no\n")
    assert load_answers(csv).sha256 == a.sha256


def test_bad_answer_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"item_id": "q1", "text": "x"}) + "\n")
    with pytest.raises(InvalidInputError, match="missing column\\(s\\) answer"):
        load_answers(path)
    path.write_text("".join(json.dumps({"item_id": "q1", "answer": a}) + "\n" for a in "ab"))
    with pytest.raises(InvalidInputError, match="item_id 'q1' appears twice"):
        load_answers(path)
    path.write_text(json.dumps({"item_id": "q1", "answer": None}) + "\n")
    with pytest.raises(InvalidInputError, match="column answer is null at row 1"):
        load_answers(path)
    with pytest.raises(NotFoundError):
        load_answers(tmp_path / "none.jsonl")
    with pytest.raises(InvalidInputError, match="no answer for 1 suite item"):
        Answers({"q1": "x"}).require(["q1", "q2"])


def test_render_prompt_applies_template_and_system() -> None:
    template = PromptTemplate(
        ref="t", system="Be brief.", template="Q: {question}\nA:", variables=("question",)
    )
    assert template.render_prompt("Is it?") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: Is it?\nA:"},
    ]
    two = PromptTemplate(
        ref="t", template="{question} {context}", variables=("question", "context")
    )
    with pytest.raises(InvalidInputError, match="prompt variables missing: question, context"):
        two.render_prompt("x")


class EchoChatServer:
    """TEST DOUBLE of an OpenAI-compatible chat endpoint on 127.0.0.1: answers with the last
    user message upper-cased; the first ``fail_first`` requests get HTTP 503."""

    def __init__(self, fail_first: int = 0, status: int = 200) -> None:
        self.fail_first, self.status = fail_first, status
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let concurrent requests overlap
            if self.fail_first > 0:
                self.fail_first -= 1
                return web.Response(status=503)
            if self.status != 200:
                return web.Response(status=self.status, text="nope")
            text = body["messages"][-1]["content"].upper()
            return web.json_response({"choices": [{"message": {"content": text}}]})
        finally:
            self.in_flight -= 1

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

    def __enter__(self) -> EchoChatServer:
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


@pytest.fixture
def server() -> Iterator[EchoChatServer]:
    with EchoChatServer(fail_first=2) as srv:
        yield srv


def test_endpoint_answers_with_template_retries_and_concurrency_limit(
    server: EchoChatServer,
) -> None:
    template = PromptTemplate(ref="t", template="Q: {question}", variables=("question",))
    messages = {f"q{k}": template.render_prompt(f"question {k}") for k in range(12)}
    answers = from_endpoint(messages, base_url=server.base_url, model="m", concurrency=3)
    assert answers["q7"] == "Q: QUESTION 7" and len(answers) == 12
    assert len(server.bodies) == 12 + 2  # two 503s retried
    assert server.max_in_flight <= 3
    assert server.bodies[-1]["temperature"] == 0.0 and server.bodies[-1]["model"] == "m"


USER_X = {"q": [{"role": "user", "content": "x"}]}


def test_endpoint_errors() -> None:
    with (
        EchoChatServer(fail_first=10) as srv,
        pytest.raises(JudgeUnavailableError, match="2 tries"),
    ):
        from_endpoint(USER_X, base_url=srv.base_url, model="m", retries=1)
    with EchoChatServer(status=404) as srv, pytest.raises(RelgateError, match="HTTP 404"):
        from_endpoint(USER_X, base_url=srv.base_url, model="m")
