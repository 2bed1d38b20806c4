"""Export and verify receipts: offline bundles, and tampering named by `receipts verify`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from relgate.cli import app
from relgate.client import RelgateClient
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


def test_server_verifies_its_chain(three: list[str], admin: RelgateClient) -> None:
    report = admin.verify_receipts()
    assert report.ok and report.receipts == 4 and report.tree_size == 4
    assert len(report.root_hex) == 64 and report.public_key_b64


def test_export_then_verify_offline(three: list[str], cli_env: None, tmp_path: Path) -> None:
    bundle = _export(tmp_path)
    doc = json.loads(bundle.read_text())
    assert [r["receipt_sha256"] for r in doc["receipts"]][1:] == three
    # Offline: no server, no key.
    env = {"RELGATE_SERVER": "127.0.0.1:1", "RELGATE_API_KEY": ""}
    res = run("receipts", "verify", "--bundle", str(bundle), env=env)
    assert res.exit_code == 0, res.output
    assert "ok: 4 receipts verified" in res.stdout
    as_json = json.loads(run("receipts", "verify", "--bundle", str(bundle), "--json").stdout)
    assert as_json == {"ok": True, "receipts": 4, "first_error": None}
    pinned = run("receipts", "verify", "--bundle", str(bundle), "--public-key", "AAAA", env=env)
    assert pinned.exit_code == 7 and "bad signature" in pinned.stderr


def test_edited_bundle_names_the_receipt(three: list[str], cli_env: None, tmp_path: Path) -> None:
    bundle = _export(tmp_path)
    doc = json.loads(bundle.read_text())
    doc["receipts"][2]["reason"] = "nothing to see here"
    bundle.write_text(json.dumps(doc))
    res = run("receipts", "verify", "--bundle", str(bundle))
    assert res.exit_code == 7
    assert res.stderr.startswith(f"error: receipt #2 {three[1]}: altered body")


def test_missing_or_garbage_bundle(cli_env: None, tmp_path: Path) -> None:
    res = run("receipts", "verify", "--bundle", str(tmp_path / "nope.json"))
    assert res.exit_code == 3 and res.stderr.startswith("error: no such bundle file")
    junk = tmp_path / "junk.json"
    junk.write_text("[]")
    res = run("receipts", "verify", "--bundle", str(junk))
    assert res.exit_code == 3 and res.stderr.startswith("error: ")


def test_row_altered_in_the_database_is_named(
    three: list[str], server: RunningServer, cli_env: None, tmp_path: Path
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
    offline = run("receipts", "verify", "--bundle", str(_export(tmp_path)))
    assert offline.exit_code == 7 and f"receipt #3 {three[2]}: altered body" in offline.stderr
