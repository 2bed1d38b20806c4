"""The split is sticky, monotone in the weight, and matches the weight in share."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relgate.errors import InvalidInputError
from relgate.manifest import PromptTemplate
from relgate.routing import (
    FULL_WEIGHT_BP as BUCKETS,
)
from relgate.routing import (
    ReleaseRoute,
    RoutingSnapshot,
    session_bucket,
)

TPL = PromptTemplate(ref="t", system="sys", template="{input}", variables=("input",))
STABLE = ReleaseRoute("a" * 64, "http://127.0.0.1:1/v1", "m-a", TPL)
CAND = ReleaseRoute("b" * 64, "http://127.0.0.1:2/v1", "m-b", TPL)


def snap(weight_bp: int, version: int = 1) -> RoutingSnapshot:
    return RoutingSnapshot(version, STABLE, CAND, weight_bp)


def role_of(s: RoutingSnapshot, key: str) -> str:
    c = s.classify({"x-relgate-session": key}, {}, "10.0.0.1")
    return s.choose(c)[1]


def test_bucket_is_first_8_bytes_of_sha256_big_endian() -> None:
    key = "user-42"
    expected = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 10_000
    assert session_bucket(key) == expected
    assert 0 <= session_bucket("") < BUCKETS


# No deadline: a busy shared machine must not turn scheduling stalls into failures.
@settings(deadline=None)
@given(st.text(max_size=40), st.integers(0, BUCKETS), st.integers(0, BUCKETS))
def test_monotone_a_candidate_session_stays_on_it_as_weight_rises(
    key: str, w: int, dw: int
) -> None:
    w2 = min(BUCKETS, w + dw)
    if role_of(snap(w), key) == "candidate":
        assert role_of(snap(w2), key) == "candidate"
    # Stickiness: the same key gives the same answer every time.
    assert role_of(snap(w), key) == role_of(snap(w), key)


@pytest.mark.parametrize("weight_bp", [0, 500, 2500, 10_000])
def test_share_matches_weight(weight_bp: int) -> None:
    n = 20_000
    s = snap(weight_bp)
    hits = sum(role_of(s, f"session-{i}") == "candidate" for i in range(n))
    share = hits / n
    # Binomial sd at n=20k is <= 0.0036; 0.012 is more than 3 sd.
    assert abs(share - weight_bp / BUCKETS) < 0.012


def test_candidate_iff_bucket_below_weight() -> None:
    for i in range(500):
        key = f"k{i}"
        b = session_bucket(key)
        assert role_of(snap(b), key) == "stable"
        assert role_of(snap(b + 1), key) == "candidate"


def test_shadow_never_serves_candidate_but_mirrors() -> None:
    s = RoutingSnapshot(1, STABLE, CAND, BUCKETS, shadow=True)
    c = s.classify({"x-relgate-session": "k"}, {}, "")
    assert s.choose(c) == (STABLE, "stable")
    assert s.mirror_target(c) == CAND
    assert snap(BUCKETS).mirror_target(c) is None


def test_snapshot_is_immutable_and_versions_step() -> None:
    s = snap(500)
    with pytest.raises(AttributeError):
        s.weight_bp = 10  # type: ignore[misc]
    s2 = s.with_weight(2500)
    assert (s.weight_bp, s2.weight_bp, s2.version) == (500, 2500, 2)
    p = s2.promoted()
    assert (p.stable, p.candidate, p.version) == (CAND, None, 3)
    r = p.switched_to(STABLE)
    assert (r.stable, r.candidate, r.version) == (STABLE, None, 4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weight_bp": -1, "candidate": CAND},
        {"weight_bp": BUCKETS + 1, "candidate": CAND},
        {"weight_bp": 5},
        {"shadow": True},
        {"candidate": STABLE},
        {"version": -1},
    ],
)
def test_bad_snapshots_are_rejected(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"version": 1, "stable": STABLE, **kwargs}
    with pytest.raises(InvalidInputError):
        RoutingSnapshot(**args)  # type: ignore[arg-type]


def test_route_validates_sha_and_endpoint() -> None:
    with pytest.raises(InvalidInputError):
        ReleaseRoute("xyz", "http://127.0.0.1/v1", "m", TPL)
    with pytest.raises(InvalidInputError):
        ReleaseRoute("a" * 64, "ftp://host/v1", "m", TPL)
    assert STABLE.completions_url == "http://127.0.0.1:1/v1/chat/completions"
