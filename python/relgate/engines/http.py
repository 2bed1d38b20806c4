"""Calls to OpenAI-compatible endpoints (llama.cpp's server, vLLM, a provider's API).

One request loop for every caller (answers, LLM judges, replay): bounded by a timeout, retried
with jittered exponential backoff on 5xx, 429 and network errors, and failing with a named
error otherwise. A client error (4xx other than 429) will not improve on retry and fails at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

import aiohttp

from relgate.errors import JudgeUnavailableError, RelgateError

__all__ = ["auth_headers", "post_json"]


def auth_headers(api_key: str | None) -> dict[str, str]:
    """``Authorization: Bearer`` when there is a key."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    retries: int = 3,
    timeout_s: float = 60.0,
    gate: asyncio.Semaphore | None = None,
    client_error: type[RelgateError] = RelgateError,
    first_delay_s: float = 0.1,
) -> Any:
    """POST ``body`` as JSON and return the decoded JSON of a 200 answer.

    ``gate`` bounds concurrency (held only while a request is in flight, not while backing
    off). A 4xx answer other than 429 raises ``client_error``; running out of retries raises
    ``JudgeUnavailableError`` naming the last reason; a 200 whose body is not JSON is retried.
    """
    delay, reason = first_delay_s, ""
    for attempt in range(retries + 1):
        fatal: str | None = None
        try:
            async with (
                gate if gate is not None else _NoGate(),
                session.post(
                    url,
                    json=dict(body),
                    headers=dict(headers or {}),
                    timeout=aiohttp.ClientTimeout(total=timeout_s),
                ) as resp,
            ):
                if resp.status == 200:
                    return await resp.json(content_type=None)
                if resp.status < 500 and resp.status != 429:
                    fatal = f"{url}: HTTP {resp.status}: {(await resp.text())[:500]}"
                reason = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if fatal is not None:
            raise client_error(fatal)
        if attempt < retries:
            await asyncio.sleep(delay * (1.0 + random.random()))
            delay *= 2
    raise JudgeUnavailableError(f"{url}: no answer after {retries + 1} tries ({reason})")


class _NoGate:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None
