"""Manifest identity: canonical JSON, sha256, release_id; and the canonicalizer itself."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from relgate.canonical import canonical_json, canonical_json_slow, sha256_hex, takes_fast_path
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest


def _reversed_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _reversed_keys(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reversed_keys(v) for v in obj]
    return obj


def test_sha_is_over_canonical_json(api_manifest: dict[str, Any]) -> None:
    m = ReleaseManifest.parse(api_manifest)
    assert m.sha256 == sha256_hex(m.canonical_bytes())
    assert m.canonical_bytes() == rfc8785.dumps(m.to_dict())
    assert m.release_id == "rel_" + m.sha256[:12]
    assert len(m.sha256) == 64


def test_key_order_and_whitespace_do_not_matter(api_manifest: dict[str, Any]) -> None:
    base = ReleaseManifest.parse(api_manifest).sha256
    assert ReleaseManifest.parse(_reversed_keys(api_manifest)).sha256 == base
    assert ReleaseManifest.parse(json.dumps(api_manifest, indent=7)).sha256 == base
    assert ReleaseManifest.parse(json.dumps(api_manifest, separators=(",", ":"))).sha256 == base


def test_defaults_are_filled_before_hashing(api_manifest: dict[str, Any]) -> None:
    base = ReleaseManifest.parse(api_manifest)
    spelled = copy.deepcopy(api_manifest)
    spelled["gate_policy"] = base.gate_policy.model_dump()
    spelled["prompt_template"]["system"] = api_manifest["prompt_template"]["system"]
    assert ReleaseManifest.parse(spelled).sha256 == base.sha256
    # An integer where a float is expected is the same number, hence the same release.
    spelled["gate_policy"]["floor"] = 1
    assert ReleaseManifest.parse(spelled).gate_policy.floor == 1.0
    assert b'"floor":1,' in ReleaseManifest.parse(spelled).canonical_bytes()
    assert b'"gate_policy":{' in base.canonical_bytes()


def test_routing_shorthand_is_the_same_release(api_manifest: dict[str, Any]) -> None:
    base = ReleaseManifest.parse(api_manifest).sha256
    api_manifest["routing"] = [{"domain": "legal"}]
    assert ReleaseManifest.parse(api_manifest).sha256 == base


CHANGES: list[tuple[tuple[str, ...], Any]] = [
    (("model", "model"), "gpt-4o-2024-08-06"),
    (("model", "endpoint"), "https://api.openai.com/v2"),
    (("prompt_template", "template"), "Q: {question}\nA:"),
    (("prompt_template", "system"), "Be brief."),
    (("prompt_template", "ref"), "support-qa@4"),
    (("routing", "matchers"), [{"domain": "medical"}]),
    (("dataset", "sha256"), "cd" * 32),
    (("dataset", "ref"), "truthfulqa-graded@2"),
    (("gate_policy", "floor"), 0.7),
    (("gate_policy", "strict"), True),
    (("gate_policy", "seed"), 1),
    (("previous_release",), "ef" * 32),
]


@pytest.mark.parametrize(("path", "value"), CHANGES)
def test_any_change_gives_a_new_sha(
    api_manifest: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    base = ReleaseManifest.parse(api_manifest).sha256
    target = api_manifest
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    assert ReleaseManifest.parse(api_manifest).sha256 != base


def test_sha_is_stable_across_releases_of_the_code(api_manifest: dict[str, Any]) -> None:
    # A golden value: if this changes, every stored release id would change with it.
    m = ReleaseManifest.parse(api_manifest)
    assert m.canonical_bytes().startswith(b'{"dataset":{"ref":"truthfulqa-graded@1","sha256":"')
    assert m.sha256 == sha256_hex(rfc8785.dumps(m.to_dict()))


# ---- canonical JSON ---------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES)
def test_fast_path_equals_rfc8785(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        with pytest.raises(InvalidInputError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, b"1"),
        (1e21, b"1e+21"),
        (1e-7, b"1e-7"),
        (1e-5, b"0.00001"),
        (1e16, b"10000000000000000"),
        (-0.0, b"0"),
        ({"b": 1, "a": [True, None]}, b'{"a":[true,null],"b":1}'),
        ({"\ue000": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ue000":1}'.encode()),
        ("\x1f\b\u2028", b'"\\u001f\\b\xe2\x80\xa8"'),
        ({"s": "rate:1.5"}, b'{"s":"rate:1.5"}'),
    ],
)
def test_canonical_json_examples(value: Any, text: bytes) -> None:
    assert canonical_json(value) == text


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2**53, {"a": object()}, {1: 2, "a": 1}])
def test_canonical_json_rejects_what_jcs_cannot_carry(bad: Any) -> None:
    with pytest.raises(InvalidInputError):
        canonical_json(bad)
    with pytest.raises(InvalidInputError):
        canonical_json_slow(bad)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_own_encoder_equals_rfc8785(value: Any) -> None:
    """The encoder behind the fast path, on its own (the fast path skips it when it can)."""
    from relgate.canonical import _encode

    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return
    parts: list[str] = []
    _encode(value, parts.append, 0)
    assert "".join(parts).encode() == expected


@pytest.mark.parametrize(
    "value",
    [0.1, 123.456, 1e-4, 9.999e-5, 1e15 + 0.5, 5e-324, 1.7976931348623157e308, -2.5e-7, 100.0],
)
def test_float_forms_match_the_reference(value: float) -> None:
    assert canonical_json([value, {"x": -value}]) == rfc8785.dumps([value, {"x": -value}])


def test_reparsed_canonical_text_takes_the_fast_path() -> None:
    """Verifiers re-canonicalize parsed canonical text: integral floats come back as ints, so
    they take the C-encoder route, and both routes give the same bytes."""
    body = {"threshold": 1200.0, "value": 0.25, "n": 3, "tiny": 1e-7}
    text = canonical_json(body)
    assert text == b'{"n":3,"threshold":1200,"tiny":1e-7,"value":0.25}'
    assert not takes_fast_path(body)
    reparsed = json.loads(text)
    del reparsed["tiny"], body["tiny"]
    assert takes_fast_path(reparsed)
    assert canonical_json(reparsed) == canonical_json(body)


def test_errors_say_what_cannot_be_canonicalized() -> None:
    with pytest.raises(InvalidInputError, match=r"^value cannot be canonicalized \(RFC 8785\)"):
        canonical_json({"x": [1.5, math.inf]})
    with pytest.raises(InvalidInputError, match="beyond"):
        canonical_json({"x": [1.5, -(2**60)]})
