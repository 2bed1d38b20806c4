"""The gateway's OpenAI surface around chat: error bodies, the ``model`` rule, the pass-through
endpoints (``completions``, ``embeddings``, ``responses``), ``models/{id}`` and health.

Errors. Every answer the gateway itself writes is OpenAI-shaped,
``{"error": {"message", "type", "param", "code"}}`` with a string ``code``; unknown paths (404)
and wrong methods (405) too, through :func:`error_middleware` (docs/gateway.md).

The ``model`` rule (docs/gateway.md "The request's model"): the split decides which release
answers, never the client. A request may name no model, the alias ``relgate``, or one of the
ids its tenant's live routing serves (a release's served model name or its sha256, as
``GET /v1/models`` lists them); the request is then routed by the split, and the answering
release is named in ``x-relgate-release``. Anything else (another routing's model, a release
that is not live, a typo) is a 404 ``model_not_found`` naming the accepted ids: it is never
silently served by a model the client did not ask for.

Pass-through. The body is forwarded as sent, with ``model`` set to the routed release's served
model and relgate's own ``metadata`` removed, to ``endpoint + /completions`` (``/embeddings``,
``/responses``); answers come back as the release sent them (SSE streamed through). Requests
with an answer text (completions, responses) are recorded as traces like chat; embeddings have
no answer to judge and are counted in the metrics only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from relgate.routing import ReleaseRoute, RoutingSnapshot

__all__ = [
    "MODEL_ALIAS",
    "PASS_THROUGH",
    "Endpoint",
    "chat_delta",
    "error_middleware",
    "health_routes",
    "model_error",
    "model_ids",
    "openai_error",
]

log = logging.getLogger("relgate.gateway")

#: The model name that means "whatever the routing chooses" (what the load generator sends).
MODEL_ALIAS = "relgate"

# status -> (type, code): OpenAI's types; codes are strings, never the HTTP status.
_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    499: ("invalid_request_error", "client_closed_request"),
    500: ("server_error", "internal_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "gateway_timeout"),
}


def openai_error(
    status: int,
    message: str,
    kind: str | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An OpenAI-shaped error answer: ``{"error": {"message", "type", "param", "code"}}``."""
    default_kind, default_code = _KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", f"http_{status}")
    )
    body = {
        "error": {
            "message": message,
            "type": kind or default_kind,
            "param": param,
            "code": code or default_code,
        }
    }
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn aiohttp's own answers (unknown path, wrong method, body too large) and unexpected
    exceptions into OpenAI-shaped errors."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as e:
        allowed = ", ".join(sorted(e.allowed_methods))
        return openai_error(
            405,
            f"{request.method} is not allowed on {request.path} (allowed: {allowed})",
            headers={"Allow": ",".join(sorted(e.allowed_methods))},
        )
    except web.HTTPNotFound:
        return openai_error(404, f"unknown path {request.path}", code="unknown_url")
    except web.HTTPRequestEntityTooLarge as e:
        return openai_error(413, f"request body too large: {e.text}")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return openai_error(e.status, e.reason)
    except Exception as e:  # an answer, never a stack trace or an HTML page
        log.exception("gateway %s %s failed", request.method, request.path)
        return openai_error(500, f"gateway error: {e.__class__.__name__}")


# -- the model rule ------------------------------------------------------------------------


def model_ids(snap: RoutingSnapshot | None) -> list[str]:
    """Every ``model`` value a request of this routing may send (besides none and the alias)."""
    if snap is None:
        return []
    out: list[str] = []
    for r in snap.routes():
        out += [r.model, r.release_sha256]
    return out


def model_error(body: Mapping[str, Any], snap: RoutingSnapshot) -> web.Response | None:
    """The refusal of a request whose ``model`` the tenant's live routing does not serve
    (None: the request may be routed)."""
    model = body.get("model")
    if model is None or model == "" or model == MODEL_ALIAS:
        return None
    if not isinstance(model, str):
        return openai_error(400, "model: expected a string", param="model")
    if model in model_ids(snap):
        return None
    served = ", ".join(sorted({MODEL_ALIAS, *(r.model for r in snap.routes())}))
    return openai_error(
        404,
        f"model {model[:100]!r} is not served by this routing (it serves: {served}; the split "
        "chooses the release, named in x-relgate-release)",
        code="model_not_found",
        param="model",
    )


def model_object(route: ReleaseRoute) -> dict[str, Any]:
    """One entry of ``GET /v1/models``."""
    return {
        "id": route.model,
        "object": "model",
        "owned_by": "relgate",
        "relgate_release": route.release_sha256,
    }


