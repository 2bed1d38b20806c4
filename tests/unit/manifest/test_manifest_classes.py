"""Per-class templates and generation settings: hashed with the manifest, rendered by one
function for the gateway, the gate and ``answers.from_endpoint``; bad input named."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from relgate.answers import from_endpoint
from relgate.errors import ManifestError
from relgate.gateway.server import Gateway, _class_attrs
from relgate.manifest import ReleaseManifest
from relgate.prompt import Rendered, request_seed
from relgate.routing import ReleaseRoute, RoutingSnapshot

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "manifests" / "closed-weight-api.json"
LEGAL: dict[str, Any] = {
    "match": {"domain": "legal"},
    "slices": ["Law"],
    "prompt_template": {
        "ref": "legal@1",
        "system": "You are a careful legal assistant.",
        "template": "Legal question: {question}",
        "variables": ["question"],
    },
    "generation": {"stop": [" "], "max_tokens": 16},
}


def doc(**extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = json.loads(EXAMPLE.read_text())
    d.update(extra)
    return d


def with_legal(**gen: Any) -> ReleaseManifest:
    return ReleaseManifest.parse(
        doc(generation={"temperature": 0.7, "max_tokens": 48, "seed": 7, **gen},
            classes={"legal": LEGAL})
    )  # fmt: skip


def test_manifests_without_classes_keep_their_sha256_and_classes_are_hashed() -> None:
    plain = ReleaseManifest.parse(doc())
    assert plain.sha256 == ReleaseManifest.parse(doc(classes={}, generation=None)).sha256
    assert "classes" not in plain.to_dict() and "generation" not in plain.to_dict()
    m = with_legal()
    assert m.sha256 != plain.sha256
    # Same content in another key order: same release.
    reordered = doc(classes={"legal": dict(reversed(list(LEGAL.items())))},
                    generation={"seed": 7, "max_tokens": 48, "temperature": 0.7})  # fmt: skip
    assert ReleaseManifest.parse(reordered).sha256 == m.sha256
    stopped = copy.deepcopy(LEGAL)
    stopped["generation"]["stop"] = ["."]
    other = ReleaseManifest.parse(doc(generation=m.to_dict()["generation"],
                                      classes={"legal": stopped}))  # fmt: skip
    assert other.sha256 != m.sha256


def test_the_class_of_a_slice_or_labels_gets_its_template_and_settings() -> None:
    m = with_legal()
    law = m.render_prompt("Can I sue my neighbour?", "Law")
    assert law.klass == "legal"
    assert law.messages[0] == {"role": "system", "content": "You are a careful legal assistant."}
    assert law.messages[-1]["content"] == "Legal question: Can I sue my neighbour?"
    assert law.generation["stop"] == [" "] and law.generation["max_tokens"] == 16
    assert law.generation["temperature"] == 0.7  # the release's, not overridden by the class
    science = m.render_prompt("Why is the sky blue?", "Science")
    assert science.klass is None and "stop" not in science.generation
    assert science.generation["max_tokens"] == 48
    assert science.messages[-1]["content"].startswith("Question: Why is the sky blue?")
    # By labels alone (a live request that names its domain, any slice).
    by_label = m.render([{"role": "user", "content": "x"}], None, {"domain": "legal"})
    assert by_label.klass == "legal"
    # The per-request seed is derived from the release seed and the messages: repeatable,
    # different per prompt and per release seed.
    assert law.generation["seed"] == request_seed(7, law.messages)
    assert (
        law.generation["seed"]
        == m.render_prompt("Can I sue my neighbour?", "Law").generation["seed"]
    )
    assert science.generation["seed"] != law.generation["seed"]
    assert (
        with_legal(seed=8).render_prompt("Can I sue my neighbour?", "Law").generation["seed"]
        != law.generation["seed"]
    )


def test_classes_are_tried_in_name_order_whatever_the_key_order() -> None:
    a = {"slices": ["Law"], "generation": {"max_tokens": 1}}
    b = {"slices": ["Law"], "generation": {"max_tokens": 2}}
    one = ReleaseManifest.parse(doc(classes={"b": b, "a": a}))
    two = ReleaseManifest.parse(doc(classes={"a": a, "b": b}))
    assert one.sha256 == two.sha256
    assert one.render_prompt("q", "Law").klass == two.render_prompt("q", "Law").klass == "a"


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ({"legal": {"slices": ["Law"]}}, "classes.legal: .*changes nothing"),
        ({"legal": {"generation": {"stop": ["x"]}}}, "classes.legal: .*select nothing"),
        ({"legal": {**LEGAL, "generation": {"stop": [""]}}}, "stop\\[0\\]: .*must not be empty"),
        ({"legal": {**LEGAL, "generation": {"stop": " "}}}, "classes.legal.generation.stop"),
        ({"legal": {**LEGAL, "generation": {"max_tokens": 0}}}, "max_tokens: .*greater than"),
        ({"legal": {**LEGAL, "generation": {"temperature": 3}}}, "temperature: .*less than"),
        ({"legal": {**LEGAL, "generation": {"max_tokens": "16"}}}, "max_tokens: .*integer"),
        ({"legal": {**LEGAL, "generation": {"beam_width": 4}}}, "beam_width: Extra inputs"),
        ({"legal": {**LEGAL, "templat": {}}}, "classes.legal.templat: Extra inputs"),
        ({"bad name!": LEGAL}, "classes.*bad name!.*pattern"),
        ({"legal": {**LEGAL, "prompt_template": {"ref": "x", "template": "{a}",
                                                  "variables": ["b"]}}}, "'b' does not appear"),
    ],
)  # fmt: skip
def test_bad_classes_and_settings_are_named(classes: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message) as err:
        ReleaseManifest.parse(doc(classes=classes))
    assert "\n" not in str(err.value)


def test_bad_release_generation_is_named() -> None:
    with pytest.raises(ManifestError, match=r"generation\.seed: .*greater than or equal to 0"):
        ReleaseManifest.parse(doc(generation={"seed": -1}))
    with pytest.raises(ManifestError, match=r"generation\.top_p"):
        ReleaseManifest.parse(doc(generation={"top_p": 0}))


def test_the_gateway_forwards_the_class_template_and_settings() -> None:
    m = with_legal()
    route = ReleaseRoute.from_manifest(m)
    gw = Gateway(RoutingSnapshot(1, route))
    snap = gw.snapshot
    assert snap is not None
    body = {
        "messages": [{"role": "user", "content": "Can I sue my neighbour?"}],
        "metadata": {"slice": "Law"},
        "max_tokens": 500,
        "stop": ["\n"],
        "user": "u1",
    }
    cls = snap.classify({}, body, "127.0.0.1")
    fwd = gw._forward_body(body, route, _class_attrs(cls))
    gate = m.render_prompt("Can I sue my neighbour?", "Law")
    # Exactly what the gate renders for the same item: messages and settings (the release's
    # settings win over the client's).
    assert fwd["messages"] == gate.messages
    assert {k: fwd[k] for k in gate.generation} == gate.generation
    assert fwd["model"] == m.served_model and "metadata" not in fwd and fwd["user"] == "u1"
    other = {"messages": [{"role": "user", "content": "Hi"}], "metadata": {"slice": "Science"}}
    fwd2 = gw._forward_body(other, route, _class_attrs(snap.classify({}, other, "x")))
    assert "stop" not in fwd2 and fwd2["max_tokens"] == 48


def test_from_endpoint_sends_each_items_rendered_request_with_a_seed() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suite"))
    from test_answers import EchoChatServer  # type: ignore[import-not-found]

    m = with_legal()
    items = {"law": m.render_prompt("Can I sue?", "Law"), "sci": m.render_prompt("Sky?", "Science")}
    with EchoChatServer() as srv:
        got = from_endpoint(items, base_url=srv.base_url, model="m", concurrency=1)
        plain = from_endpoint({"p": [{"role": "user", "content": "x"}]}, base_url=srv.base_url,
                              model="m")  # fmt: skip
        bodies = {b["messages"][-1]["content"]: b for b in srv.bodies}
    assert set(got) == {"law", "sci"} and set(plain) == {"p"}
    law = bodies["Legal question: Can I sue?"]
    assert law["stop"] == [" "] and law["max_tokens"] == 16 and law["temperature"] == 0.7
    assert law["seed"] == items["law"].generation["seed"]
    assert "stop" not in bodies[items["sci"].messages[-1]["content"]]
    # Plain messages get the defaults (greedy) and still a seed, derived from the messages.
    assert bodies["x"]["temperature"] == 0.0
    assert bodies["x"]["seed"] == request_seed(0, [{"role": "user", "content": "x"}])
    assert isinstance(items["law"], Rendered)


def test_the_real_model_examples_pin_the_subset_and_v2_changes_only_the_legal_class(
    tmp_path: Path,
) -> None:
    import yaml
    from relgate.demo.real import EXAMPLES, write_subset

    _, sha = write_subset(tmp_path)
    docs = {t: yaml.safe_load((EXAMPLES / f"{t}.yaml").read_text()) for t in ("v0", "v1", "v2")}
    assert {d["dataset"]["sha256"] for d in docs.values()} == {sha}
    v1, v2 = (ReleaseManifest.parse(docs[t]) for t in ("v1", "v2"))
    assert v1.classes is None and v2.classes is not None and set(v2.classes) == {"legal"}
    assert {k: v for k, v in v2.to_dict().items() if k != "classes"} == v1.to_dict()
    # Outside the legal class, v2 sends exactly what v1 sends (messages, settings, seed).
    for prompt, slice_name in (("Why?", "Economics"), ("How?", "Science")):
        assert v2.render_prompt(prompt, slice_name) == v1.render_prompt(prompt, slice_name)
    law = v2.render_prompt("Is it legal?", "Law")
    assert (
        law.generation["stop"] == [" "]
        and law.messages == v1.render_prompt("Is it legal?", "Law").messages
    )
