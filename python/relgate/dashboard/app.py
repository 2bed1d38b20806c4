"""The dashboard's routes on the web port of ``relgate serve`` (aiohttp, jinja2 templates).

Every page and download needs a viewer key (a session cookie from ``/login`` or an
``Authorization: Bearer`` header); without one the answer is 401 with the sign-in form and no
data. Pages are rendered on the server; the rollout page polls its own timeline fragment while
the rollout runs. No network assets: CSS, JS and the favicon come from ``/static/``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from relgate.dashboard.data import DashboardData, GateSource
from relgate.dashboard.rollouts import LiveRollouts, monitor_summary, rollout_view, rollouts_of
from relgate.dashboard.sessions import COOKIE, SessionStore
from relgate.errors import AuthError, InvalidInputError, NotFoundError, RelgateError
from relgate.receipts.model import TENANT_SUBJECT
from relgate.receipts.tree import TreeHeadSigner
from relgate.service.auth import Authenticator, Principal, bearer_key
from relgate.store import Store

__all__ = ["Dashboard", "add_dashboard"]

log = logging.getLogger("relgate.dashboard")
_HERE = Path(__file__).parent
# Strict: no inline scripts or styles, nothing from another origin.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

#: Rollouts the index page lists (the newest).
_MAX_ROLLOUTS = 200

Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]


@dataclass
class Dashboard:
    """What the dashboard reads: the store, the API's key lookup, and (when the server runs
    them) the gate runner, the rollout manager and its clock, and the tree-head signer."""

    store: Store
    authenticator: Authenticator
    signer: TreeHeadSigner | None = None
    gates: GateSource | None = None
    rollouts: LiveRollouts | None = None
    clock: Callable[[], float] = time.time


def _short(value: Any, n: int = 12) -> str:
    return "-" if value is None else str(value)[:n]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "-" if not math.isfinite(f) else f"{f:.{digits}f}"


def _pct(bp: Any) -> str:
    return "-" if bp is None else f"{int(bp) / 100:g}%"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["tenant_subject"] = TENANT_SUBJECT
    env.filters.update(
        short=_short, fmt=_fmt, pct=_pct, tojson_pretty=_pretty, numbers=monitor_summary
    )
    return env


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


class _Views:
    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.sessions = SessionStore(dash.authenticator)
        self.data = DashboardData(
            dash.store, signer=dash.signer, gates=dash.gates, rollout_phase=self._phase_of
        )
        self.env = _environment()

    # ---- plumbing -----------------------------------------------------------------------

    def page(self, template: str, status: int = 200, **ctx: Any) -> web.Response:
        body = self.env.get_template(template).render(**ctx)
        resp = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
        resp.headers["Content-Security-Policy"] = _CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _principal(self, request: web.Request) -> Principal | None:
        if "Authorization" in request.headers:
            return None  # checked (blocking) in `guard`
        return self.sessions.get(request.cookies.get(COOKIE))

    def guard(self, handler: Handler, *, html: bool = True) -> Callable[..., Any]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            principal = self._principal(request)
            if principal is None and "Authorization" in request.headers:
                try:
                    key = bearer_key([("authorization", request.headers["Authorization"])])
                    principal = await asyncio.to_thread(self.sessions.check_key, key)
                except AuthError:
                    principal = None
            if principal is None:
                return self.unauthorized(request, html=html)
            try:
                return await handler(request, principal)
            except NotFoundError as exc:
                return self.page("error.html", 404, title="Not found", message=str(exc),
                                 principal=principal)  # fmt: skip
            except InvalidInputError as exc:
                return self.page("error.html", 400, title="Bad request", message=str(exc),
                                 principal=principal)  # fmt: skip
            except RelgateError as exc:
                # e.g. a stored gate report that no longer matches its recorded sha256.
                log.warning("dashboard %s: %s", request.path, exc)
                return self.page("error.html", 500, title="Stored data cannot be shown",
                                 message=str(exc), principal=principal)  # fmt: skip

        return wrapped

    def unauthorized(
        self, request: web.Request, *, html: bool = True, error: str = ""
    ) -> web.Response:
        if not html:
            resp = web.Response(text="401: sign in with a viewer key\n", status=401)
        else:
            resp = self.page(
                "login.html", 401, principal=None, error=error, next=request.path_qs,
                title="Sign in",
            )  # fmt: skip
        resp.headers["WWW-Authenticate"] = 'Bearer realm="relgate"'
        return resp

    def _phase_of(self, tenant: str, sha: str) -> tuple[str, str | None]:
        starts = rollouts_of(self.dash.store, tenant, sha)
        if not starts:
            return "-", None
        rid = str(starts[-1].evidence["rollout_id"])
        view = rollout_view(self.dash.store, tenant, rid, clock=self.dash.clock,
                            live=self.dash.rollouts)  # fmt: skip
        return view.state, rid

    # ---- sign in ------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        nxt = _safe_next(request.query.get("next", "/"))
        return self.page("login.html", principal=None, error="", next=nxt, title="Sign in")

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        nxt = _safe_next(str(form.get("next", "/")))
        try:
            principal = await asyncio.to_thread(self.sessions.check_key, str(form.get("key", "")))
        except AuthError as exc:
            resp = self.page("login.html", 401, principal=None, error=str(exc), next=nxt,
                             title="Sign in")  # fmt: skip
            return resp
        sid = self.sessions.open(principal)
        resp = _see_other(nxt)
        # No max-age: a browser-session cookie. HttpOnly: scripts cannot read it.
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/")
        return resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.sessions.close(request.cookies.get(COOKIE))
        resp = _see_other("/login")
        resp.del_cookie(COOKIE, path="/")
        return resp

    # ---- pages --------------------------------------------------------------------------

    async def releases(self, request: web.Request, p: Principal) -> web.StreamResponse:
        rows = await asyncio.to_thread(self.data.releases, p.tenant)
        return self.page("releases.html", principal=p, rows=rows, title="Releases")

    async def release(self, request: web.Request, p: Principal) -> web.StreamResponse:
        sha = request.match_info["sha"]

        def load() -> Any:
            stored = self.data.release_of(sha, p.tenant)
            rids = [str(r.evidence["rollout_id"])
                    for r in rollouts_of(self.dash.store, p.tenant, stored.sha256)]  # fmt: skip
            return self.data.release(stored.sha256, p.tenant, rids)

        view = await asyncio.to_thread(load)
        return self.page("release.html", principal=p, v=view,
                         title=f"Release {view.release.release_id}")  # fmt: skip

    async def gate(self, request: web.Request, p: Principal) -> web.StreamResponse:
        view = await asyncio.to_thread(self.data.gate, request.match_info["sha"], p.tenant)
        return self.page("gate.html", principal=p, g=view,
                         title=f"Gate of {view.release.release_id}")  # fmt: skip

    async def rollout(self, request: web.Request, p: Principal) -> web.StreamResponse:
        view = await asyncio.to_thread(self._rollout, request.match_info["rid"], p.tenant)
        return self.page("rollout.html", principal=p, r=view,
                         title=f"Rollout {view.rollout_id}")  # fmt: skip

    async def rollouts(self, request: web.Request, p: Principal) -> web.StreamResponse:
        def load() -> tuple[list[Any], str | None]:
            starts = rollouts_of(self.dash.store, p.tenant)[-_MAX_ROLLOUTS:]
            rows = [self._rollout(str(r.evidence["rollout_id"]), p.tenant) for r in starts]
            return rows[::-1], self.data.live_release(p.tenant)

        rows, live = await asyncio.to_thread(load)
        return self.page("rollouts.html", principal=p, rows=rows, live=live, title="Rollouts")

    async def timeline(self, request: web.Request, p: Principal) -> web.StreamResponse:
        view = await asyncio.to_thread(self._rollout, request.match_info["rid"], p.tenant)
        return self.page("timeline.html", principal=p, r=view)

    def _rollout(self, rid: str, tenant: str) -> Any:
        return rollout_view(self.dash.store, tenant, rid, clock=self.dash.clock,
                            live=self.dash.rollouts)  # fmt: skip

    async def receipts(self, request: web.Request, p: Principal) -> web.StreamResponse:
        chain = await asyncio.to_thread(self.data.chain, p.tenant)
        return self.page("receipts.html", principal=p, c=chain, title="Receipts")

    async def bundle(self, request: web.Request, p: Principal) -> web.StreamResponse:
        doc = await asyncio.to_thread(self.data.bundle, p.tenant)
        name = quote(f"relgate-receipts-{p.tenant}.json")
        resp = web.Response(
            body=json.dumps(doc, indent=1).encode("utf-8"), content_type="application/json"
        )
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        resp.headers["Cache-Control"] = "no-store"
        return resp


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _safe_next(value: str) -> str:
    """Only a same-site relative path (``/...``): no scheme, no ``//host``, no backslash, no
    control character or whitespace (browsers drop tabs and newlines, so ``/\t/evil`` would
    become ``//evil``): an open redirect is a phishing aid. Anything else goes to ``/``."""
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value)
        or len(value) > 2048
    ):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def add_dashboard(app: web.Application, dash: Dashboard) -> None:
    """Mount the dashboard's routes on ``app`` (the web port's application)."""
    v = _Views(dash)
    r = app.router
    r.add_get("/", v.guard(v.releases))
    r.add_get("/login", v.login_form)
    r.add_post("/login", v.login)
    r.add_post("/logout", v.logout)
    r.add_get("/releases/{sha}", v.guard(v.release))
    r.add_get("/releases/{sha}/gate", v.guard(v.gate))
    r.add_get("/rollouts", v.guard(v.rollouts))
    r.add_get("/rollouts/{rid}", v.guard(v.rollout))
    r.add_get("/rollouts/{rid}/timeline", v.guard(v.timeline, html=False))
    r.add_get("/receipts", v.guard(v.receipts))
    r.add_get("/receipts/bundle.json", v.guard(v.bundle, html=False))
    r.add_static("/static/", _HERE / "static", show_index=False)
