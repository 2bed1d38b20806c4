"""Dashboard sign-in: a viewer key entered once, an opaque session id in an HttpOnly cookie.

Why a server-side session and not the key in ``sessionStorage``: a key that page scripts can
read is a key any injected script can send elsewhere, and API keys do not expire. Here the
browser holds only a random session id it cannot read from JavaScript (HttpOnly), sent only
to this origin on same-site navigations (SameSite=Strict, so another site cannot make the
browser use it), with no expiry attribute (gone when the browser session ends) and an idle
limit on the server. The key itself is checked once, through the same ``Authenticator`` as
the gRPC API (hashed lookup, roles), and never stored. Programs may skip the cookie and send
``Authorization: Bearer <key>`` on every request, as with the API.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from relgate.access import Role
from relgate.errors import AuthError
from relgate.service.auth import Authenticator, Principal

__all__ = ["COOKIE", "SessionStore"]

COOKIE = "relgate_session"
_IDLE_S = 8 * 3600.0
_MAX_SESSIONS = 10_000


@dataclass
class _Session:
    principal: Principal
    last_used: float


class SessionStore:
    """Session ids -> principals, in memory (a restart signs everyone out)."""

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        idle_s: float = _IDLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = authenticator
        self._idle_s = idle_s
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def check_key(self, key: str) -> Principal:
        """The principal of ``key`` if it may view; ``AuthError`` otherwise. Blocking."""
        key = key.strip()
        if not key:
            raise AuthError("enter an API key")
        principal = self._auth.authenticate([("authorization", f"Bearer {key}")])
        self._auth.authorize(principal, Role.VIEWER)
        return principal

    def open(self, principal: Principal) -> str:
        """A new session for ``principal``; returns its id (the cookie value)."""
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            if len(self._sessions) >= _MAX_SESSIONS:
                self._expire(now)
            self._sessions[sid] = _Session(principal, now)
        return sid

    def get(self, sid: str | None) -> Principal | None:
        """The principal of a live session (refreshing its idle clock), else None."""
        if not sid:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.last_used > self._idle_s:
                del self._sessions[sid]
                return None
            session.last_used = now
            return session.principal

    def close(self, sid: str | None) -> None:
        """End a session (sign out)."""
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)

    def _expire(self, now: float) -> None:
        for sid in [s for s, v in self._sessions.items() if now - v.last_used > self._idle_s]:
            del self._sessions[sid]
