"""API keys: hashing, bearer parsing, roles, tenants, revocation, and the bootstrap key."""

from __future__ import annotations

import stat
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from relgate.errors import AuthError, InvalidInputError
from relgate.service.auth import (
    ADMIN_KEY_FILE,
    Authenticator,
    Principal,
    Role,
    bearer_key,
    bootstrap_admin_key,
    create_key,
    hash_key,
    new_key,
)


@dataclass(frozen=True)
class _Key:
    role: str
    name: str
    tenant: str
    actor: str
    revoked_at: str | None = None


class _Keys:
    """In-memory stand-in for the store's two key methods (the store has its own tests)."""

    def __init__(self) -> None:
        self.rows: dict[str, _Key] = {}
        self.lookups = 0

    def create(self, *, key_hash: str, role: str, name: str, tenant: str, actor: str) -> str:
        assert key_hash not in self.rows
        self.rows[key_hash] = _Key(role, name, tenant, actor)
        return f"receipt:{key_hash}"

    def find(self, key_hash: str) -> _Key | None:
        self.lookups += 1
        return self.rows.get(key_hash)


def test_keys_are_random_and_stored_hashed() -> None:
    keys = _Keys()
    a = create_key(keys, role=Role.VIEWER, name="a")
    b = create_key(keys, role=Role.VIEWER, name="b")
    assert a != b and a.startswith("rgk_") and len(a) > 40
    assert set(keys.rows) == {hash_key(a), hash_key(b)}
    assert all(len(h) == 64 for h in keys.rows)
    assert a not in repr(keys.rows)


def test_bearer_parsing() -> None:
    assert bearer_key([("authorization", "Bearer abc")]) == "abc"
    assert bearer_key([("x", "y"), ("Authorization", b"bearer  abc ")]) == "abc"
    with pytest.raises(AuthError, match="missing API key"):
        bearer_key([("x", "y")])
    with pytest.raises(AuthError, match="Bearer"):
        bearer_key([("authorization", "Basic abc")])
    with pytest.raises(AuthError, match="Bearer"):
        bearer_key([("authorization", "Bearer ")])


def test_authenticate_resolves_role_and_caches_found_keys_only() -> None:
    keys = _Keys()
    key = create_key(keys, role=Role.RELEASER, name="ci", tenant="t1")
    auth = Authenticator(keys)
    md = [("authorization", f"Bearer {key}")]
    assert auth.cached(md) is None
    p = auth.authenticate(md)
    assert (p.role, p.name, p.tenant) == (Role.RELEASER, "ci", "t1")
    assert auth.cached(md) == p
    before = keys.lookups
    auth.authenticate(md)
    assert keys.lookups == before
    bad = [("authorization", "Bearer rgk_nope")]
    with pytest.raises(AuthError, match="unknown API key"):
        auth.authenticate(bad)
    with pytest.raises(AuthError):
        auth.authenticate(bad)
    assert keys.lookups == before + 2


def _principal(role: Role, tenant: str = "default") -> Principal:
    return Principal(key_sha256="0" * 64, role=role, name="n", tenant=tenant)


def test_roles_are_ordered() -> None:
    Authenticator.authorize(_principal(Role.OPERATOR), Role.ADMIN)
    Authenticator.authorize(_principal(Role.ADMIN), Role.RELEASER)
    Authenticator.authorize(_principal(Role.RELEASER), Role.VIEWER)
    with pytest.raises(AuthError, match="needs releaser"):
        Authenticator.authorize(_principal(Role.VIEWER), Role.RELEASER)
    with pytest.raises(AuthError, match="needs admin"):
        Authenticator.authorize(_principal(Role.RELEASER), Role.ADMIN)


@pytest.mark.parametrize("outside", [Role.WORKER, Role.GATEWAY])
def test_worker_and_gateway_keys_open_only_their_own_methods(outside: Role) -> None:
    Authenticator.authorize(_principal(outside), outside)
    for required in (Role.VIEWER, Role.RELEASER, Role.ADMIN, Role.OPERATOR):
        with pytest.raises(AuthError, match=f"role {outside.label} may not"):
            Authenticator.authorize(_principal(outside), required)
    # ...and no other key opens them, however powerful.
    for role in Role:
        if role is not outside:
            with pytest.raises(AuthError, match=f"needs {outside.label}"):
                Authenticator.authorize(_principal(role), outside)


