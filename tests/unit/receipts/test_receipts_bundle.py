"""Export a bundle, verify it offline, and name the first broken receipt for each tampering."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from relgate import merkle, receipts
from relgate.app.receipts import export_bundle, sign_tree_head
from relgate.canonical import canonical_json, sha256_hex
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.receipts import (
    BODY_FIELDS,
    BUNDLE_FORMAT,
    REASONS,
    BundleReport,
    TreeHeadSigner,
    Trust,
    key_fingerprint,
    leaf_hashes,
)
from relgate.receipts.trust import BUNDLE_KEY_TRUST
from relgate.store import Store

N_DECISIONS = 9


def _fill(store: Store, manifest: dict[str, Any]) -> None:
    shas = []
    for ref in ("a", "b"):
        manifest["prompt_template"]["ref"] = ref
        m = ReleaseManifest.parse(manifest)
        store.register_release(m, actor="alice")
        shas.append(m.sha256)
    signer = TreeHeadSigner(store.data_dir)
    for i in range(N_DECISIONS):
        store.record_decision(
            tenant="default",
            release_sha=shas[i % 2],
            kind="checkpoint_promote" if i % 3 else "gate_pass",
            evidence={"q": 0.9 - i / 100, "ci": [0.81, 1e-7], "n": 120 + i, "slice": "law"},
            actor="controller",
            reason=f"step {i}",
        )
        if i in (2, 5):
            sign_tree_head(store, signer)  # older heads: the bundle proves consistency with them


@pytest.fixture
def bundle(store: Store, api_manifest: dict[str, Any]) -> dict[str, Any]:
    _fill(store, api_manifest)
    return export_bundle(store)


def verify_bundle(doc: dict[str, Any] | Path, **trust: Any) -> BundleReport:
    """``receipts.verify_bundle``; without a trust argument, the bundle's own key (these tests
    break structure: chain, tree, proofs; the tests of origin pin a key or name the trust)."""
    return receipts.verify_bundle(doc, **(trust or {"trust_bundle_key": True}))


def _broken(report: BundleReport) -> tuple[int, str]:
    assert not report.ok
    assert report.first_error is not None
    assert report.first_error.reason in REASONS
    return report.first_error.index, report.first_error.reason


def _rehash(entry: dict[str, Any]) -> None:
    entry["receipt_sha256"] = sha256_hex(canonical_json({k: entry[k] for k in BODY_FIELDS}))


def test_export_and_verify(store: Store, bundle: dict[str, Any], tmp_path: Path) -> None:
    n = 2 + N_DECISIONS
    assert len(bundle["receipts"]) == n
    assert [h["tree_size"] for h in bundle["tree_heads"]] == [5, 8, n]
    assert [c["old_size"] for c in bundle["consistency_proofs"]] == [5, 8]
    # One proof per pair of consecutive heads (format v2), not from each head to the newest.
    assert [c["new_size"] for c in bundle["consistency_proofs"]] == [8, n]
    assert bundle["format"] == BUNDLE_FORMAT == "relgate.receipts.bundle.v2"
    report = verify_bundle(bundle)
    root = merkle.root(leaf_hashes(store.receipt_shas())).hex()
    assert (report.ok, report.receipts, report.first_error) == (True, n, None)
    assert (report.tree_size, report.root_hex) == (n, root)
    # Without trust the verifier says the key it used is the bundle's own, self-asserted.
    assert report.trust == BUNDLE_KEY_TRUST
    key = TreeHeadSigner(store.data_dir).public_key_b64
    assert report.key_fingerprint == key_fingerprint(key)
    assert [(h.tree_size, h.ok) for h in report.heads] == [(5, True), (8, True), (n, True)]
    assert [(c.old_size, c.new_size, c.source, c.ok) for c in report.consistency] == [
        (5, 8, "bundle", True),
        (8, n, "bundle", True),
    ]
    # Offline from a file, after a JSON round trip, with the signer's key pinned.
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    pinned = verify_bundle(path, public_key_b64=key)
    assert pinned.ok and pinned.trust == "pinned"
    assert pinned.key_fingerprint == hashlib.sha256(base64.b64decode(key)).hexdigest()
    assert verify_bundle(path, trust=Trust.pinned([key])) == pinned
    # The export's head is also kept in the store.
    assert store.audit.tree_heads()[-1] == bundle["tree_heads"][-1]


def test_bundle_without_inclusion_proofs_verifies(store: Store, bundle: dict[str, Any]) -> None:
    lean = export_bundle(store, inclusion_proofs=False)
    assert "inclusion_proof" not in lean["receipts"][0]
    assert verify_bundle(lean).ok


def test_empty_tenant_bundle(store: Store) -> None:
    empty = export_bundle(store, tenant="nobody")
    assert empty["receipts"] == []
    assert verify_bundle(empty).ok


def test_altered_body(bundle: dict[str, Any]) -> None:
    bundle["receipts"][4]["evidence"]["q"] = 0.99
    assert _broken(verify_bundle(bundle)) == (4, "altered body")
    assert "hashes to" in str(verify_bundle(bundle).first_error)


def test_altered_and_rehashed_body(bundle: dict[str, Any]) -> None:
    bundle["receipts"][4]["reason"] = "nothing to see"
    _rehash(bundle["receipts"][4])
    assert _broken(verify_bundle(bundle)) == (4, "altered body")


def test_extra_field_is_an_altered_body(bundle: dict[str, Any]) -> None:
    bundle["receipts"][3]["approved_by"] = "mallory"
    assert _broken(verify_bundle(bundle)) == (3, "altered body")


@pytest.mark.parametrize("proofs", [True, False])
def test_broken_chain_link(store: Store, bundle: dict[str, Any], proofs: bool) -> None:
    doc = bundle if proofs else export_bundle(store, inclusion_proofs=False)
    entry = doc["receipts"][6]
    entry["prev_receipt_sha256"] = doc["receipts"][4]["receipt_sha256"]  # skip receipt 5
    _rehash(entry)
    assert _broken(verify_bundle(doc)) == (6, "broken chain link")


def test_broken_release_chain_link(store: Store, bundle: dict[str, Any]) -> None:
    doc = export_bundle(store, inclusion_proofs=False)
    entry = doc["receipts"][5]
    entry["prev_release_receipt_sha256"] = None
    _rehash(entry)
    assert _broken(verify_bundle(doc)) == (5, "broken chain link")


def test_missing_receipt(bundle: dict[str, Any]) -> None:
    del bundle["receipts"][3]
    assert _broken(verify_bundle(bundle)) == (3, "missing receipt")


def test_missing_receipt_renumbered(store: Store, bundle: dict[str, Any]) -> None:
    doc = export_bundle(store, inclusion_proofs=False)
    del doc["receipts"][3]
    for i, entry in enumerate(doc["receipts"]):
        entry["seq"] = i
    assert _broken(verify_bundle(doc)) == (3, "missing receipt")


def test_missing_last_receipt(bundle: dict[str, Any]) -> None:
    n = len(bundle["receipts"])
    bundle["receipts"].pop()
    assert _broken(verify_bundle(bundle)) == (n - 1, "missing receipt")


def test_reordered_receipts(bundle: dict[str, Any]) -> None:
    r = bundle["receipts"]
    r[2], r[3] = r[3], r[2]
    assert _broken(verify_bundle(bundle)) == (2, "missing receipt")


def test_bad_signature(bundle: dict[str, Any]) -> None:
    head = bundle["tree_heads"][-1]
    sig = head["signature_b64"]
    head["signature_b64"] = ("B" if sig[0] == "A" else "A") + sig[1:]
    index, reason = _broken(verify_bundle(bundle))
    assert (index, reason) == (head["tree_size"] - 1, "bad signature")


def test_resigned_with_another_key_fails_against_pinned_key(
    store: Store, bundle: dict[str, Any], tmp_path: Path
) -> None:
    mallory = TreeHeadSigner(tmp_path / "mallory")
    bundle["public_key_b64"] = mallory.public_key_b64
    bundle["tree_heads"] = [
        mallory.sign(
            **{k: h[k] for k in ("tenant", "tree_size", "root_hex", "timestamp")}
        ).to_dict()
        for h in bundle["tree_heads"]
    ]
    selfish = verify_bundle(bundle)
    assert selfish.ok  # self-consistent...
    # ...and said to be only that, with the key it rests on named.
    assert selfish.trust == BUNDLE_KEY_TRUST
    assert selfish.key_fingerprint == key_fingerprint(mallory.public_key_b64)
    pinned = TreeHeadSigner(store.data_dir).public_key_b64
    assert _broken(verify_bundle(bundle, public_key_b64=pinned))[1] == "bad signature"
    assert _broken(verify_bundle(bundle, trust=Trust.pinned([pinned])))[1] == "bad signature"


def _resign(store: Store, head: dict[str, Any], **changes: Any) -> dict[str, Any]:
    fields = {k: head[k] for k in ("tenant", "tree_size", "root_hex", "timestamp")}
    return TreeHeadSigner(store.data_dir).sign(**{**fields, **changes}).to_dict()


@pytest.mark.parametrize("proofs", [True, False])
def test_signed_head_that_does_not_match(
    store: Store, bundle: dict[str, Any], proofs: bool
) -> None:
    doc = bundle if proofs else export_bundle(store, inclusion_proofs=False)
    doc["tree_heads"][-1] = _resign(store, doc["tree_heads"][-1], root_hex="ab" * 32)
    assert _broken(verify_bundle(doc))[1] == "tree head mismatch"


def test_older_head_that_does_not_match(store: Store, bundle: dict[str, Any]) -> None:
    bundle["tree_heads"][0] = _resign(store, bundle["tree_heads"][0], root_hex="cd" * 32)
    assert _broken(verify_bundle(bundle)) == (0, "tree head mismatch")


def test_bad_consistency_proof(bundle: dict[str, Any]) -> None:
    proof = bundle["consistency_proofs"][1]["proof"]
    bundle["consistency_proofs"][1]["proof"] = ("0" if proof[0] != "0" else "1") + proof[1:]
    assert _broken(verify_bundle(bundle)) == (7, "tree head mismatch")


def test_bad_inclusion_proof(bundle: dict[str, Any]) -> None:
    proof = bundle["receipts"][2]["inclusion_proof"]
    bundle["receipts"][2]["inclusion_proof"] = ("0" if proof[0] != "0" else "1") + proof[1:]
    assert _broken(verify_bundle(bundle)) == (2, "bad inclusion proof")
    bundle["receipts"][2]["inclusion_proof"] = "zz"
    assert _broken(verify_bundle(bundle)) == (2, "bad inclusion proof")


def test_unsigned_receipts_beyond_the_head(store: Store, bundle: dict[str, Any]) -> None:
    extra = copy.deepcopy(bundle["receipts"][-1])
    extra["prev_receipt_sha256"] = extra["receipt_sha256"]
    extra["prev_release_receipt_sha256"] = extra["receipt_sha256"]
    extra["seq"] += 1
    del extra["inclusion_proof"]
    _rehash(extra)
    bundle["receipts"].append(extra)
    assert _broken(verify_bundle(bundle)) == (extra["seq"], "tree head mismatch")


def test_first_broken_receipt_wins(bundle: dict[str, Any]) -> None:
    bundle["receipts"][7]["evidence"]["q"] = 0.0
    bundle["receipts"][3]["evidence"]["q"] = 0.0
    assert _broken(verify_bundle(bundle)) == (3, "altered body")


def test_receipt_altered_in_the_database_is_named(
    store: Store, api_manifest: dict[str, Any], bypass_append_only: Any
) -> None:
    _fill(store, api_manifest)
    target = store.list_receipts()[5]
    body = json.loads(target.canonical_body())
    body["evidence"]["q"] = 1.0
    with bypass_append_only(store, "receipts") as conn:
        conn.execute(
            sa.text("UPDATE receipts SET body = :b WHERE receipt_sha256 = :s"),
            {"b": canonical_json(body).decode(), "s": target.receipt_sha256},
        )
    assert _broken(verify_bundle(export_bundle(store))) == (5, "altered body")


def test_receipt_rewritten_in_the_database_is_caught_by_an_older_head(
    store: Store, api_manifest: dict[str, Any], bypass_append_only: Any
) -> None:
    """An attacker who rewrites the newest receipt and its sha in the database gets the
    server to sign the forged tree, but the head signed before contradicts it."""
    _fill(store, api_manifest)
    sign_tree_head(store, TreeHeadSigner(store.data_dir))
    last = store.list_receipts()[-1]
    body = {**last.body(), "reason": "forged"}
    forged = sha256_hex(canonical_json(body))
    with bypass_append_only(store, "receipts") as conn:
        conn.execute(
            sa.text("UPDATE receipts SET body = :b, receipt_sha256 = :f WHERE receipt_sha256 = :s"),
            {"b": canonical_json(body).decode(), "f": forged, "s": last.receipt_sha256},
        )
    # Two heads of the same size with different roots, both signed by the server: a fork
    # (the signer showed two histories), named as such rather than a plain mismatch.
    index, reason = _broken(verify_bundle(export_bundle(store)))
    assert (index, reason) == (len(store.list_receipts()) - 1, "fork")


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"format": "something else"},
        {"format": "relgate.receipts.bundle.v1", "tenant": "t", "public_key_b64": "k"},
        {
            "format": "relgate.receipts.bundle.v1",
            "tenant": "t",
            "public_key_b64": "k",
            "receipts": [],
            "tree_heads": [{"tree_size": 0}],
        },
    ],
)
def test_not_a_bundle(doc: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        verify_bundle(doc)


def test_no_trust_is_refused(bundle: dict[str, Any]) -> None:
    """A verifier must hold trust or say it takes the bundle's word: never a silent default."""
    with pytest.raises(InvalidInputError, match="no trust anchor"):
        receipts.verify_bundle(bundle)
    with pytest.raises(InvalidInputError, match="exclude each other"):
        receipts.verify_bundle(bundle, trust_bundle_key=True, public_key_b64="k")


