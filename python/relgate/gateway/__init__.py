"""The data plane: an OpenAI-compatible HTTP gateway that routes each request by one immutable
routing snapshot (``server``) to a release's model server (``upstream``)."""

from __future__ import annotations

from relgate.gateway.server import (
    Completion,
    DrainResult,
    Gateway,
    GatewayThread,
    SwapRecord,
    start_gateway,
)

__all__ = ["Completion", "DrainResult", "Gateway", "GatewayThread", "SwapRecord", "start_gateway"]