def test_tenants_are_isolated_even_for_admins() -> None:
    Authenticator.authorize(_principal(Role.RELEASER, "a"), Role.VIEWER, "a")
    for role in (Role.VIEWER, Role.RELEASER, Role.ADMIN):
        with pytest.raises(AuthError, match="tenant 'a' may not act on 'b'"):
            Authenticator.authorize(_principal(role, "a"), Role.VIEWER, "b")
    Authenticator.authorize(_principal(Role.OPERATOR, "a"), Role.ADMIN, "b")


def test_a_revoked_key_stops_at_once_here_and_within_the_ttl_elsewhere() -> None:
    keys = _Keys()
    key = create_key(keys, role=Role.RELEASER, name="ci")
    md = [("authorization", f"Bearer {key}")]
    now = [0.0]
    here = Authenticator(keys, ttl_s=10.0, clock=lambda: now[0])
    elsewhere = Authenticator(keys, ttl_s=10.0, clock=lambda: now[0])
    here.authenticate(md)
    elsewhere.authenticate(md)
    keys.rows[hash_key(key)] = replace(keys.rows[hash_key(key)], revoked_at="2026-12-06T00:00Z")
    here.forget(hash_key(key))  # what RevokeKey does on the server that revokes
    with pytest.raises(AuthError, match="'ci' was revoked at 2026-12-06T00:00Z"):
        here.authenticate(md)
    # Another server sharing the store trusts its cache for at most ttl_s.
    assert elsewhere.cached(md) is not None
    now[0] = 10.5
    assert elsewhere.cached(md) is None
    with pytest.raises(AuthError, match="revoked"):
        elsewhere.authenticate(md)


def test_the_cache_is_bounded() -> None:
    keys = _Keys()
    made = [create_key(keys, role=Role.VIEWER, name=f"k{i}") for i in range(5)]
    auth = Authenticator(keys, max_keys=3)
    for key in made:
        auth.authenticate([("authorization", f"Bearer {key}")])
    cached = [auth.cached([("authorization", f"Bearer {k}")]) is not None for k in made]
    assert cached == [False, False, True, True, True]


def test_role_parse() -> None:
    assert Role.parse(" Admin ") is Role.ADMIN
    with pytest.raises(InvalidInputError, match="unknown role"):
        Role.parse("root")


def test_bootstrap_writes_a_private_operator_key_once(tmp_path: Path) -> None:
    keys = _Keys()
    path = bootstrap_admin_key(keys, tmp_path)
    assert path == tmp_path / ADMIN_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert keys.rows[hash_key(key)].role == "operator"
    assert keys.rows[hash_key(key)].tenant == "default"
    # Restart: same key, not stored twice (the fake asserts on duplicates).
    assert bootstrap_admin_key(keys, tmp_path) == path
    assert path.read_text().strip() == key
    assert len(keys.rows) == 1


def test_bootstrap_restores_a_key_missing_from_the_store(tmp_path: Path) -> None:
    # A crash between writing the file and storing the hash, or a fresh --store URL.
    bootstrap_admin_key(_Keys(), tmp_path)
    fresh = _Keys()
    bootstrap_admin_key(fresh, tmp_path)
    assert hash_key((tmp_path / ADMIN_KEY_FILE).read_text().strip()) in fresh.rows


def test_bootstrap_does_not_reissue_after_the_file_is_removed(tmp_path: Path) -> None:
    keys = _Keys()
    path = bootstrap_admin_key(keys, tmp_path)
    assert path is not None
    path.unlink()
    assert bootstrap_admin_key(keys, tmp_path) is None
    assert not path.exists()
    assert len(keys.rows) == 1


def test_new_key_entropy() -> None:
    assert len({new_key() for _ in range(100)}) == 100
