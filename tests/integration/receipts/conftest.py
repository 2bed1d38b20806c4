"""A real server with a receipt chain that holds a gate_fail and manual rollbacks, its
heads anchored to a directory and to an RFC 3161 TSA under a test root, and the bundle
exported through the CLI: the material every forgery test starts from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from receipt_forgery import World, local_tsa
from relgate.app.receipts import anchor_now
from relgate.cli import app
from relgate.client import RelgateClient
from relgate.receipts import TreeHeadSigner
from relgate.receipts.anchors import DirectorySink, Rfc3161Sink
from relgate.service.server import BackgroundServer
from typer.testing import CliRunner


def _manifest(n: int) -> bytes:
    return json.dumps(
        {
            "model": {
                "kind": "api",
                "provider": "openai-compatible",
                "model": f"forgery-model-{n}",
                "endpoint": "http://127.0.0.1:9/v1",
            },
            "prompt_template": {"ref": "qa", "template": "Q: {q}\nA:", "variables": ["q"]},
            "routing": [{"domain": "general"}],
            "dataset": {"ref": "suite", "sha256": "ab" * 32},
            "previous_release": None,
        }
    ).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("receipts")
    with local_tsa(base / "tsa") as tsa, BackgroundServer(base / "data") as server:
        assert server.admin_key_path is not None
        env = {
            "RELGATE_SERVER": server.address,
            "RELGATE_API_KEY": server.admin_key_path.read_text().strip(),
        }
        with RelgateClient(server.address, api_key=env["RELGATE_API_KEY"], timeout=30) as admin:
            shas = [admin.register_release(_manifest(n)).release.sha256 for n in range(2)]
        store, signer = server.store, TreeHeadSigner(server.data_dir)
        sinks = [DirectorySink(base / "anchors"), Rfc3161Sink(tsa.url)]

        def decide(kind: str, release: str, **evidence: Any) -> None:
            store.record_decision(
                tenant="default",
                release_sha=release,
                kind=kind,
                evidence=evidence,
                actor="controller",
                reason=kind,
            )

        decide("gate_pass", shas[0], verdict="PASS", q=0.91)
        decide("gate_fail", shas[1], verdict="FAIL", q=0.42, floor=0.6)
        anchor_now(store, signer, sinks)  # size 5 (the bootstrap key_create first)
        for step in range(3):
            decide("checkpoint_promote", shas[0], step=step)
        anchor_now(store, signer, sinks)  # size 8
        decide("manual_rollback", shas[0], live_release=None)
        decide("manual_rollback", shas[0], live_release=None)
        runner = CliRunner()
        key = runner.invoke(app, ["receipts", "key"], env=env)
        assert key.exit_code == 0, key.output
        out = base / "bundle.json"
        res = runner.invoke(app, ["receipts", "export", "--out", str(out)], env=env)
        assert res.exit_code == 0, res.output
        yield World(server, env, key.stdout.strip(), out, base / "anchors", tsa)
