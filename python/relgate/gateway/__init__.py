"""The data plane: an OpenAI-compatible HTTP gateway that routes each request by one immutable
routing snapshot (``server``) to a release's model server (``upstream``)."""

from __future__ import annotations

from relgate.gateway.hosting import GatewayThread
from relgate.gateway.server import Gateway, start_gateway
from relgate.gateway.upstream import Completion

__all__ = ["Completion", "Gateway", "GatewayThread", "start_gateway"]
