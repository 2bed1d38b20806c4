"""The CLI against a real server: register/show/list, keys, errors as one line + exit code."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from relgate.cli import app
from relgate.manifest import ReleaseManifest
from relgate.service.server import RunningServer
from service_helpers import manifest_doc
from typer.testing import CliRunner, Result


@pytest.fixture
def cli(server: RunningServer, admin_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RELGATE_SERVER", server.address)
    monkeypatch.setenv("RELGATE_API_KEY", admin_key)
    yield


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _write(tmp_path: Path, name: str, doc: dict[str, object]) -> Path:
    path = tmp_path / name
    text = yaml.safe_dump(doc) if name.endswith((".yaml", ".yml")) else json.dumps(doc)
    path.write_text(text)
    return path


def test_register_show_list(cli: None, tmp_path: Path) -> None:
    path = _write(tmp_path, "m.json", manifest_doc(1))
    sha = ReleaseManifest.parse(manifest_doc(1)).sha256
    res = run("release", "register", "--file", str(path))
    assert res.exit_code == 0, res.output
    assert f"sha256  {sha}" in res.stdout and "registered rel_" in res.stdout

    again = run("release", "register", "--file", str(path), "--json")
    data = json.loads(again.stdout)
    assert data["created"] is False
    assert data["release"]["sha256"] == sha
    assert data["receipt"]["kind"] == "register"

    ypath = _write(tmp_path, "m2.yaml", manifest_doc(2, previous=sha))
    res = run("release", "register", "-f", str(ypath), "--json")
    assert res.exit_code == 0, res.output
    second = json.loads(res.stdout)["release"]
    assert second["previous_release"] == sha

    shown = json.loads(run("release", "show", "rel_" + sha[:12], "--json").stdout)
    assert shown["sha256"] == sha
    assert shown["manifest"]["model"]["model"] == "test-model-1"
    human = run("release", "show", sha)
    assert human.exit_code == 0 and "test-model-1" in human.stdout

    listed = json.loads(run("release", "list", "--json").stdout)
    assert {r["sha256"] for r in listed} == {sha, second["sha256"]}
    table = run("release", "list")
    assert table.exit_code == 0 and "rel_" + sha[:12] in table.stdout

    assert "test-model-1" in table.stdout
    receipts_table = run("receipts", "list")
    assert receipts_table.exit_code == 0 and "register" in receipts_table.stdout
    receipts = json.loads(run("receipts", "list", "--json").stdout)
    assert [r["kind"] for r in receipts] == ["key_create", "register", "register"]
    only = json.loads(run("receipts", "list", "--release", sha, "--json").stdout)
    assert [r["release_sha256"] for r in only] == [sha]


def test_expect_sha(cli: None, tmp_path: Path) -> None:
    path = _write(tmp_path, "m.json", manifest_doc(3))
    res = run("release", "register", "--file", str(path), "--expect-sha", "ab" * 32)
    assert res.exit_code == 4
    assert res.stderr.startswith("error: expected release")
    assert res.stderr.count("\n") == 1


def test_keys_create_and_roles(cli: None, server: RunningServer, tmp_path: Path) -> None:
    res = run("keys", "create", "--role", "viewer", "--name", "dash")
    assert res.exit_code == 0, res.output
    key = res.stdout.strip()
    assert key.startswith("rgk_")
    assert "shown once" in res.stderr
    env = {"RELGATE_API_KEY": key, "RELGATE_SERVER": server.address}
    assert run("release", "list", env=env).exit_code == 0
    path = _write(tmp_path, "m.json", manifest_doc(4))
    denied = run("release", "register", "--file", str(path), env=env)
    assert denied.exit_code == 6
    assert denied.stderr == "error: role viewer may not do this (needs releaser)\n"
    as_json = json.loads(run("keys", "create", "--role", "releaser", "--json").stdout)
    assert as_json["role"] == "releaser" and len(as_json["key_sha256"]) == 64
    bad = run("keys", "create", "--role", "root")
    assert bad.exit_code == 3 and "unknown role" in bad.stderr


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("release", "show", "0" * 64), 5, "error: no release"),
        (("release", "show", "nope"), 3, "error: 'nope' is not a release sha256"),
        (("release", "register", "--file", "/does/not/exist.json"), 3, "error: "),
    ],
)
def test_errors_are_one_line_with_distinct_codes(
    cli: None, args: tuple[str, ...], code: int, text: str
) -> None:
    res = run(*args)
    assert res.exit_code == code, res.output
    assert res.stderr.startswith(text)
    assert res.stderr.count("\n") == 1
    assert "Traceback" not in res.output


def test_malformed_manifest_file(cli: None, tmp_path: Path) -> None:
    doc = manifest_doc(5)
    doc["model"]["endpoint"] = 12  # type: ignore[index]
    res = run("release", "register", "--file", str(_write(tmp_path, "bad.json", doc)))
    assert res.exit_code == 3
    assert "model" in res.stderr and res.stderr.startswith("error: ")


def test_missing_key_and_unreachable_server(server: RunningServer) -> None:
    res = run("release", "list", env={"RELGATE_SERVER": server.address, "RELGATE_API_KEY": ""})
    assert res.exit_code == 6 and "missing API key" in res.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        res = run("release", "list", "--server", f"127.0.0.1:{port}", "--api-key", "k")
    assert res.exit_code == 1
    assert res.stderr.startswith("error: cannot reach the relgate server at 127.0.0.1:")