def test_unreadable_bundle_file(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("{nope")
    with pytest.raises(InvalidInputError, match="cannot read"):
        verify_bundle(tmp_path / "b.json")
    with pytest.raises(InvalidInputError, match="cannot read"):
        verify_bundle(tmp_path / "missing.json")


def test_head_order_in_the_bundle_does_not_matter(bundle: dict[str, Any]) -> None:
    bundle["tree_heads"].reverse()
    assert verify_bundle(bundle).ok
    bundle["tree_heads"].pop(0)  # the newest head, now first: the older ones cover less
    assert _broken(verify_bundle(bundle)) == (8, "tree head mismatch")


def test_v2_needs_a_proof_between_consecutive_heads(bundle: dict[str, Any]) -> None:
    del bundle["consistency_proofs"][0]
    report = verify_bundle(bundle)
    assert _broken(report) == (4, "tree head mismatch")
    assert "no consistency proof from size 5 to 8" in str(report.first_error)


def test_proof_for_a_head_the_bundle_lacks(bundle: dict[str, Any]) -> None:
    bundle["consistency_proofs"].append({**bundle["consistency_proofs"][0], "old_size": 6})
    assert _broken(verify_bundle(bundle)) == (5, "tree head mismatch")


def test_v1_bundle_is_still_read(store: Store, bundle: dict[str, Any]) -> None:
    """Format v1 carried proofs from each older head to the newest: they are checked, and
    the link between consecutive older heads is derived from the receipts (and said so)."""
    leaves = leaf_hashes([r["receipt_sha256"] for r in bundle["receipts"]])
    n = len(leaves)
    v1 = {
        **bundle,
        "format": "relgate.receipts.bundle.v1",
        "consistency_proofs": [
            {
                "old_size": old,
                "new_size": n,
                "proof": b"".join(merkle.consistency_proof(leaves, old)).hex(),
            }
            for old in (5, 8)
        ],
    }
    key = TreeHeadSigner(store.data_dir).public_key_b64
    report = verify_bundle(v1, trust=Trust.pinned([key]))
    assert report.ok and report.format == "relgate.receipts.bundle.v1"
    assert [(c.old_size, c.new_size, c.source) for c in report.consistency] == [
        (5, n, "bundle"),
        (8, n, "bundle"),
        (5, 8, "receipts"),
    ]
    v1["consistency_proofs"][0]["proof"] = "00" * 32
    assert _broken(verify_bundle(v1, trust=Trust.pinned([key]))) == (4, "tree head mismatch")
