"""Dashboard sessions: a key checked once through the API's Authenticator, roles enforced,
sessions that end on sign-out or after the idle limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from relgate.access import Role
from relgate.dashboard.sessions import SessionStore
from relgate.errors import AuthError
from relgate.service.auth import Authenticator, create_key
from relgate.store import Store


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Store, dict[str, str]]:
    store = Store.open(data_dir=tmp_path / "data")
    roles = (Role.VIEWER, Role.RELEASER, Role.ADMIN)
    made = {r.label: create_key(store.keys, role=r, name=r.label) for r in roles}
    return store, made


def test_a_valid_key_opens_a_session_and_sign_out_closes_it(
    keys: tuple[Store, dict[str, str]],
) -> None:
    store, made = keys
    try:
        sessions = SessionStore(Authenticator(store.keys))
        principal = sessions.check_key(made["viewer"])
        assert principal.role is Role.VIEWER
        sid = sessions.open(principal)
        assert made["viewer"] not in sid and len(sid) >= 40
        assert sessions.get(sid) == principal
        sessions.close(sid)
        assert sessions.get(sid) is None
    finally:
        store.close()


def test_unknown_and_empty_keys_are_refused(keys: tuple[Store, dict[str, str]]) -> None:
    store, _ = keys
    try:
        sessions = SessionStore(Authenticator(store.keys))
        for bad in ("", "   ", "rgk_unknown"):
            with pytest.raises(AuthError):
                sessions.check_key(bad)
        assert sessions.get(None) is None and sessions.get("forged") is None
    finally:
        store.close()


def test_sessions_end_after_the_idle_limit_and_use_refreshes_them(
    keys: tuple[Store, dict[str, str]],
) -> None:
    store, made = keys
    try:
        clock = FakeClock()
        sessions = SessionStore(Authenticator(store.keys), idle_s=60, clock=clock)
        sid = sessions.open(sessions.check_key(made["admin"]))
        clock.t += 59
        assert sessions.get(sid) is not None  # used: the idle clock restarts
        clock.t += 59
        assert sessions.get(sid) is not None
        clock.t += 61
        assert sessions.get(sid) is None
    finally:
        store.close()
