"""Hostile bundles: any mutation gives a report or InvalidInputError, never a crash, and a
mutation of signed content is never reported as ok."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relgate.app.receipts import export_bundle, sign_tree_head
from relgate.canonical import canonical_json
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.receipts import (
    BundleReport,
    TreeHeadSigner,
    Trust,
    verify_bundle,
)
from relgate.store import Store

MANIFEST: dict[str, Any] = {
    "model": {"kind": "api", "provider": "p", "model": "m", "endpoint": "http://127.0.0.1:1/v1"},
    "prompt_template": {"ref": "t", "template": "{q}", "variables": ["q"]},
    "routing": [{}],
    "dataset": {"ref": "d", "sha256": "ab" * 32},
    "previous_release": None,
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = Store.open(data_dir=tmp_path_factory.mktemp("fuzz"))
    try:
        m = ReleaseManifest.parse(MANIFEST)
        store.register_release(m, actor="alice")
        for i in range(6):
            store.record_decision(
                tenant="default",
                release_sha=m.sha256,
                kind="checkpoint_promote",
                evidence={"i": i, "q": i / 7},
                actor="c",
                reason="",
            )
            if i == 2:
                sign_tree_head(store, TreeHeadSigner(store.data_dir))
        doc = export_bundle(store)
    finally:
        store.close()
    assert verify_bundle(doc, trust=Trust.pinned([doc["public_key_b64"]])).ok
    return doc


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=70),
    st.sampled_from(["00" * 32, "zz", "", "A" * 64]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_bundle_never_crashes_or_passes(bundle: dict[str, Any], data: Any) -> None:
    doc = copy.deepcopy(bundle)
    signed = ("receipts", "tree_heads", "public_key_b64", "consistency_proofs")
    paths = [p for p in _paths(doc) if p and p[0] in signed]
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    old = parent[path[-1]]
    # Optional parts: the tree is rebuilt from the receipts, and an older head needs no proof.
    harmless = path[-1] == "inclusion_proof"
    if data.draw(st.booleans()):
        harmless = harmless or (path[0] == "consistency_proofs" and len(path) <= 2)
        if isinstance(parent, list):
            parent.pop(path[-1])
        else:
            del parent[path[-1]]
    else:
        new = data.draw(REPLACEMENTS)
        parent[path[-1]] = new
        try:
            same = canonical_json(new) == canonical_json(old)  # 0 for 0.0: the same JSON
        except InvalidInputError:
            same = False
        harmless = (
            same or (harmless and new is None) or (path == ("consistency_proofs",) and new == [])
        )
    # The bundle's top-level key is only a claim (each head names its signer); a verifier with
    # the key pinned ignores it, so changing it changes nothing that is trusted.
    harmless = harmless or path == ("public_key_b64",)
    try:
        # Pinned to the genuine key, as a verifier holds it: a mutation must not pass.
        report = verify_bundle(doc, trust=Trust.pinned([bundle["public_key_b64"]]))
    except InvalidInputError:
        return
    assert isinstance(report, BundleReport)
    if report.ok:
        assert harmless, (path, report)


def test_verify_from_path_and_dict_agree(bundle: dict[str, Any], tmp_path: Path) -> None:
    import json

    (tmp_path / "b.json").write_text(json.dumps(bundle))
    trust = Trust.pinned([bundle["public_key_b64"]])
    assert verify_bundle(tmp_path / "b.json", trust=trust) == verify_bundle(bundle, trust=trust)
