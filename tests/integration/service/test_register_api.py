"""Register, get and list through gRPC against a real server and SQLite."""

from __future__ import annotations

import json

import pytest
import yaml
from relgate import errors
from relgate.client import RelgateClient
from relgate.manifest import ReleaseManifest
from service_helpers import manifest_bytes, manifest_doc


def test_register_get_list(admin: RelgateClient) -> None:
    first = admin.register_release(manifest_bytes(1))
    assert first.created
    expected = ReleaseManifest.parse(manifest_doc(1))
    assert first.release.sha256 == expected.sha256
    assert first.release.release_id == "rel_" + expected.sha256[:12]
    assert first.release.manifest_json.encode() == expected.canonical_bytes()
    assert first.receipt.kind == "register"
    assert first.receipt.release_sha256 == expected.sha256
    assert json.loads(first.receipt.evidence_json)["manifest_sha256"] == expected.sha256
    assert first.receipt.actor.startswith("key:bootstrap-operator:")

    second = admin.register_release(manifest_bytes(2, previous=first.release.sha256))
    assert second.release.previous_release == first.release.sha256

    got = admin.get_release(first.release.sha256)
    assert got == first.release
    assert admin.get_release(first.release.release_id).sha256 == first.release.sha256
    listed = {r.sha256 for r in admin.list_releases()}
    assert listed == {first.release.sha256, second.release.sha256}
    assert len(admin.list_releases(limit=1)) == 1
    receipts = admin.list_receipts()
    assert [r.kind for r in receipts] == ["key_create", "register", "register"]
    assert [r.receipt_sha256 for r in receipts[1:]] == [
        first.receipt.receipt_sha256,
        second.receipt.receipt_sha256,
    ]
    only = admin.list_receipts(release_sha256=second.release.sha256)
    assert [r.receipt_sha256 for r in only] == [second.receipt.receipt_sha256]


def test_register_is_idempotent_and_key_order_does_not_matter(admin: RelgateClient) -> None:
    doc = manifest_doc(3)
    first = admin.register_release(json.dumps(doc))
    reordered = json.dumps(dict(reversed(list(doc.items()))), indent=4)
    again = admin.register_release(reordered, fmt="json")
    assert not again.created
    assert again.release.sha256 == first.release.sha256
    assert again.receipt.receipt_sha256 == first.receipt.receipt_sha256
    assert [r.kind for r in admin.list_receipts()] == ["key_create", "register"]


def test_yaml_manifest(admin: RelgateClient) -> None:
    as_yaml = yaml.safe_dump(manifest_doc(4))
    result = admin.register_release(as_yaml, fmt="yaml")
    assert result.release.sha256 == ReleaseManifest.parse(manifest_doc(4)).sha256


def test_expected_sha(admin: RelgateClient) -> None:
    sha = ReleaseManifest.parse(manifest_doc(5)).sha256
    assert admin.register_release(manifest_bytes(5), expected_sha256=sha).created
    with pytest.raises(errors.ManifestConflictError, match="hashes to"):
        admin.register_release(manifest_bytes(6), expected_sha256=sha)
    with pytest.raises(errors.InvalidInputError, match="expected_sha256"):
        admin.register_release(manifest_bytes(6), expected_sha256="xyz")
    assert len(admin.list_releases()) == 1


def test_unknown_release(admin: RelgateClient) -> None:
    with pytest.raises(errors.NotFoundError, match="no release"):
        admin.get_release("0" * 64)
    with pytest.raises(errors.NotFoundError):
        admin.get_release("rel_000000000000")
    with pytest.raises(errors.InvalidInputError):
        admin.get_release("not-a-sha")
    with pytest.raises(errors.InvalidInputError, match="required"):
        admin.get_release("")


def test_missing_previous_release(admin: RelgateClient) -> None:
    with pytest.raises(errors.NotFoundError, match="previous_release"):
        admin.register_release(manifest_bytes(7, previous="cd" * 32))
    assert admin.list_releases() == []
    assert [r.kind for r in admin.list_receipts()] == ["key_create"]
