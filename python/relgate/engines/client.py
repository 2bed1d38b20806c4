"""A small synchronous chat-completions client for managed engines (benches, tests, CLI).

Everything a server sends back is checked: an HTTP error, a body that is not JSON, or JSON
without ``choices[0].message`` is an :class:`EngineResponseError` naming the URL and what came
back, never a ``KeyError`` deep in a caller. Logprobs are returned when the server sent them
and ``None`` when it did not (asking for them does not guarantee them).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relgate.errors import JudgeError, JudgeUnavailableError

__all__ = ["ChatReply", "EngineResponseError", "chat"]

_MAX_BODY = 16 << 20


class EngineResponseError(JudgeError):
    """A model server answered, but not with a usable chat completion."""


@dataclass(frozen=True)
class ChatReply:
    """One chat completion: text, why it stopped, token counts and first-token logprobs."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    #: Per generated token: list of (token, logprob) alternatives, or None when not sent.
    top_logprobs: tuple[tuple[tuple[str, float], ...], ...] | None
    raw: Mapping[str, Any]


def _logprobs(choice: Mapping[str, Any]) -> tuple[tuple[tuple[str, float], ...], ...] | None:
    lp = choice.get("logprobs")
    if not isinstance(lp, Mapping) or not isinstance(lp.get("content"), list):
        return None
    out = []
    for position in lp["content"]:
        alts = position.get("top_logprobs") if isinstance(position, Mapping) else None
        if not isinstance(alts, list):
            return None
        out.append(tuple((str(a["token"]), float(a["logprob"])) for a in alts))
    return tuple(out)


def chat(
    base_url: str,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    timeout_s: float = 120.0,
    api_key: str | None = None,
    **params: Any,
) -> ChatReply:
    """POST ``{base_url}/chat/completions`` once (no retries: callers decide) and check it."""
    url = base_url.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": model, "messages": list(messages), **params}).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            data = resp.read(_MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        detail = exc.read(2000).decode("utf-8", errors="replace")
        raise EngineResponseError(f"{url}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise JudgeUnavailableError(f"{url}: {type(reason).__name__}: {reason}") from None
    if len(data) > _MAX_BODY:
        raise EngineResponseError(f"{url}: answer larger than {_MAX_BODY} bytes")
    try:
        doc = json.loads(data)
        choice = doc["choices"][0]
        text = choice["message"]["content"]
        usage = doc.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        shown = data[:120].decode("utf-8", errors="replace")
        raise EngineResponseError(f"{url}: not a chat completion ({exc!r}): {shown!r}") from None
    if not isinstance(text, str | None):
        raise EngineResponseError(f"{url}: message content is {type(text).__name__}")
    try:
        top = _logprobs(choice)
    except (KeyError, TypeError, ValueError) as exc:
        raise EngineResponseError(f"{url}: malformed logprobs ({exc!r})") from None
    return ChatReply(
        text=text or "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        top_logprobs=top,
        raw=doc,
    )