# -- pass-through endpoints ----------------------------------------------------------------


def _first_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return ""


def _choice(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        return choices[0]
    return {}


def _completion_answer(payload: Mapping[str, Any]) -> str:
    return _first_text(_choice(payload).get("text"))


def _completion_delta(obj: Mapping[str, Any]) -> str | None:
    text = _choice(obj).get("text")
    return text if isinstance(text, str) else None


def chat_delta(obj: Mapping[str, Any]) -> str | None:
    """``choices[0].delta.content`` of a chat completion chunk."""
    delta = _choice(obj).get("delta")
    content = delta.get("content") if isinstance(delta, Mapping) else None
    return content if isinstance(content, str) else None


def _response_input(body: Mapping[str, Any]) -> str:
    value = body.get("input")
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for item in reversed(value):
            if isinstance(item, Mapping) and item.get("role") == "user":
                content = item.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return "".join(
                        str(c.get("text", "")) for c in content if isinstance(c, Mapping)
                    )
    return ""


def _response_answer(payload: Mapping[str, Any]) -> str:
    if isinstance(payload.get("output_text"), str):
        return str(payload["output_text"])
    parts: list[str] = []
    output = payload.get("output")
    for item in output if isinstance(output, list) else []:
        content = item.get("content") if isinstance(item, Mapping) else None
        for c in content if isinstance(content, list) else []:
            if isinstance(c, Mapping) and c.get("type") == "output_text":
                parts.append(str(c.get("text", "")))
    return "".join(parts)


def _response_delta(obj: Mapping[str, Any]) -> str | None:
    if obj.get("type") == "response.output_text.delta" and isinstance(obj.get("delta"), str):
        return str(obj["delta"])
    return None


@dataclass(frozen=True)
class Endpoint:
    """One pass-through endpoint: where it is forwarded, what its prompt and answer are."""

    name: str  # the path after /v1/ (also the metrics' endpoint label)
    required: str  # the body field that must be present
    prompt_of: Callable[[Mapping[str, Any]], str]
    answer_of: Callable[[Mapping[str, Any]], str]
    delta_of: Callable[[Mapping[str, Any]], str | None]
    traced: bool

    def url(self, route: ReleaseRoute) -> str:
        """Where the routed release answers this endpoint."""
        return f"{route.endpoint.rstrip('/')}/{self.name}"

    def forward_body(self, body: Mapping[str, Any], route: ReleaseRoute) -> dict[str, Any]:
        """The body as sent, addressed to the routed release's model, without relgate's
        ``metadata``."""
        out = {k: v for k, v in body.items() if k != "metadata"}
        out["model"] = route.model
        return out


def _no_delta(obj: Mapping[str, Any]) -> str | None:
    return None


PASS_THROUGH: dict[str, Endpoint] = {
    "completions": Endpoint(
        "completions",
        "prompt",
        lambda b: _first_text(b.get("prompt")),
        _completion_answer,
        _completion_delta,
        traced=True,
    ),
    "embeddings": Endpoint(
        "embeddings", "input", lambda b: "", lambda p: "", _no_delta, traced=False
    ),
    "responses": Endpoint(
        "responses", "input", _response_input, _response_answer, _response_delta, traced=True
    ),
}


def json_object(raw: bytes) -> dict[str, Any] | web.Response:
    """The request body as a JSON object, or the 400 that refuses it."""
    try:
        body = json.loads(raw)
    except ValueError:
        return openai_error(400, "body is not valid JSON")
    if not isinstance(body, dict):
        return openai_error(400, "body must be a JSON object")
    return body


# -- health ----------------------------------------------------------------------------------


def health_routes(
    app: web.Application,
    snapshots: Callable[[], Mapping[str, RoutingSnapshot]],
    accepting: Callable[[], bool],
) -> None:
    """``/healthz`` (liveness: the process answers) and ``/readyz`` (ready: accepting, and at
    least one tenant has a routing snapshot, so its releases' endpoints are known)."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        snaps = dict(snapshots())
        releases = {r.release_sha256 for s in snaps.values() for r in s.routes()}
        if not accepting():
            return openai_error(503, "gateway is shutting down", code="not_ready")
        if not snaps:
            return openai_error(
                503, "no routing snapshot yet: no release is live", code="not_ready"
            )
        return web.json_response(
            {"status": "ready", "tenants": len(snaps), "releases": len(releases)}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
