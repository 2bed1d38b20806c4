"""The read-only web dashboard of ``relgate serve`` (docs/design.md §1: the web port).

Releases, gate results (the per-slice chart of ``relgate.gate.report``), live rollout
timelines and the verified receipt chain, behind the same API keys as the gRPC API.
``mount`` is what a server is handed to serve it on its web port (``create_server(...,
web_extension=mount)``); ``dashboard_url`` says where a running server serves it and how to sign
in.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relgate.access import Role
from relgate.dashboard.app import Dashboard, add_dashboard
from relgate.service.auth import create_key
from relgate.service.server import ServerParts
from relgate.service.web import WebExtension

__all__ = ["Dashboard", "add_dashboard", "dashboard_url", "mount"]


def mount(parts: ServerParts) -> WebExtension:
    """The dashboard of a server, as routes for its web port."""
    dashboard = Dashboard(
        store=parts.store,
        authenticator=parts.authenticator,
        signer=parts.signer,
        gates=parts.gates,
        rollouts=parts.rollouts,
        clock=parts.clock,
    )

    def extend(app: web.Application) -> None:
        add_dashboard(app, dashboard)

    return extend


def dashboard_url(running: Any, *, viewer_key: str | None = None) -> str:
    """Where ``running`` (a ``relgate.service.server.RunningServer``) serves the dashboard's
    sign-in page, and the key to sign in with: ``viewer_key``, or a new key with the viewer
    role (named ``dashboard``) created in the server's store. For the demo runner to print."""
    key = viewer_key or create_key(running.store.keys, role=Role.VIEWER, name="dashboard")
    return f"{running.web_url}/login  (sign in with the viewer key {key})"
