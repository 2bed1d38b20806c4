"""Session key, slice and traffic class come from the documented sources, in order."""

from __future__ import annotations

import json

import pytest
from relgate.errors import ManifestError
from relgate.manifest import (
    PromptTemplate,
    ReleaseManifest,
    Routing,
    matcher_slice,
    traffic_class,
)
from relgate.routing import ReleaseRoute, RoutingSnapshot, session_bucket

TPL = PromptTemplate(ref="t", template="{input}", variables=("input",))
LEGAL = Routing(matchers=({"domain": "legal"}, {"domain": "tax"}))
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


def routing_of(routing: object) -> Routing:
    """The routing a manifest with this ``routing`` field parses to."""
    return ReleaseManifest.parse({**FULL, "routing": routing}).routing


def test_routing_accepts_the_manifest_forms_and_validates() -> None:
    canonical = routing_of({"matchers": [{"b": "x", "a": "y"}, {}]})
    assert canonical == routing_of([{"a": "y", "b": "x"}, {}])
    assert traffic_class(canonical.matchers[0]) == "a=y,b=x"
    assert traffic_class(canonical.matchers[1]) == "all"
    assert matcher_slice(routing_of({"domain": "legal"}).matchers[0]) == "legal"
    assert matcher_slice(routing_of([{"domain": "legal", "slice": "Law"}]).matchers[0]) == "Law"
    assert matcher_slice(routing_of([{"domain": "legal", "tier": "pro"}]).matchers[0]) is None
    for bad in ({"a": 1}, {"matchers": [{"a": ["x"]}]}, "legal", [3]):
        with pytest.raises(ManifestError):
            routing_of(bad)


def test_a_matcher_needs_every_pair_and_any_matcher_will_do() -> None:
    both = routing_of([{"domain": "legal", "tier": "pro"}, {"domain": "tax"}])
    route = ReleaseRoute("c" * 64, "http://127.0.0.1:9/v1", "m", TPL, both)
    assert route.accepts({"domain": "legal", "tier": "pro", "x": "y"})
    assert not route.accepts({"domain": "legal"})
    assert route.accepts({"domain": "tax"})
    catch_all = ReleaseRoute("c" * 64, "http://127.0.0.1:9/v1", "m", TPL, routing_of([{}]))
    assert catch_all.accepts({}) and catch_all.accepts({"domain": "x"})
    snap = RoutingSnapshot(1, route)
    c = snap.classify({}, {"metadata": {"domain": "legal", "tier": "pro"}}, "")
    assert (c.traffic_class, c.slice) == ("domain=legal,tier=pro", "default")


MANIFEST = {
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
    "routing": {"matchers": [{"domain": "legal"}]},
}


FULL = {
    **MANIFEST,
    "dataset": {"ref": "suite@1", "sha256": "ab" * 32},
    "previous_release": None,
}


def test_route_from_a_manifest() -> None:
    m = ReleaseManifest.parse(FULL)
    r = ReleaseRoute.from_manifest(m)
    assert (r.release_sha256, r.model, r.endpoint, r.prompt_template.system) == (
        m.sha256,
        "gpt-x",
        "http://127.0.0.1:9/v1",
        "S",
    )
    assert r.prompt_template.variables == ("question",)
    assert r.accepts({"domain": "legal"}) and not r.accepts({"domain": "x"})
    hf = {
        **FULL,
        "model": {"kind": "hf", "repo": "org/m", "revision": "abc", "endpoint": "http://h/v1"},
    }
    assert ReleaseRoute.from_manifest(ReleaseManifest.parse(hf)).model == "org/m"
    named = {**hf, "model": {**hf["model"], "served_name": "smol"}}
    assert ReleaseRoute.from_manifest(ReleaseManifest.parse(named)).model == "smol"
    with pytest.raises(ManifestError):
        ReleaseManifest.parse({**FULL, "model": {"kind": "api", "model": "m"}})
    no_prompt = {k: v for k, v in FULL.items() if k != "prompt_template"}
    with pytest.raises(ManifestError):
        ReleaseManifest.parse(no_prompt)


def test_route_from_a_release_manifest_object() -> None:
    m = ReleaseManifest.parse(json.dumps(FULL))
    r = ReleaseRoute.from_manifest(m)
    assert r.release_sha256 == m.sha256 and r.model == "gpt-x"
    assert r.prompt_template.render({"question": "why?"}) == "Q: why?"
