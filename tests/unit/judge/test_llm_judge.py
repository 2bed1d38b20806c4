"""LLM judges: P(yes) from logprobs. The OpenAI-compatible judge talks to a loopback HTTP server
that is a TEST DOUBLE serving fixed logprobs; the transformers judge runs a tiny random model
built here (its numbers mean nothing; the prefill arithmetic and batching are what is tested)."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from relgate.errors import JudgeError, JudgeUnavailableError
from relgate.judge.llm import OpenAIJudge, judge_messages, yes_probability


def test_yes_probability_normalizes_over_spellings() -> None:
    top = [("Yes", math.log(0.6)), (" yes", math.log(0.1)), ("No", math.log(0.2)), ("x", 0.0)]
    assert yes_probability(top) == pytest.approx(0.7 / 0.9)
    assert yes_probability([("no.", -0.1)]) == 0.0
    with pytest.raises(JudgeError, match="neither 'yes' nor 'no'"):
        yes_probability([("maybe", -0.1)])


class FixedLogprobsServer:
    """TEST DOUBLE of an OpenAI-compatible endpoint on 127.0.0.1: answers every chat completion
    with fixed top logprobs: P(yes)=0.9 when the candidate answer equals the reference, else 0.2.
    ``fail_first`` requests get HTTP 503 first (to exercise retries)."""

    def __init__(self, fail_first: int = 0, status: int = 200) -> None:
        self.fail_first = fail_first
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503, text="busy")
        if self.status != 200:
            return web.Response(status=self.status, text="bad request")
        user = body["messages"][-1]["content"]
        ref = user.split("Reference answer: ")[1].split("\n")[0]
        answer = user.split("Candidate answer: ")[1].split("\n")[0]
        p_yes = 0.9 if answer == ref else 0.2
        top = [
            {"token": "Yes", "logprob": math.log(p_yes)},
            {"token": "No", "logprob": math.log(1 - p_yes)},
        ]
        if answer == "NO-LOGPROBS":
            top = [{"token": "Perhaps", "logprob": -0.01}]
        payload = {"choices": [{"message": {"content": "Yes"}, "logprobs": {"content": [
            {"token": "Yes", "logprob": top[0]["logprob"], "top_logprobs": top}
        ]}}]}  # fmt: skip
        return web.json_response(payload)

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

    def __enter__(self) -> FixedLogprobsServer:
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
def server() -> Iterator[FixedLogprobsServer]:
    with FixedLogprobsServer() as srv:
        yield srv


def test_openai_judge_reads_probabilities(server: FixedLogprobsServer) -> None:
    judge = OpenAIJudge(server.base_url, "judge-model", concurrency=2)
    scores = judge.score(["Paris", "Lyon", "Paris"], ["Paris", "Paris", "France"])
    np.testing.assert_allclose(scores, [0.9, 0.2, 0.2])
    body = server.bodies[0]
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 20
    assert body["messages"] == judge_messages("Paris", "Paris")
    assert judge.description["weights"] == "served-model:judge-model"


def test_openai_judge_retries_server_errors() -> None:
    with FixedLogprobsServer(fail_first=2) as srv:
        judge = OpenAIJudge(srv.base_url, "m", retries=2)
        assert judge.agree("a", "a") == pytest.approx(0.9)
        assert len(srv.bodies) == 3
    with (
        FixedLogprobsServer(fail_first=5) as srv,
        pytest.raises(JudgeUnavailableError, match="no answer after 2 tries"),
    ):
        OpenAIJudge(srv.base_url, "m", retries=1).agree("a", "a")


def test_openai_judge_client_errors_and_missing_tokens_are_judge_errors() -> None:
    with FixedLogprobsServer(status=400) as srv:
        with pytest.raises(JudgeError, match="HTTP 400"):
            OpenAIJudge(srv.base_url, "m").agree("a", "a")
        assert len(srv.bodies) == 1  # a 400 is not retried
    with (
        FixedLogprobsServer() as srv,
        pytest.raises(JudgeError, match="neither 'yes' nor 'no'"),
    ):
        OpenAIJudge(srv.base_url, "m").agree("NO-LOGPROBS", "a")


def test_openai_judge_works_inside_a_running_loop(server: FixedLogprobsServer) -> None:
    judge = OpenAIJudge(server.base_url, "m")

    async def caller() -> float:
        sync = judge.agree("x", "x")
        asynchronous = await judge.ascore(["x"], ["y"])
        return sync + float(asynchronous[0])

    assert asyncio.run(caller()) == pytest.approx(1.1)


def test_openai_judge_identity_ignores_transport_settings() -> None:
    a = OpenAIJudge("http://127.0.0.1:1/v1", "m", concurrency=1)
    b = OpenAIJudge("http://127.0.0.1:2/v1", "m", concurrency=9)
    assert a.judge_sha256 == b.judge_sha256
    assert OpenAIJudge("http://x/v1", "m2").judge_sha256 != a.judge_sha256
    assert json.dumps(dict(a.description))  # JSON-able


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer random Llama with the MiniLM WordPiece tokenizer, saved locally."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from relgate.judge.embedding import default_model_dir

    out = tmp_path_factory.mktemp("tiny-lm")
    tok = transformers.AutoTokenizer.from_pretrained(default_model_dir(), local_files_only=True)
    config = transformers.LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_transformers_judge_prefill_matches_manual_softmax(tiny_lm: Path) -> None:
    torch = pytest.importorskip("torch")
    from relgate.judge.llm import TransformersJudge, _prompt_text

    judge = TransformersJudge(str(tiny_lm), device="cpu", batch_size=4)
    answers = ["yes it is", "the moon is made of rock and dust, not cheese", "no"]
    refs = ["it is", "the moon is rock", "absolutely not, never, under no circumstances"]
    batched = judge.score(answers, refs)
    assert ((batched >= 0.0) & (batched <= 1.0)).all()
    # One pair at a time, no padding, computed by hand from the logits.
    model, tok = judge._model, judge._tok
    for i, (a, r) in enumerate(zip(answers, refs, strict=True)):
        ids = tok(_prompt_text(tok, a, r), return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            probs = torch.softmax(model(**ids).logits[0, -1].float(), dim=-1)
        p_yes = float(probs[judge._yes].sum())
        p_no = float(probs[judge._no].sum())
        assert batched[i] == pytest.approx(p_yes / (p_yes + p_no), abs=1e-5)
    assert judge.description["weights"].startswith("sha256:")
    assert judge.tokens_processed > 0


def test_transformers_answers_generate_greedily_per_item(tiny_lm: Path) -> None:
    from relgate.answers import from_transformers

    prompts = {"q1": "is it legal?", "q2": "a much longer question about the moon and tides"}
    messages = {k: [{"role": "user", "content": v}] for k, v in prompts.items()}
    short = {"max_tokens": 4}
    first = from_transformers(messages, model=str(tiny_lm), generation=short, batch_size=2)
    alone = from_transformers({"q1": messages["q1"]}, model=str(tiny_lm), generation=short)
    assert set(first) == {"q1", "q2"} and first.source.startswith("transformers")
    assert first["q1"] == alone["q1"]  # left padding in a batch does not change the answer
