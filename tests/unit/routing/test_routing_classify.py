"""Session key, slice and traffic class come from the documented sources, in order."""

from __future__ import annotations

import pytest
from relgate.errors import ManifestError
from relgate.routing import (
    PromptTemplate,
    ReleaseRoute,
    RoutingSnapshot,
    matchers_from_routing,
    session_bucket,
)

TPL = PromptTemplate("", "{input}", ("input",))
LEGAL = matchers_from_routing({"domain": ["legal", "tax"]})
STABLE = ReleaseRoute("a" * 64, "http://127.0.0.1:1/v1", "m-a", TPL)
CAND = ReleaseRoute("b" * 64, "http://127.0.0.1:2/v1", "m-b", TPL, LEGAL)
SNAP = RoutingSnapshot(1, STABLE, CAND, 10_000)


def test_session_key_order_header_then_user_then_address() -> None:
    both = SNAP.classify({"x-relgate-session": "h"}, {"user": "u"}, "1.2.3.4")
    assert both.session_key == "h" and both.bucket == session_bucket("h")
    assert SNAP.classify({}, {"user": "u"}, "1.2.3.4").session_key == "u"
    assert SNAP.classify({}, {"user": ""}, "1.2.3.4").session_key == "1.2.3.4"
    assert SNAP.classify({}, {"user": 7}, "1.2.3.4").session_key == "1.2.3.4"


def test_slice_order_header_then_metadata_then_matchers_then_default() -> None:
    meta = {"metadata": {"slice": "Health", "domain": "legal"}}
    assert SNAP.classify({"x-relgate-slice": "Law"}, meta, "").slice == "Law"
    assert SNAP.classify({}, meta, "").slice == "Health"
    assert SNAP.classify({}, {"metadata": {"domain": "tax"}}, "").slice == "tax"
    assert SNAP.classify({}, {"metadata": {"domain": "sports"}}, "").slice == "default"
    assert SNAP.classify({}, {}, "").slice == "default"


def test_traffic_class_and_candidate_eligibility_follow_matchers() -> None:
    legal = SNAP.classify({}, {"metadata": {"domain": "legal"}}, "")
    other = SNAP.classify({}, {"metadata": {"domain": "sports"}}, "")
    assert legal.traffic_class == "domain=legal"
    assert other.traffic_class == "unmatched"
    # At full weight the candidate still only serves the traffic its routing names.
    assert SNAP.choose(legal)[1] == "candidate"
    assert SNAP.choose(other)[1] == "stable"
    plain = RoutingSnapshot(1, STABLE)
    assert plain.classify({}, {}, "").traffic_class == "all"


def test_non_string_metadata_is_ignored() -> None:
    c = SNAP.classify({}, {"metadata": {"domain": 3, "slice": None}}, "")
    assert c.attrs == {} and c.slice == "default"
    assert SNAP.classify({}, {"metadata": "nope"}, "").attrs == {}


def test_matchers_from_routing_validates() -> None:
    assert matchers_from_routing({"b": "x", "a": ["y", "z"]})[0].field == "a"
    for bad in ({"a": 1}, {"a": []}, {"a": ["x", 2]}):
        with pytest.raises(ManifestError):
            matchers_from_routing(bad)


def test_route_from_manifest() -> None:
    manifest = {
        "model": {
            "kind": "api",
            "provider": "x",
            "model": "gpt-x",
            "endpoint": "http://127.0.0.1:9/v1",
        },
        "prompt_template": {
            "ref": "t@1",
            "system": "S",
            "template": "Q: {question}",
            "variables": ["question"],
        },
        "routing": {"domain": "legal"},
    }
    r = ReleaseRoute.from_manifest("c" * 64, manifest)
    assert (r.model, r.endpoint, r.prompt_template.system) == (
        "gpt-x",
        "http://127.0.0.1:9/v1",
        "S",
    )
    assert r.prompt_template.variables == ("question",)
    assert r.accepts({"domain": "legal"}) and not r.accepts({"domain": "x"})
    hf = {
        **manifest,
        "model": {"kind": "hf", "repo": "org/m", "revision": "abc", "endpoint": "http://h/v1"},
    }
    assert ReleaseRoute.from_manifest("c" * 64, hf).model == "org/m"
    with pytest.raises(ManifestError):
        ReleaseRoute.from_manifest("c" * 64, {**manifest, "model": {"kind": "api", "model": "m"}})
    with pytest.raises(ManifestError):
        ReleaseRoute.from_manifest(
            "c" * 64, {k: v for k, v in manifest.items() if k != "prompt_template"}
        )
