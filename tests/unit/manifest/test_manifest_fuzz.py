"""The manifest parser on hostile input: a manifest or ManifestError, nothing else."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from relgate.errors import ManifestError
from relgate.manifest import ReleaseManifest

BASE: dict[str, Any] = {
    "model": {"kind": "local", "path": "m", "endpoint": "http://127.0.0.1:1/v1"},
    "prompt_template": {"ref": "t", "system": "", "template": "{q}", "variables": ["q"]},
    "routing": {"matchers": [{"domain": "legal"}]},
    "dataset": {"ref": "d", "sha256": "ab" * 32},
    "gate_policy": {"floor": 0.5, "min_rows": 10, "strict": True},
    "previous_release": None,
}

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["hf", "api", "local", "raw", "ci_low", "ab" * 32, "http://x/v1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutated_manifest_is_valid_or_a_manifest_error(data: Any) -> None:
    doc = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_paths(doc) or [("model",)]))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = data.draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    for text in (doc, json.dumps(doc, allow_nan=True)):
        try:
            manifest = ReleaseManifest.parse(text)  # type: ignore[arg-type]
        except ManifestError as exc:
            assert str(exc)
            continue
        assert ReleaseManifest.parse(manifest.canonical_bytes()).sha256 == manifest.sha256


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_bytes(data: bytes | str) -> None:
    try:
        ReleaseManifest.parse(data)
    except ManifestError as exc:
        assert "manifest" in str(exc)
