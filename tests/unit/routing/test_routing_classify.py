"""Session key, slice and traffic class come from the documented sources, in order."""

from __future__ import annotations

import json

import pytest
from relgate.errors import InvalidInputError, ManifestError
from relgate.routing import (
    PromptTemplate,
    ReleaseRoute,
    RoutingSnapshot,
    matchers_from_routing,
    session_bucket,
)

TPL = PromptTemplate("", "{input}", ("input",))
LEGAL = matchers_from_routing({"matchers": [{"domain": "legal"}, {"domain": "tax"}]})
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


def test_matchers_from_routing_accepts_the_manifest_forms_and_validates() -> None:
    canonical = matchers_from_routing({"matchers": [{"b": "x", "a": "y"}, {}]})
    assert canonical == matchers_from_routing([{"a": "y", "b": "x"}, {}])
    assert canonical[0].pairs == (("a", "y"), ("b", "x"))
    assert canonical[0].traffic_class == "a=y,b=x" and canonical[1].traffic_class == "all"
    assert matchers_from_routing({"domain": "legal"})[0].slice == "legal"
    assert matchers_from_routing([{"domain": "legal", "slice": "Law"}])[0].slice == "Law"
    assert matchers_from_routing([{"domain": "legal", "tier": "pro"}])[0].slice is None
    for bad in ({"a": 1}, {"matchers": [{"a": ["x"]}]}, "legal", [3]):
        with pytest.raises(ManifestError):
            matchers_from_routing(bad)


def test_a_matcher_needs_every_pair_and_any_matcher_will_do() -> None:
    both = matchers_from_routing([{"domain": "legal", "tier": "pro"}, {"domain": "tax"}])
    route = ReleaseRoute("c" * 64, "http://127.0.0.1:9/v1", "m", TPL, both)
    assert route.accepts({"domain": "legal", "tier": "pro", "x": "y"})
    assert not route.accepts({"domain": "legal"})
    assert route.accepts({"domain": "tax"})
    catch_all = ReleaseRoute(
        "c" * 64, "http://127.0.0.1:9/v1", "m", TPL, matchers_from_routing([{}])
    )
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


def test_route_from_manifest_mapping() -> None:
    r = ReleaseRoute.from_manifest(MANIFEST, "c" * 64)
    assert (r.model, r.endpoint, r.prompt_template.system) == (
        "gpt-x",
        "http://127.0.0.1:9/v1",
        "S",
    )
    assert r.prompt_template.variables == ("question",)
    assert r.accepts({"domain": "legal"}) and not r.accepts({"domain": "x"})
    hf = {
        **MANIFEST,
        "model": {"kind": "hf", "repo": "org/m", "revision": "abc", "endpoint": "http://h/v1"},
    }
    assert ReleaseRoute.from_manifest(hf, "c" * 64).model == "org/m"
    with pytest.raises(InvalidInputError):
        ReleaseRoute.from_manifest(MANIFEST)
    with pytest.raises(ManifestError):
        ReleaseRoute.from_manifest({**MANIFEST, "model": {"kind": "api", "model": "m"}}, "c" * 64)
    no_prompt = {k: v for k, v in MANIFEST.items() if k != "prompt_template"}
    with pytest.raises(ManifestError):
        ReleaseRoute.from_manifest(no_prompt, "c" * 64)


def test_route_from_a_release_manifest_object() -> None:
    manifest_mod = pytest.importorskip("relgate.manifest")
    full = {
        **MANIFEST,
        "dataset": {"ref": "suite@1", "sha256": "ab" * 32},
        "previous_release": None,
    }
    m = manifest_mod.ReleaseManifest.parse(json.dumps(full))
    r = ReleaseRoute.from_manifest(m)
    assert r.release_sha256 == m.sha256 and r.model == "gpt-x"
    assert r.prompt_template.render({"question": "why?"}) == "Q: why?"
