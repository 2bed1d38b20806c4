"""The server anchors signed tree heads on a schedule (directory and command sinks)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from relgate.client import RelgateClient
from relgate.service.server import BackgroundServer
from service_helpers import manifest_bytes, wait_for


def test_tree_heads_are_anchored_as_the_log_grows(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors"
    seen = tmp_path / "seen.jsonl"
    # A command sink: appends each head it receives on stdin to a file.
    script = (
        f"import sys; open({str(seen)!r}, 'a').write(sys.stdin.read().replace('\\n', ' ') + '\\n')"
    )
    with BackgroundServer(
        tmp_path / "data",
        anchor_dir=anchors,
        anchor_command=[sys.executable, "-c", script],
        anchor_interval=0.05,
    ) as server:
        assert server.admin_key_path is not None and server.anchor is not None
        schedule = server.anchor
        key = server.admin_key_path.read_text().strip()
        # The first receipt is the bootstrap key's own (key_create).
        wait_for(lambda: schedule.anchored == 1, what="first anchor")
        with RelgateClient(server.address, api_key=key) as client:
            client.register_release(manifest_bytes(1))
            wait_for(lambda: schedule.anchored == 2, what="second anchor")
            client.register_release(manifest_bytes(2))
            wait_for(lambda: schedule.anchored == 3, what="third anchor")
            bundle = json.loads(client.export_receipts())
        metrics = server.metrics.exposition().decode()
    heads = sorted(json.loads(p.read_text())["tree_size"] for p in anchors.glob("*.json"))
    assert heads == [1, 2, 3]
    piped = [json.loads(line) for line in seen.read_text().splitlines()]
    assert [h["tree_size"] for h in piped] == [1, 2, 3]
    # Anchors travel in exported bundles.
    assert {(a["tree_size"], a["sink"]) for a in bundle["anchors"]} >= {
        (2, "directory"),
        (3, "command"),
    }
    assert 'relgate_tree_head_anchors_total{outcome="ok"} 6.0' in metrics
