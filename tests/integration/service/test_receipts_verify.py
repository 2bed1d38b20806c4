"""Export and verify receipts: offline bundles, and tampering named by `receipts verify`."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from relgate.cli import app
from relgate.client import RelgateClient
from relgate.receipts.trust import ENV_KEYS
from relgate.service.server import RunningServer
from service_helpers import manifest_bytes
from typer.testing import CliRunner, Result


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def three(server: RunningServer, admin: RelgateClient) -> list[str]:
    """Three registered releases; returns their register receipts' shas (chain positions 1-3,
    after the bootstrap key's key_create receipt at 0)."""
    return [admin.register_release(manifest_bytes(n)).receipt.receipt_sha256 for n in range(3)]


@pytest.fixture
def cli_env(
    server: RunningServer, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("RELGATE_SERVER", server.address)
    monkeypatch.setenv("RELGATE_API_KEY", admin_key)
    yield


def _export(tmp_path: Path) -> Path:
    out = tmp_path / "bundle.json"
    res = run("receipts", "export", "--out", str(out))
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def server_key(server: RunningServer, cli_env: None) -> str:
    """The server's tree-head key as `relgate receipts key` prints it (to pin offline)."""
    res = run("receipts", "key")
    assert res.exit_code == 0, res.output
    return res.stdout.strip()


def test_server_verifies_its_chain(three: list[str], admin: RelgateClient) -> None:
    report = admin.verify_receipts()
    assert report.ok and report.receipts == 4 and report.tree_size == 4
    assert len(report.root_hex) == 64 and report.public_key_b64


def test_export_then_verify_offline(
    three: list[str], cli_env: None, server_key: str, tmp_path: Path
) -> None:
    bundle = _export(tmp_path)
    doc = json.loads(bundle.read_text())
    assert [r["receipt_sha256"] for r in doc["receipts"]][1:] == three
    # Offline: no server, no API key; the tree-head key pinned.
    env = {"RELGATE_SERVER": "127.0.0.1:1", "RELGATE_API_KEY": ""}
    res = run("receipts", "verify", "--bundle", str(bundle), "--key", server_key, env=env)
    assert res.exit_code == 0, res.output
    assert "ok: 4 receipts verified" in res.stdout
    fingerprint = hashlib.sha256(base64.b64decode(server_key)).hexdigest()
    assert f"trust: pinned key sha256:{fingerprint}" in res.stdout
    as_json = json.loads(
        run("receipts", "verify", "--bundle", str(bundle), "--key", server_key, "--json").stdout
    )
    assert {k: as_json[k] for k in ("ok", "receipts", "first_error")} == {
        "ok": True,
        "receipts": 4,
        "first_error": None,
    }
    # The JSON names the key that signed the accepted head, its size and root, the heads,
    # the consistency proofs, the anchors and the trust mode.
    assert as_json["key"] == {"fingerprint": fingerprint, "public_key_b64": server_key}
    assert as_json["trust"] == "pinned"
    assert (as_json["tree_size"], as_json["root_hex"]) == (4, doc["tree_heads"][-1]["root_hex"])
    assert [h["tree_size"] for h in as_json["heads"]] == [4]
    assert as_json["consistency"] == [] and as_json["anchors"] == []
    # Pinned through the environment, as a script would.
    by_env = run("receipts", "verify", "--bundle", str(bundle), env={**env, ENV_KEYS: server_key})
    assert by_env.exit_code == 0, by_env.output
    # A genuine key that is not the server's: refused, named as a bad signature.
    other = base64.b64encode(
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ).decode()
    pinned = run("receipts", "verify", "--bundle", str(bundle), "--public-key", other, env=env)
    assert pinned.exit_code == 7 and "bad signature" in pinned.stderr
    # Something that is not a key at all is a usage error.
    junk = run("receipts", "verify", "--bundle", str(bundle), "--public-key", "AAAA", env=env)
    assert junk.exit_code == 3 and "Ed25519 key is 32" in junk.stderr


def test_verify_without_trust_refuses(three: list[str], cli_env: None, tmp_path: Path) -> None:
    """Without a trust anchor, `receipts verify --bundle` refuses and says how to get one."""
    bundle = _export(tmp_path)
    res = run("receipts", "verify", "--bundle", str(bundle))
    assert res.exit_code == 3
    assert res.stderr.startswith("error: no trust anchor")
    assert "--key" in res.stderr and "relgate receipts key" in res.stderr
    assert res.stderr.count("\n") == 1 and res.stdout == ""


def test_trust_bundle_key_says_so_loudly(
    three: list[str], cli_env: None, server_key: str, tmp_path: Path
) -> None:
    bundle = _export(tmp_path)
    res = run("receipts", "verify", "--bundle", str(bundle), "--trust-bundle-key")
    assert res.exit_code == 0, res.output
    fingerprint = hashlib.sha256(base64.b64decode(server_key)).hexdigest()
    assert "WARNING" in res.stderr and fingerprint in res.stderr
    assert "self-asserted: proves consistency only, not origin" in res.stdout
    as_json = json.loads(
        run("receipts", "verify", "--bundle", str(bundle), "--trust-bundle-key", "--json").stdout
    )
    assert as_json["trust"] == "bundle-key (self-asserted: proves consistency only, not origin)"
    assert as_json["key"]["fingerprint"] == fingerprint
    both = run(
        "receipts", "verify", "--bundle", str(bundle), "--trust-bundle-key", "--key", server_key
    )
    assert both.exit_code == 3 and "exclude each other" in both.stderr


def test_key_command(server: RunningServer, cli_env: None, server_key: str, tmp_path: Path) -> None:
    """`relgate receipts key` prints the server's key; `--data-dir` reads the same key from
    the signing key file; `--json` is a key-set file that `--keys` accepts."""
    local = run("receipts", "key", "--data-dir", str(server.data_dir))
    assert local.exit_code == 0, local.output
    assert local.stdout.strip() == server_key
    as_json = run("receipts", "key", "--json")
    doc = json.loads(as_json.stdout)
    assert doc["format"] == "relgate.trusted_keys.v1"
    assert doc["keys"][0]["public_key_b64"] == server_key
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(as_json.stdout)
    res = run("receipts", "verify", "--bundle", str(_export(tmp_path)), "--keys", str(keys_file))
    assert res.exit_code == 0, res.output


def test_edited_bundle_names_the_receipt(
    three: list[str], cli_env: None, server_key: str, tmp_path: Path
) -> None:
    bundle = _export(tmp_path)
    doc = json.loads(bundle.read_text())
    doc["receipts"][2]["reason"] = "nothing to see here"
    bundle.write_text(json.dumps(doc))
    res = run("receipts", "verify", "--bundle", str(bundle), "--key", server_key)
    assert res.exit_code == 7
    assert res.stderr.startswith(f"error: receipt #2 {three[1]}: altered body")


def test_missing_or_garbage_bundle(cli_env: None, server_key: str, tmp_path: Path) -> None:
    res = run("receipts", "verify", "--bundle", str(tmp_path / "nope.json"), "--key", server_key)
    assert res.exit_code == 3 and res.stderr.startswith("error: no such bundle file")
    junk = tmp_path / "junk.json"
    junk.write_text("[]")
    res = run("receipts", "verify", "--bundle", str(junk), "--key", server_key)
    assert res.exit_code == 3 and res.stderr.startswith("error: ")


def test_row_altered_in_the_database_is_named(
    three: list[str], server: RunningServer, cli_env: None, server_key: str, tmp_path: Path
) -> None:
    db = sqlite3.connect(server.data_dir / "relgate.db")
    try:
        # An attacker with write access to the database drops the append-only guard first.
        db.execute("DROP TRIGGER receipts_no_update")
        changed = db.execute(
            "UPDATE receipts SET body = replace(body, 'release registered', 'release approved')"
            " WHERE receipt_sha256 = ?",
            (three[2],),
        ).rowcount
        db.commit()
    finally:
        db.close()
    assert changed == 1
    online = run("receipts", "verify")
    assert online.exit_code == 7
    assert online.stderr.startswith(f"error: receipt #3 {three[2]}: altered body")
    assert online.stderr.count("\n") == 1
    as_json = json.loads(run("receipts", "verify", "--json").stdout)
    assert as_json["ok"] is False
    assert as_json["first_error"]["receipt_sha256"] == three[2]
    # The exported bundle carries the altered row, and offline verification names it too.
    offline = run("receipts", "verify", "--bundle", str(_export(tmp_path)), "--key", server_key)
    assert offline.exit_code == 7 and f"receipt #3 {three[2]}: altered body" in offline.stderr
