"""Trust the verifier holds: pinned keys, key-set files with validity periods, the
environment, and the key of a rotated-out signer (docs/threat-model.md)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from relgate.app.receipts import export_bundle, sign_tree_head
from relgate.cli import app
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.receipts import TreeHeadSigner, Trust, TrustedKey, key_fingerprint, verify_bundle
from relgate.receipts.tree import KEY_FILE
from relgate.receipts.trust import (
    ENV_KEYS,
    ENV_KEYS_FILE,
    load_key_set,
    parse_time,
    public_key_of_key_file,
    trust_from_sources,
)
from relgate.store import Store
from typer.testing import CliRunner

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 6, 1, tzinfo=UTC)


def _head(signer: TreeHeadSigner, timestamp: str = "2026-03-01T00:00:00.000000Z") -> Any:
    return signer.sign(tenant="t", tree_size=1, root_hex="ab" * 32, timestamp=timestamp)


def test_fingerprint_is_sha256_of_the_raw_key(tmp_path: Path) -> None:
    key = TreeHeadSigner(tmp_path).public_key_b64
    assert key_fingerprint(key) == hashlib.sha256(base64.b64decode(key)).hexdigest()
    assert TrustedKey(key).fingerprint == key_fingerprint(key)


@pytest.mark.parametrize("bad", ["AAAA", "not base64!", "", base64.b64encode(b"x" * 31).decode()])
def test_a_key_that_is_not_an_ed25519_key_is_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        TrustedKey(bad)


def test_trust_check(tmp_path: Path) -> None:
    signer, mallory = TreeHeadSigner(tmp_path / "a"), TreeHeadSigner(tmp_path / "m")
    trust = Trust.pinned([signer.public_key_b64])
    head = _head(signer)
    key, reason, _ = trust.check(head)
    assert key is not None and key.public_key_b64 == signer.public_key_b64 and reason == ""
    # A head signed by another key, naming that key: not trusted.
    key, reason, detail = trust.check(_head(mallory))
    assert (key, reason) == (None, "bad signature")
    assert key_fingerprint(mallory.public_key_b64)[:16] in detail
    # A head naming the trusted key with someone else's signature.
    forged = type(head)(**{**head.to_dict(), "signature_b64": _head(mallory).signature_b64})
    assert trust.check(forged)[1] == "bad signature"
    with pytest.raises(InvalidInputError):
        Trust.pinned([])


def test_validity_periods(tmp_path: Path) -> None:
    signer = TreeHeadSigner(tmp_path)
    trust = Trust.pinned([TrustedKey(signer.public_key_b64, not_before=T0, not_after=T1)])
    assert trust.check(_head(signer, "2026-03-01T00:00:00.000000Z"))[0] is not None
    for outside in ("2025-12-31T23:59:59.999999Z", "2026-06-01T00:00:00.000001Z"):
        key, reason, detail = trust.check(_head(signer, outside))
        assert (key, reason) == (None, "key not valid") and outside in detail
    # The same key listed twice (two periods): either period will do.
    twice = Trust.pinned(
        [
            TrustedKey(signer.public_key_b64, not_after=T0),
            TrustedKey(signer.public_key_b64, not_before=T1),
        ]
    )
    assert twice.check(_head(signer, "2026-07-01T00:00:00Z"))[0] is not None
    assert twice.check(_head(signer, "2026-03-01T00:00:00Z"))[1] == "key not valid"
    # A head whose time cannot be read is outside any period.
    assert trust.check(_head(signer, "yesterday"))[1] == "key not valid"
    with pytest.raises(InvalidInputError):
        TrustedKey(signer.public_key_b64, not_before=T1, not_after=T0)


def test_parse_time() -> None:
    assert parse_time("2026-06-01T00:00:00Z") == T1
    assert parse_time("2026-06-01T02:00:00.5+02:00") == T1.replace(microsecond=500000)
    assert parse_time("2026-06-01T00:00:00.123456789Z").microsecond == 123456
    for bad in ("2026-06-01", "2026-13-01T00:00:00Z", 7):
        with pytest.raises(InvalidInputError):
            parse_time(bad)  # type: ignore[arg-type]


def test_key_set_files(tmp_path: Path) -> None:
    a, b = TreeHeadSigner(tmp_path / "a"), TreeHeadSigner(tmp_path / "b")
    doc = {
        "format": "relgate.trusted_keys.v1",
        "keys": [
            {
                "public_key_b64": a.public_key_b64,
                "fingerprint": key_fingerprint(a.public_key_b64),
                "name": "2025",
                "not_after": "2026-01-01T00:00:00Z",
            },
            b.public_key_b64,
        ],
    }
    (tmp_path / "keys.json").write_text(json.dumps(doc))
    keys = load_key_set(tmp_path / "keys.json")
    assert [(k.name, k.not_after) for k in keys] == [("2025", T0), ("", None)]
    # YAML, where an unquoted time is read as a datetime.
    (tmp_path / "keys.yaml").write_text(
        f"keys:\n  - public_key_b64: {b.public_key_b64}\n    not_before: 2026-01-01 00:00:00Z\n"
    )
    assert load_key_set(tmp_path / "keys.yaml")[0].not_before == T0
    # A bare list is a key set too; what `relgate receipts key --json` prints round-trips.
    (tmp_path / "list.json").write_text(json.dumps([TrustedKey(a.public_key_b64).to_dict()]))
    assert load_key_set(tmp_path / "list.json")[0].public_key_b64 == a.public_key_b64


@pytest.mark.parametrize(
    "content",
    [
        '{"keys": []}',
        '{"format": "other", "keys": ["x"]}',
        '{"keys": [{"public_key_b64": "AAAA"}]}',
        '{"keys": [{"key": "x"}]}',
        "[" * 100_000,
        "- " * 50_000 + "x",
        "{nope",
    ],
)
def test_bad_key_set_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(InvalidInputError):
        load_key_set(path)


def test_key_set_fingerprint_and_fields_are_checked(tmp_path: Path) -> None:
    key = TreeHeadSigner(tmp_path).public_key_b64
    for extra in ({"fingerprint": "00" * 32}, {"valid_until": "2026"}):
        (tmp_path / "k.json").write_text(json.dumps({"keys": [{"public_key_b64": key, **extra}]}))
        with pytest.raises(InvalidInputError):
            load_key_set(tmp_path / "k.json")
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_key_set(tmp_path / "missing.json")


def test_trust_from_sources(tmp_path: Path) -> None:
    a, b = TreeHeadSigner(tmp_path / "a"), TreeHeadSigner(tmp_path / "b")
    (tmp_path / "k.json").write_text(json.dumps({"keys": [b.public_key_b64]}))
    assert trust_from_sources(env={}) is None
    env = {ENV_KEYS: f" {a.public_key_b64}, ", ENV_KEYS_FILE: str(tmp_path / "k.json")}
    from_env = trust_from_sources(env=env)
    assert from_env is not None
    assert [k.public_key_b64 for k in from_env.keys] == [a.public_key_b64, b.public_key_b64]
    # Keys given on the command line replace the environment's, never add to them.
    given = trust_from_sources(keys=[b.public_key_b64], env=env)
    assert given is not None and [k.public_key_b64 for k in given.keys] == [b.public_key_b64]
    assert not given.self_asserted and given.label == "pinned"


def test_public_key_of_key_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        public_key_of_key_file(tmp_path / KEY_FILE)
    assert not (tmp_path / KEY_FILE).exists()  # read, never created
    signer = TreeHeadSigner(tmp_path)
    assert public_key_of_key_file(tmp_path / KEY_FILE) == signer.public_key_b64
    (tmp_path / "junk.key").write_text("nope")
    with pytest.raises(InvalidInputError):
        public_key_of_key_file(tmp_path / "junk.key")


# ---- a rotated-out key ----------------------------------------------------------------------


def test_head_signed_by_a_rotated_out_key_is_refused(
    store: Store, api_manifest: dict[str, Any], tmp_path: Path
) -> None:
    """Attack (e): the 2025 key was rotated out on 2026-01-01 (its ``not_after``), but it,
    or whoever took it, still signs heads. The key set says so; the head is refused as
    ``key not valid``, through the API and the CLI. Before: no key set, no validity."""
    manifest = ReleaseManifest.parse(api_manifest)
    store.register_release(manifest, actor="alice")
    old, new = TreeHeadSigner(tmp_path / "old"), TreeHeadSigner(tmp_path / "new")
    sign_tree_head(store, old, now=datetime(2025, 12, 1, tzinfo=UTC))  # in its period
    store.record_decision(
        tenant="default",
        release_sha=manifest.sha256,
        kind="gate_pass",
        evidence={},
        actor="gate",
        reason="",
    )
    bundle = export_bundle(store, signer=old, now=datetime(2026, 3, 1, tzinfo=UTC))
    assert bundle["tree_heads"][-1]["timestamp"].startswith("2026-03-01")
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {"public_key_b64": old.public_key_b64, "not_after": "2026-01-01T00:00:00Z"},
                    {"public_key_b64": new.public_key_b64, "not_before": "2026-01-01T00:00:00Z"},
                ]
            }
        )
    )
    trust = Trust.pinned(load_key_set(keys))
    report = verify_bundle(bundle, trust=trust)
    assert not report.ok and report.first_error is not None
    assert (report.first_error.index, report.first_error.reason) == (1, "key not valid")
    assert "2026-03-01" in report.first_error.detail
    # The head of size 1, signed in the key's period, passed; the one of size 2 did not.
    assert [(h.tree_size, h.ok) for h in report.heads] == [(1, True), (2, False)]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    res = CliRunner().invoke(
        app, ["receipts", "verify", "--bundle", str(path), "--keys", str(keys)]
    )
    assert res.exit_code == 7, res.output
    assert "key not valid" in res.stderr and "outside its validity" in res.stderr
    ok = CliRunner().invoke(
        app, ["receipts", "verify", "--bundle", str(path), "--key", old.public_key_b64]
    )
    assert ok.exit_code == 0, ok.output  # the same key pinned without a period: accepted
