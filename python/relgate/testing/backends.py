"""TEST BACKENDS: small OpenAI-compatible model servers for tests, demos and benchmarks.

These are NOT product code and serve no real model. A :class:`TestBackend` answers
``POST /v1/chat/completions`` (streaming and not) on 127.0.0.1, with knobs that tests turn to
make a release look slow, flaky or bad on one slice:

- ``base_latency_s`` and ``latency_factor``: each answer waits ``base_latency_s * latency_factor``;
- ``error_probability``: share of requests answered with HTTP 500 (seeded RNG: reproducible);
- ``degraded_slices``: slices (read from the ``x-relgate-slice`` header the gateway forwards)
  whose answers are replaced by ``hedge`` text, a quality-only regression;
- ``stream_chunks`` / ``stream_chunk_delay_s``: how a streamed answer is cut and paced;
  ``stream_abort_after``: drop the connection after that many chunks;
- ``answers``: an answer table keyed by prompt; the answer is the entry whose key equals the last
  user message, else the longest key contained in it (templates wrap prompts), else an echo.

The echo answer states the backend's name, the model it was asked for and the system message
it received, so a test can check that a response never mixes one release's prompt with another
release's model or endpoint. Every request is logged in :attr:`TestBackend.received`.

``pause()`` / ``resume()`` hold requests inside the backend, and :meth:`TestBackend.wait_arrivals`
waits (no sleeping) until a number of requests have arrived: tests use them to keep requests
in flight across a routing swap.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from relgate.manifest import PromptTemplate, Routing, message_text
from relgate.routing import SLICE_HEADER, ReleaseRoute

DEFAULT_HEDGE = (
    "I can't give legal advice. Please consult a qualified professional about your situation."
)


@dataclass(frozen=True, slots=True)
class BackendKnobs:
    """The behaviour of a test backend; swap in a new value with :meth:`TestBackend.set_knobs`."""

    base_latency_s: float = 0.0
    latency_factor: float = 1.0
    error_probability: float = 0.0
    degraded_slices: frozenset[str] = frozenset()
    hedge: str = DEFAULT_HEDGE
    answers: Mapping[str, str] = field(default_factory=dict)
    stream_chunks: int = 4
    stream_chunk_delay_s: float = 0.0
    stream_abort_after: int | None = None


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """What the backend saw: model, system message, last user message, slice header, stream."""

    model: str
    system: str
    user: str
    slice: str
    stream: bool
    status: int
    authorization: str = ""


class TestBackend:
    """A TEST BACKEND (OpenAI-compatible, loopback only). Not product code."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str, knobs: BackendKnobs | None = None, *, seed: int = 0) -> None:
        self.name = name
        self.knobs = knobs or BackendKnobs()
        self.received: list[ReceivedRequest] = []
        self.port = 0
        self._rng = random.Random(seed)
        self._runner: web.AppRunner | None = None
        self._open = asyncio.Event()
        self._open.set()
        self._arrived = 0
        self._arrival = asyncio.Condition()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def set_knobs(self, **changes: Any) -> None:
        """Change knobs (effective for the next request)."""
        self.knobs = replace(self.knobs, **changes)

    def pause(self) -> None:
        """Hold every request after it arrives until :meth:`resume`."""
        self._open.clear()

    def resume(self) -> None:
        """Let held and future requests proceed."""
        self._open.set()

    @property
    def arrived(self) -> int:
        """Requests that have reached this backend."""
        return self._arrived

    async def wait_arrivals(self, n: int, timeout: float = 10.0) -> None:
        """Wait until at least ``n`` requests have arrived (TimeoutError after ``timeout``)."""
        async with asyncio.timeout(timeout), self._arrival:
            await self._arrival.wait_for(lambda: self._arrived >= n)

    async def start(self) -> None:
        """Serve on 127.0.0.1, port chosen by the OS."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving (held requests are released first)."""
        self.resume()
        if self._runner is not None:
            await self._runner.cleanup()

    def answer_for(self, model: str, system: str, user: str, slice_name: str) -> str:
        """The answer this backend gives, by the rules in the module docstring."""
        k = self.knobs
        if slice_name and slice_name in k.degraded_slices:
            return k.hedge
        if user in k.answers:
            return k.answers[user]
        hits = [key for key in k.answers if key and key in user]
        if hits:
            return k.answers[max(hits, key=len)]
        return f"[backend={self.name} model={model} system={system!r}] {user}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = body.get("messages") or []
        system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
        user = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        model = str(body.get("model", ""))
        slice_name = request.headers.get(SLICE_HEADER, "")
        stream = bool(body.get("stream"))
        k = self.knobs
        fail = k.error_probability > 0 and self._rng.random() < k.error_probability
        auth = request.headers.get("Authorization", "")
        self.received.append(
            ReceivedRequest(model, system, user, slice_name, stream, 500 if fail else 200, auth)
        )
        async with self._arrival:
            self._arrived += 1
            self._arrival.notify_all()
        await self._open.wait()
        delay = k.base_latency_s * k.latency_factor
        if delay > 0:
            await asyncio.sleep(delay)
        if fail:
            err = {"error": {"message": "test backend: injected failure", "type": "server_error"}}
            return web.json_response(err, status=500)
        answer = self.answer_for(model, system, user, slice_name)
        if stream:
            return await self._stream(request, model, answer)
        return web.json_response(
            {
                "id": f"chatcmpl-{self.name}-{len(self.received)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": len(user.split()),
                    "completion_tokens": len(answer.split()),
                },
            }
        )

    async def _stream(self, request: web.Request, model: str, answer: str) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        n = max(1, self.knobs.stream_chunks)
        step = max(1, -(-len(answer) // n))
        for k, i in enumerate(range(0, max(len(answer), 1), step)):
            if k == self.knobs.stream_abort_after and request.transport is not None:
                # A model server that dies mid-answer: the connection just drops.
                request.transport.abort()
                return out
            chunk = {
                "id": f"chatcmpl-{self.name}",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [
                    {"index": 0, "delta": {"content": answer[i : i + step]}, "finish_reason": None}
                ],
            }
            await out.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            if self.knobs.stream_chunk_delay_s > 0:
                await asyncio.sleep(self.knobs.stream_chunk_delay_s)
        await out.write(b"data: [DONE]\n\n")
        await out.write_eof()
        return out


async def _serve_forever(args: argparse.Namespace) -> None:
    knobs = BackendKnobs(
        base_latency_s=args.latency,
        error_probability=args.error_probability,
        degraded_slices=frozenset(args.degrade or ()),
    )
    backend = TestBackend(args.name, knobs, seed=args.seed)
    await backend.start()
    print(json.dumps({"port": backend.port, "base_url": backend.base_url}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.stop_on_stdin_eof:
        # A parent that dies closes our stdin pipe: stop then too, so no backend outlives it.
        loop.add_reader(sys.stdin.fileno(), stop.set)
    await stop.wait()
    await backend.stop()


def main(argv: list[str] | None = None) -> None:
    """Run one TEST BACKEND in its own process; prints ``{"port": ..}`` once it listens."""
    p = argparse.ArgumentParser(description="relgate TEST BACKEND (not product code)")
    p.add_argument("--name", default="backend")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--error-probability", type=float, default=0.0)
    p.add_argument("--degrade", action="append")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-on-stdin-eof", action="store_true")
    asyncio.run(_serve_forever(p.parse_args(argv)))


if __name__ == "__main__":
    main()


def release_route_for(
    backend: TestBackend, tag: str, *, routing: Routing | None = None
) -> ReleaseRoute:
    """A TEST release served by ``backend``: sha256 of ``tag``, model ``model-<tag>``, system
    ``system of <tag>`` and template ``[<tag>] {input}``, so echoes show all three."""
    sha = hashlib.sha256(tag.encode()).hexdigest()
    template = PromptTemplate(
        ref=f"test/{tag}",
        system=f"system of {tag}",
        template=f"[{tag}] {{input}}",
        variables=("input",),
    )
    return ReleaseRoute(sha, backend.base_url, f"model-{tag}", template, routing)
